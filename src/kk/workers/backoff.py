"""Backing off while Redis refuses writes for lack of memory.

bullmq's worker loop treats a refused `moveToActive` like any script error: it emits it,
waits 0.1 s and asks again, in every concurrency slot at once (50 refused script calls a
second for a queue of concurrency 5), each adding load to a server that is already full.
`runRetryDelay` does not apply: bullmq keeps it for connection errors.

Here, after an out-of-memory refusal the process's workers ask one at a time, after a
delay that doubles up to `MAX_S`; the first call that takes a job (a write that passed)
lets every worker go again. A call that finds no job proves nothing (an empty queue writes
nothing): the backoff ends on it only once no refusal came for `2 * MAX_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from bullmq import Job, Worker
from prometheus_client.core import GaugeMetricFamily

from kk.compat.chaining_worker import ChainingWorker
from kk.workers.errors import error_kind

log = logging.getLogger("kk.worker")

FIRST_S = 0.5
MAX_S = 5.0
_POLL_S = 0.1  # how often a waiting slot looks whether its worker is closing


class FullRedisBackoff:
    """One per worker pool (Redis is full for every queue alike); also a Prometheus
    collector: `kk_worker_redis_backoff_seconds`, 0 while writes pass."""

    def __init__(self, first_s: float = FIRST_S, max_s: float = MAX_S) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.delay_s = 0.0  # 0: not backing off
        self._next_at = 0.0
        self._last_refusal = 0.0
        self._probing = False

    def refused(self) -> None:
        now = time.monotonic()
        self._last_refusal = now
        if self.delay_s and now < self._next_at:
            return  # slots that were already asking when Redis filled up: one round
        if not self.delay_s:
            log.warning(
                "Redis is out of memory: workers back off (next try in %.1fs)", self.first_s
            )
        self.delay_s = min(self.max_s, self.delay_s * 2 if self.delay_s else self.first_s)
        self._next_at = now + self.delay_s

    async def call(self, worker: Worker, fn: Callable[[], Awaitable[Any]]) -> Any:
        """`fn()` at once while writes pass; while backing off, when its turn comes (or
        None when the worker closes or pauses meanwhile, as bullmq's own wait does)."""
        probe = False
        while self.delay_s:
            if worker.closing or worker.paused:
                return None
            now = time.monotonic()
            if not self._probing and now >= self._next_at:
                probe = self._probing = True
                break
            await asyncio.sleep(max(0.01, min(_POLL_S, self._next_at - now)))
        try:
            result = await fn()
        except Exception as exc:
            if error_kind(exc) == "out_of_memory":
                self.refused()
            raise
        finally:
            if probe:
                self._probing = False
        if probe and self.delay_s:
            now = time.monotonic()
            if result is None and now - self._last_refusal < 2 * self.max_s:
                self._next_at = now + self.delay_s  # no job, no write: ask again later
            else:
                log.warning("Redis accepts writes again: workers take jobs")
                self.delay_s = 0.0
        return result

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "kk_worker_redis_backoff_seconds",
            "Wait between this process's attempts to take a job while Redis refuses "
            "writes for lack of memory (0: not backing off)",
            value=self.delay_s,
        )


class GatedWorker(Worker):
    """`bullmq.Worker` whose `getNextJob` goes through the pool's `FullRedisBackoff`."""

    full_redis: FullRedisBackoff | None = None

    async def getNextJob(self, token: str) -> Job | None:
        gate = self.full_redis
        take = super().getNextJob
        if gate is None:
            return await take(token)
        return await gate.call(self, lambda: take(token))


class GatedChainingWorker(GatedWorker, ChainingWorker):
    """The tuned worker, gated the same way."""
