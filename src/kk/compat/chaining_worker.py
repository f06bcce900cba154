"""A `bullmq.Worker` that chains jobs the way Node's BullMQ does.

The stock Python worker finishes a job with `fetch_next=False`, then goes back to its main
loop to ask for the next one: two or three round trips per job (moveToFinished, then
BZPOPMIN on the marker and moveToActive). BullMQ's `moveToFinished` Lua script can hand
back the next job in the same call, locked with the same token — Node's worker relies on
that. This subclass does the same, so a busy worker spends one round trip per job. The
Redis data model and the Lua scripts are untouched.

Per job it also does less in Python than the package's own path (which is what bounds a
busy worker here, BENCHMARKS.md): the `moveToFinished` call is written straight to a
connection (`direct_script`), its keys are built once per queue and its arguments are the
package's own, byte for byte; a fetched job is built by `job_from_hash`.
`tests/unit/test_chaining_worker_parts.py` compares each with the package's own.

It overrides `Worker.processJob` and uses the worker's private `lockManager`,
`_processor_wants_signal`, the scripts' key map and a job's `deferredFailure`: written for
the `bullmq` version in `kk.compat.TUNED_ONLY` (`KK_TUNED_WORKER=false` runs the stock
`bullmq.Worker` instead).
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgpack
from bullmq import Job, Worker
from bullmq.custom_errors.delayed_error import DelayedError
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from bullmq.custom_errors.waiting_children_error import WaitingChildrenError
from bullmq.scripts import raw2NextJobData

from kk.compat.direct_script import DirectScript, PipelinedScript
from kk.compat.lean_job import job_from_hash

# moveToFinished's KEYS before the job's own key, in the script's order (`target` last).
_FINISH_KEYS = ("wait", "active", "prioritized", "events", "stalled", "limiter", "delayed",
                "paused", "meta", "pc")  # fmt: skip


def _keep_jobs(remove: Any) -> dict[str, Any]:
    """`removeOnComplete` as the script's `keepJobs` (the package's own mapping)."""
    if type(remove) is int:
        return {"count": remove}
    if type(remove) is dict:
        return remove
    return {"count": 0} if remove else {"count": -1}


class ChainingWorker(Worker):
    _finish: DirectScript | PipelinedScript | None = None
    _finish_keys: tuple[dict[str, str], list[str], list[str]] | None = None

    def completed_args(
        self, job: Job, result: Any, token: str, fetch_next: bool
    ) -> tuple[list[str], list[Any]]:
        """`Scripts.moveToCompletedArgs`, with the queue's keys built once."""
        scripts = self.backend.scripts
        cached = self._finish_keys
        if cached is None or cached[0] is not scripts.keys:  # resetQueueKeys replaces it
            keys = scripts.keys
            head = [keys[name] for name in _FINISH_KEYS] + [keys["completed"]]
            cached = (keys, head, [scripts.toKey("metrics:completed"), keys["marker"]])
            self._finish_keys = cached
        queue_keys, head, tail = cached
        opts = job.opts
        worker_opts = self.opts
        metrics = worker_opts.get("metrics")
        packed = msgpack.packb(
            {
                "token": token,
                "keepJobs": _keep_jobs(opts.get("removeOnComplete", False)),
                "limiter": worker_opts.get("limiter"),
                "lockDuration": worker_opts.get("lockDuration"),
                "attempts": job.attempts,
                "attemptsMade": job.attemptsMade,
                "maxMetricsSize": metrics.get("maxDataPoints", "") if metrics is not None else "",
                "fpof": opts.get("failParentOnFailure", False),
                "cpof": opts.get("continueParentOnFailure", False),
                "idof": opts.get("ignoreDependencyOnFailure", False),
                "rdof": opts.get("removeDependencyOnFailure", False),
            },
            use_bin_type=True,
        )
        value = (
            "null" if result is None else json.dumps(result, separators=(",", ":"), allow_nan=False)
        )
        args = [job.id, round(time.time() * 1000), "returnvalue", value, "completed",
                "1" if fetch_next else "", queue_keys[""], packed]  # fmt: skip
        return [*head, f"{queue_keys['']}{job.id}", *tail], args

    async def _move_to_completed(
        self, job: Job, result: Any, token: str, fetch_next: bool
    ) -> list[Any] | None:
        """`moveToCompleted` through `direct_script`; the next job's data if one was taken."""
        finish = self._finish
        if finish is None:
            script = self.backend.scripts.commands["moveToFinished"]
            # One job at a time gains nothing from sharing a connection.
            finish = (
                PipelinedScript(script) if self.opts["concurrency"] > 1 else DirectScript(script)
            )
            self._finish = finish
        keys, args = self.completed_args(job, result, token, fetch_next)
        raw = await finish(keys, args)
        if type(raw) is int and raw < 0:
            raise self.backend.scripts.finishedErrors(
                {"code": raw, "jobId": job.id, "command": "moveToFinished", "state": "active"}
            )
        return raw2NextJobData(raw) if raw is not None else None

    async def nextJobFromJobData(
        self,
        job_data: dict | None = None,
        job_id: str | None = None,
        limit_until: int = 0,
        delay_until: int = 0,
        token: str | None = None,
    ) -> Job | None:
        try:
            if not job_data or job_data.get("rjk"):
                # No job (drained state), or a scheduler's job: its next run is planned there.
                return await super().nextJobFromJobData(
                    job_data, job_id, limit_until, delay_until, token
                )
            # The package's own steps for a plain job, with a leaner Job construction.
            self.limitUntil = max(limit_until, 0) or 0
            if delay_until:
                self.blockUntil = max(int(delay_until), 0) or 0
            self.drained = False
            job = job_from_hash(self, job_data, job_id)
            job.token = token
            return job
        except ValueError as exc:  # json.JSONDecodeError: another producer wrote bad JSON
            if not job_data or not job_id or token is None:
                raise
            # Fail it now with the reason, rather than let it crash the fetch, sit in
            # active until its lock expires and end as "stalled" with no explanation.
            job = Job(self, job_data.get("name", ""), None, {"attempts": 1}, job_id)
            error = UnrecoverableError(f"job data or options are not valid JSON: {exc}")
            await job.moveToFailed(error, token)
            self.emit("failed", job, error)
            return None

    async def close(self, force: bool = False) -> None:
        await super().close(force)
        if self._finish is not None:
            await self._finish.close()

    async def processJob(self, job: Job, token: str) -> None:
        next_job: Job | None = job
        while next_job is not None:
            next_job = await self._process_then_fetch(next_job, token)

    async def _process_then_fetch(self, job: Job, token: str) -> Job | None:
        next_data: list[Any] | None = None
        try:
            if "removeOnComplete" not in job.opts and "removeOnComplete" in self.opts:
                job.opts["removeOnComplete"] = self.opts["removeOnComplete"]
            if "removeOnFail" not in job.opts and "removeOnFail" in self.opts:
                job.opts["removeOnFail"] = self.opts["removeOnFail"]
            self.jobs.add((job, token))
            controller = self.lockManager.track_job(
                job.id,
                token,
                int(time.time() * 1000),
                should_create_controller=self._processor_wants_signal,
            )
            if job.deferredFailure:
                await job.moveToFailed(UnrecoverableError(job.deferredFailure), token)
                self.emit("failed", job, UnrecoverableError(job.deferredFailure))
                return None
            if controller is not None:
                result = await self.processor(job, token, controller.signal)
            else:
                result = await self.processor(job, token)
            if not self.forceClosing:
                fetch_next = not (self.closing or self.paused)
                finished = await self._move_to_completed(job, result, token, fetch_next)
                job.returnvalue = result
                job.attemptsMade = job.attemptsMade + 1
                if fetch_next:
                    next_data = finished
            self.emit("completed", job, result)
        except (DelayedError, WaitingChildrenError):
            return None
        except Exception as err:
            try:
                if not self.forceClosing:
                    await job.moveToFailed(err, token)
                self.emit("failed", job, err)
            except Exception as error:
                self.emit("error", error, job)
            return None
        finally:
            self.jobs.discard((job, token))
            self.lockManager.untrack_job(job.id)
        if not next_data:
            return None
        job_data, job_id, limit_until, delay_until = next_data
        # Also updates the worker's drained/rate-limit state, as moveToActive would.
        next_job = await self.nextJobFromJobData(
            job_data, job_id, int(limit_until or 0), int(delay_until or 0), token
        )
        if next_job is not None:
            self.emit("active", next_job, "waiting")
        return next_job
