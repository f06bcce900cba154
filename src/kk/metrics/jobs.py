"""A JobListener feeding the job metrics of the workers that run in this process."""

from __future__ import annotations

from collections.abc import Iterable

from bullmq import Job

from kk.metrics.registry import AppMetrics

OUTCOMES = ("completed", "failed")


class JobMetrics:
    def __init__(self, metrics: AppMetrics, queues: Iterable[str] = ()) -> None:
        self.metrics = metrics
        # Series exist at 0 from the start, so rate() sees the first job too.
        for queue in queues:
            metrics.jobs_active.labels(queue)
            metrics.jobs_released.labels(queue)
            for outcome in OUTCOMES:
                metrics.jobs.labels(queue, outcome)
                metrics.job_duration.labels(queue, outcome)

    def job_started(self, queue: str, job: Job) -> None:
        self.metrics.jobs_active.labels(queue).inc()

    def job_finished(
        self, queue: str, job: Job, outcome: str, duration_s: float, error: BaseException | None
    ) -> None:
        m = self.metrics
        m.jobs_active.labels(queue).dec()
        if outcome == "released":  # nothing finished in Redis: neither completed nor failed
            m.jobs_released.labels(queue).inc()
            return
        m.jobs.labels(queue, outcome).inc()
        m.job_duration.labels(queue, outcome).observe(duration_s)
