"""The worker metrics of one process, wired the same way in `kk serve` and `kk worker`.

Job counters come from a listener the pool calls per job; the rest (Redis errors, the
full-Redis backoff, stalled jobs recovered) are collectors the pool keeps. One place
attaches both, so the two commands cannot drift apart in what they expose.
"""

from __future__ import annotations

from collections.abc import Iterable

from kk.metrics.jobs import JobMetrics
from kk.metrics.registry import AppMetrics
from kk.workers.pool import JobListener, WorkerPool


class WorkerMetrics:
    def __init__(self, metrics: AppMetrics, queues: Iterable[str]) -> None:
        self.metrics = metrics
        self.jobs = JobMetrics(metrics, queues)

    def listeners(self) -> list[JobListener]:
        """For `Runtime.start(job_listeners=...)`: given before the pool starts."""
        return [self.jobs]

    def attach(self, pool: WorkerPool | None) -> None:
        """Once the pool exists: its own collectors join the registry."""
        if pool is None:
            return
        for collector in (pool.errors, pool.backoff, pool.stalls):
            self.metrics.registry.register(collector)
