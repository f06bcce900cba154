"""Values that live in Redis (queue depth, cache counters), read once per scrape.

Prometheus collectors are synchronous, so the scrape handler first reads Redis (async,
under a deadline) into a snapshot and the collector only renders it. When Redis does not
answer, the series are left out for that scrape (no stale numbers) and `kk_redis_up` is 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kk.cache.keys import cache_prefix, is_cluster, stats_key
from kk.queues.schemas import QueueStats

log = logging.getLogger("kk.metrics")

CACHE_FIELDS = ("hits", "misses", "sets", "deletes")
# QueueStats field -> state label (BullMQ's names).
_STATES = {
    "waiting": "waiting",
    "active": "active",
    "completed": "completed",
    "failed": "failed",
    "delayed": "delayed",
    "prioritized": "prioritized",
    "waitingChildren": "waiting-children",
}


@dataclass
class Snapshot:
    redis_up: bool | None = None  # None: never scraped yet
    queues: list[QueueStats] = field(default_factory=list)
    cache: dict[str, int] | None = None


class RedisSnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def describe(self) -> list[Metric]:
        return []  # names vary with what Redis holds; nothing to check up front

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap.redis_up is not None:
            yield GaugeMetricFamily(
                "kk_redis_up",
                "1 when the queues' Redis answered the last scrape",
                value=1 if snap.redis_up else 0,
            )
        if snap.queues:
            depth = GaugeMetricFamily(
                "kk_queue_jobs", "Jobs per queue and state", labels=["queue", "state"]
            )
            paused = GaugeMetricFamily(
                "kk_queue_paused", "1 when the queue is paused", labels=["queue"]
            )
            for stats in snap.queues:
                for attr, state in _STATES.items():
                    depth.add_metric([stats.name, state], getattr(stats, attr, 0) or 0)
                paused.add_metric([stats.name], 1 if stats.paused else 0)
            yield depth
            yield paused
        if snap.cache is not None:
            for name in CACHE_FIELDS:
                yield CounterMetricFamily(
                    f"kk_cache_{name}",
                    f"Cache {name} counted by every server process (shared in Redis)",
                    value=snap.cache.get(name, 0),
                )

    async def refresh(
        self, runtime: Any, timeout_s: float, observe: Callable[[float], None]
    ) -> None:
        """Read queue depth (one pipelined round trip) and the cache counters."""
        queues = runtime.queues
        cache_redis, cache_key = _cache_counters_location(runtime)

        async def depth() -> list[QueueStats]:
            started = time.perf_counter()
            stats = await queues.stats_many(queues.names)
            observe(time.perf_counter() - started)
            return stats

        results = await asyncio.gather(
            asyncio.wait_for(depth(), timeout_s),
            asyncio.wait_for(cache_redis.hgetall(cache_key), timeout_s),
            return_exceptions=True,
        )
        stats, cache = results
        snap = Snapshot()
        if isinstance(stats, BaseException):
            log.warning("metrics: queue depth unavailable: %s", stats)
            snap.redis_up = False
        else:
            snap.redis_up = True
            snap.queues = stats
        if isinstance(cache, BaseException):
            log.warning("metrics: cache counters unavailable: %s", cache)
        elif cache:
            text = {_str(k): v for k, v in cache.items()}
            snap.cache = {k: _int(text.get(k)) for k in CACHE_FIELDS}
        self.snapshot = snap


def _cache_counters_location(runtime: Any) -> tuple[Any, str]:
    """The cache's own client and key when it runs (it may use a Redis of its own, see
    KK_CACHE_REDIS_URL); otherwise where it would keep them on the queues' server."""
    service = getattr(getattr(runtime, "cache", None), "cache", None)
    redis = getattr(service, "redis", None)
    key = getattr(service, "stats_key", None)
    if redis is not None and isinstance(key, str):
        return redis, key
    prefix = cache_prefix(runtime.settings.cache_prefix, is_cluster(runtime.redis))
    return runtime.redis, stats_key(prefix)


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0
