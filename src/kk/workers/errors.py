"""Errors a worker's loop swallows, made visible.

bullmq's worker catches what fails while it takes or finishes a job (Redis out of memory,
a script refused, a lock it could not extend), emits it as an "error" event and tries
again a moment later; nobody listens by default, so a worker that cannot take a single
job looks idle. This listener logs such errors, at most once per interval per queue and
kind with a count of the ones in between, and counts them for Prometheus
(`kk_worker_redis_errors_total{queue,kind}`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily
from redis.exceptions import (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("kk.worker")

LOG_INTERVAL_S = 10.0


def error_kind(exc: BaseException) -> str:
    """A short label: out_of_memory, loading, readonly, timeout, connection, redis, other."""
    # A script's failing command comes back as a script error naming the original reply.
    if isinstance(exc, OutOfMemoryError) or "OOM command not allowed" in str(exc):
        return "out_of_memory"
    if isinstance(exc, BusyLoadingError):
        return "loading"
    if isinstance(exc, ReadOnlyError):
        return "readonly"
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | OSError):
        return "connection"
    return "redis" if isinstance(exc, RedisError) else "other"


class WorkerErrors:
    """One per worker pool; also a Prometheus collector (register it on a registry)."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.counts: dict[tuple[str, str], int] = {}
        self._last_log: dict[tuple[str, str], float] = {}
        self._unlogged: dict[tuple[str, str], int] = {}

    def listener(self, queue: str) -> Callable[..., None]:
        """For `worker.on("error", ...)`: bullmq emits `(error)` or `(error, job)`."""

        def on_error(exc: BaseException, *_: Any) -> None:
            self.record(queue, exc)

        return on_error

    def record(self, queue: str, exc: BaseException) -> None:
        key = (queue, error_kind(exc))
        self.counts[key] = self.counts.get(key, 0) + 1
        now = time.monotonic()
        last = self._last_log.get(key)
        if last is not None and now - last < self.interval_s:
            self._unlogged[key] = self._unlogged.get(key, 0) + 1
            return
        more = self._unlogged.pop(key, 0)
        self._last_log[key] = now
        since = f"; {more} more since the last report {now - last:.0f}s ago" if last else ""
        log.error(
            "worker %s: Redis error (%s), retrying: %s%s (%d in all)",
            queue, key[1], str(exc)[:300] or type(exc).__name__, since, self.counts[key],
            extra={"queue": queue, "kind": key[1]},
        )  # fmt: skip

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "kk_worker_redis_errors",
            "Errors a worker met while taking or finishing jobs (it retries), by queue and kind",
            labels=["queue", "kind"],
        )
        for (queue, kind), count in sorted(self.counts.items()):
            family.add_metric([queue, kind], count)
        yield family
