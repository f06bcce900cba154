"""BullMQ workers for the registered queues, with a graceful shutdown deadline.

Each worker gets its own pooled Redis client: BullMQ's blocking wait and its normal commands
then use separate connections from that pool, which is what lets concurrency > 1 run jobs
in parallel (the package's default single connection serialises them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from bullmq import Job, Worker
from redis.asyncio import Redis

from kk.config import Settings
from kk.infra.redis_client import worker_client
from kk.logs import job_fields_var
from kk.processors.base import JobContext, ProcessorSpec
from kk.queues.workers_view import worker_name
from kk.workers.backoff import FullRedisBackoff, GatedChainingWorker, GatedWorker
from kk.workers.errors import WorkerErrors
from kk.workers.stalls import StalledJobs

log = logging.getLogger("kk.worker")

METRICS_MINUTES = 2 * 24 * 60


class JobListener(Protocol):
    """Told of every job a worker of this process runs (metrics, logs, history)."""

    def job_started(self, queue: str, job: Job) -> None: ...

    def job_finished(
        self, queue: str, job: Job, outcome: str, duration_s: float, error: BaseException | None
    ) -> None:
        """`outcome`: "completed", "failed", or "released" (stopped at shutdown, to be run
        again elsewhere)."""


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        redis_url: str,
        processors: dict[str, ProcessorSpec | None],
        context: JobContext,
        queue_names: Iterable[str] | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.context = context
        self.concurrency = concurrency
        wanted = list(queue_names) if queue_names else list(settings.queues)
        unknown = [n for n in wanted if n not in settings.queues]
        if unknown:
            raise ValueError(f"Unknown queues: {', '.join(unknown)}")
        self.specs = {n: processors[n] for n in wanted if processors.get(n) is not None}
        self.workers: dict[str, Worker] = {}
        self._clients: list[Redis] = []
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._first_checks: dict[str, asyncio.Future[None]] = {}
        self.listeners: list[JobListener] = []
        # Errors bullmq's loop swallows and retries (Redis full, ...): logged and counted.
        self.errors = WorkerErrors()
        self.backoff = FullRedisBackoff()  # Redis out of memory: take jobs less often
        self.stalls = StalledJobs(self.specs)  # jobs recovered here (released elsewhere)

    def start(self) -> None:
        started_ms = int(time.time() * 1000)
        for name, spec in self.specs.items():
            assert spec is not None
            cfg = self.settings.queues[name]
            concurrency = self.concurrency or cfg.concurrency
            tuned = self.settings.tuned_worker
            client = worker_client(
                self.redis_url, max_connections=2 * concurrency + 16, tuned=tuned
            )
            self._clients.append(client)
            engine = GatedChainingWorker if tuned else GatedWorker
            worker = self.workers[name] = engine(
                name,
                self._wrap(name, spec),
                {
                    "connection": client,
                    "prefix": self.settings.queue_prefix,
                    "concurrency": concurrency,
                    "lockDuration": self.settings.lock_duration_ms,
                    "stalledInterval": self.settings.stalled_interval_ms,
                    "maxStalledCount": self.settings.max_stalled_count,
                    # Wait at most 1 s between empty polls of a drained or rate-limited queue.
                    "drainDelay": 1,
                    # After a lost connection, try again in 2 s (bullmq's default is 15 s).
                    # Other Redis errors (a full Redis) are paced by `self.backoff`.
                    "runRetryDelay": 2000,
                    # Becomes the connections' CLIENT SETNAME: host, pid and queue let
                    # `GET /api/queues/workers` group connections into processes.
                    "name": worker_name(name, concurrency, started_ms),
                    "autorun": False,
                    # BullMQ's own per-minute completed/failed counts, written by the same
                    # Lua call that finishes a job (no extra round trip); two days of points.
                    "metrics": {"maxDataPoints": METRICS_MINUTES},
                },
            )
            worker.full_redis = self.backoff
            worker.on("error", self.errors.listener(name))
            worker.on("stalled", self.stalls.listener(name))
            self._runs[name] = asyncio.get_running_loop().create_task(self._supervise(name))
        log.info(
            "Workers started for: %s (%s bullmq worker)",
            ", ".join(self.workers) or "(none)",
            "tuned" if self.settings.tuned_worker else "stock",
        )

    async def _supervise(self, name: str) -> None:
        """Run a worker's loop and start it again if it crashes (e.g. Redis was away when
        it started), instead of leaving the queue without a worker."""
        worker = self.workers[name]
        while not worker.closing:
            # bullmq checks for stalled jobs one interval after start, then every interval: a
            # worker restarted more often than that (crash loop, rolling deploys) would never
            # recover a dead worker's jobs. Check at once too; the check's own Redis guard
            # (`stalled-check`, one per interval) keeps this from adding load.
            self._first_checks[name] = asyncio.ensure_future(worker.runStalledJobsCheck())
            try:
                await worker.run()
            except Exception:
                log.exception("worker %s stopped unexpectedly; restarting in 1s", name)
                await asyncio.sleep(1)
            else:
                if not worker.closing:
                    await asyncio.sleep(1)

    def _wrap(self, queue: str, spec: ProcessorSpec):
        context = self.context
        listeners = self.listeners

        async def run(job: Job, token: str) -> Any:
            attempt = job.attemptsMade + 1
            # Every record logged while this job runs carries these fields. The tuned worker
            # runs one job after another in the same task, so they end with the job.
            fields = job_fields_var.set(
                {"queue": queue, "job_id": job.id, "job_name": job.name, "attempt": attempt}
            )
            try:
                return await run_attempt(job, attempt)
            finally:
                job_fields_var.reset(fields)

        async def run_attempt(job: Job, attempt: int) -> Any:
            started = time.perf_counter()
            log.info(
                "job start queue=%s id=%s name=%s attempt=%d", queue, job.id, job.name, attempt
            )
            for listener in listeners:
                listener.job_started(queue, job)
            try:
                result = await spec.process(job, context)
            except asyncio.CancelledError:
                # Only a forced close (shutdown past the grace) cancels a running job: it is
                # not failed in Redis, its lock lapses and the stalled check runs it again.
                elapsed = time.perf_counter() - started
                for listener in listeners:
                    listener.job_finished(queue, job, "released", elapsed, None)
                log.warning(
                    "job released queue=%s id=%s attempt=%d duration_ms=%.1f "
                    "reason=shutdown grace exceeded; another worker will run it again",
                    queue, job.id, attempt, elapsed * 1000,
                    extra={"outcome": "released", "duration_ms": round(elapsed * 1000, 1)},
                )  # fmt: skip
                raise
            except BaseException as exc:
                elapsed = time.perf_counter() - started
                for listener in listeners:
                    listener.job_finished(queue, job, "failed", elapsed, exc)
                log.warning(
                    "job failed queue=%s id=%s attempt=%d duration_ms=%.1f reason=%s",
                    queue, job.id, attempt, elapsed * 1000, exc,
                    extra={"outcome": "failed", "duration_ms": round(elapsed * 1000, 1)},
                )  # fmt: skip
                raise
            elapsed = time.perf_counter() - started
            for listener in listeners:
                listener.job_finished(queue, job, "completed", elapsed, None)
            log.info(
                "job done queue=%s id=%s attempt=%d duration_ms=%.1f",
                queue, job.id, attempt, elapsed * 1000,
                extra={"outcome": "completed", "duration_ms": round(elapsed * 1000, 1)},
            )  # fmt: skip
            return result

        return run

    async def _keep_locks(self, worker: Worker) -> None:
        duration = self.settings.lock_duration_ms
        while True:
            if worker.jobs:
                with contextlib.suppress(Exception):
                    await worker.extendLocks()  # every active job's, by its lockDuration
            await asyncio.sleep(duration / 3000)

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking jobs, let active ones finish within the grace time; past it, stop
        them: their locks expire and BullMQ's stalled check hands them to another worker,
        so nothing is lost."""
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        if not self.workers:
            return

        async def close_one(name: str, worker: Worker) -> None:
            closing = asyncio.ensure_future(worker.close())
            # bullmq's run loop stops renewing locks as soon as it is told to close, while
            # active jobs are still finishing: keep their locks alive until they are done,
            # or the jobs would be declared stalled and their results refused.
            keeper = asyncio.ensure_future(self._keep_locks(worker))
            done, _ = await asyncio.wait({closing}, timeout=grace)
            keeper.cancel()
            if not done:
                log.warning(
                    "worker %s: active jobs outlived the %.1fs grace; releasing", name, grace
                )
                with contextlib.suppress(Exception):
                    await worker.close(force=True)
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(closing, 5)

        await asyncio.gather(*(close_one(n, w) for n, w in self.workers.items()))
        for task in self._runs.values():
            task.cancel()
        await asyncio.gather(*self._runs.values(), return_exceptions=True)
        self._runs.clear()
        self.workers.clear()
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()
        # No job runs any more: the processors' shared outbound HTTP client can go.
        await self.context.aclose()
