"""Auto-batching of single adds: what ioredis's auto-pipelining does for Node's BullMQ.

Adds that arrive in the same event-loop turn (concurrent HTTP requests, say) are written
to Redis as one pipeline: one write, one read, one connection, instead of one round trip
each. Each add is still BullMQ's own `addStandardJob`/`addDelayedJob`/`addPrioritizedJob`
script, built by the `bullmq` package; the pipeline is not a transaction, so one add
failing (Redis out of memory, a duplicate parent, ...) does not touch the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bullmq import Job
from bullmq.scripts import Scripts
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

# Bounds what one batch holds, so a flood is written in slices Redis answers promptly.
MAX_BATCH = 256


class AddBatcher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[tuple[Scripts, Job, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def add(self, scripts: Scripts, job: Job) -> str:
        """Queue the add for this turn's batch and wait for its job id."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((scripts, job, future))
        if len(self._pending) == 1:
            # Flush once the requests already scheduled in this turn have queued theirs.
            asyncio.get_running_loop().call_soon(self._flush)
        elif len(self._pending) >= MAX_BATCH:
            self._flush()
        return str(await future)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[Scripts, Job, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._execute(batch)
        except asyncio.CancelledError:
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the connection failed: every add of the batch did
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (scripts, job, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away (request cancelled)
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            elif isinstance(result, int) and result < 0:
                command = {"code": result, "parentKey": job.parentKey, "command": "addJob"}
                future.set_exception(scripts.finishedErrors(command))
            else:
                future.set_result(result)

    async def _execute(
        self, batch: list[tuple[Scripts, Job, asyncio.Future[Any]]], reload: bool = True
    ) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for scripts, job, _ in batch:
                await scripts.addJob(job, pipe)
            # redis-py would ask SCRIPT EXISTS before every pipeline (a round trip each);
            # the scripts are loaded already, and a NOSCRIPT reply is handled below.
            used = list(pipe.scripts)
            pipe.scripts.clear()
            results = await pipe.execute(raise_on_error=False)
        if reload and any(isinstance(r, NoScriptError) for r in results):
            # The server lost its script cache (restart, SCRIPT FLUSH): EVALSHA refused
            # before running anything, so loading the scripts and re-sending is safe.
            for script in used:
                script.sha = await self.redis.script_load(script.script)
            retry = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            again = await self._execute([batch[i] for i in retry], reload=False)
            for i, result in zip(retry, again, strict=True):
                results[i] = result
        return results
