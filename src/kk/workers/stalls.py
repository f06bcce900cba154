"""Jobs put back to wait by this process's stalled check.

A job released at shutdown (its worker stopped past the grace) or whose worker died keeps
no lock; BullMQ's stalled check, run by the workers still alive, moves it back to wait and
emits "stalled". The stopping process counts its releases too, but exits a moment later,
before any scrape: the live process that recovers the job is where it can be seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily


class StalledJobs:
    """One per worker pool; a Prometheus collector (`kk_jobs_stalled_total{queue}`)."""

    def __init__(self, queues: Iterable[str]) -> None:
        # Series exist at 0 from the start, so rate() sees the first one too.
        self.counts: dict[str, int] = dict.fromkeys(queues, 0)

    def listener(self, queue: str) -> Callable[..., None]:
        """For `worker.on("stalled", ...)`: bullmq emits `(job_id)` once per job moved."""

        def on_stalled(*_: Any) -> None:
            self.counts[queue] = self.counts.get(queue, 0) + 1

        return on_stalled

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "kk_jobs_stalled",
            "Jobs this process's stalled check moved back to wait because no worker held "
            "them: released at shutdown past the grace, or their worker died",
            labels=["queue"],
        )
        for queue, count in sorted(self.counts.items()):
            family.add_metric([queue], count)
        yield family
