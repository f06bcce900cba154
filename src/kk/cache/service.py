"""Cache operations on Redis: JSON values, TTLs with jitter, counters shared by all processes.

Why not cashews (evaluated first): its Redis backend builds its own connection pool from a
URL (we already hold a configured client, possibly the embedded server's), pickles values by
default (JSON is wanted: readable by other tools, and unpickling what a shared Redis holds
is unsafe), its `set_many` is an MSET followed by a second round trip of PEXPIREs (keys live
briefly without a TTL, and a batch costs two round trips), and it has neither TTL jitter nor
hit/miss counters kept in Redis. Those counters must be updated in the same round trip as the
operation, which a wrapper around a library call can't do. What remains is a few Redis
commands, so it is written here directly; aiocache was ruled out too (it can't cache None,
which negative caching needs).

Counters live in one hash (`<prefix>__stats`). A read's hit or miss is only known after the
GET, so reads (and deletes, which count keys actually removed) run as one small Lua script:
GET and HINCRBY in a single round trip. Writes put SET and HINCRBY in one pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import OutOfMemoryError, ResponseError

from kk.cache.keys import RESERVED, cache_prefix, glob_escape, is_cluster, stats_key
from kk.config import Settings
from kk.errors import AppError, ErrorCode
from kk.json_text import client_json, too_deep

log = logging.getLogger("kk.cache")

_GET = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
  return {value, redis.call('PTTL', KEYS[1])}
end
redis.call('HINCRBY', KEYS[2], 'misses', 1)
return {}
"""
_DELETE = """
local removed = redis.call('DEL', KEYS[1])
if removed > 0 then redis.call('HINCRBY', KEYS[2], 'deletes', removed) end
return removed
"""
COUNTERS = ("hits", "misses", "sets", "deletes")


@dataclass(frozen=True)
class Entry:
    value: Any
    ttl_ms: int  # -1: no expiry

    @property
    def ttl_s(self) -> int:
        return -1 if self.ttl_ms < 0 else round(self.ttl_ms / 1000)


@dataclass(frozen=True)
class Counters:
    hits: int
    misses: int
    sets: int
    deletes: int

    @property
    def hit_rate(self) -> float:
        """hits / (hits + misses) * 100, one decimal rounded half up; 0 with no lookups."""
        lookups = self.hits + self.misses
        if not lookups:
            return 0.0
        rate = Decimal(self.hits * 100) / Decimal(lookups)
        return float(rate.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))

    @property
    def total(self) -> int:
        return self.hits + self.misses + self.sets + self.deletes


def decode(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return raw  # written by something else, not as JSON: show it as it is
    # Written by something else, nested deeper than any answer could serialize: raw too.
    return raw if too_deep(value) else value


@contextlib.contextmanager
def cache_errors() -> Iterator[None]:
    """A command Redis refused (wrong type, script error) is the contract's
    CACHE_OPERATION_FAILED; connection errors and OOM keep their own handlers (503/507)."""
    try:
        yield
    except OutOfMemoryError:
        raise
    except ResponseError as exc:
        log.error("Cache operation refused by Redis: %s", exc)
        raise AppError(ErrorCode.CACHE_OPERATION_FAILED, "The cache operation failed") from None


class CacheService:
    def __init__(self, redis: Redis, settings: Settings, max_concurrency: int = 32) -> None:
        self.redis = redis
        self.settings = settings
        # Hash-tagged on a cluster, so every script's keys share a slot (see kk.cache.keys).
        self.cluster = is_cluster(redis)
        self.prefix = cache_prefix(settings.cache_prefix, self.cluster)
        self.stats_key = stats_key(self.prefix)
        self._get = redis.register_script(_GET)
        self._delete = redis.register_script(_DELETE)
        # The client's pool fails fast when exhausted; a burst of cache calls waits its turn
        # here instead (and leaves the rest of a shared pool to the queues).
        self._slots = asyncio.Semaphore(max_concurrency)

    def redis_key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Redis]:
        async with self._slots:
            yield self.redis

    def ttl_ms(self, ttl_s: int | None = None, *, jitter: bool = True) -> int:
        """TTL in ms: the default when not given; jittered so entries written together
        don't all expire (and reload) together."""
        base = (ttl_s or self.settings.cache_default_ttl_s) * 1000
        if jitter and self.settings.cache_ttl_jitter:
            spread = self.settings.cache_ttl_jitter
            base = round(base * random.uniform(1 - spread, 1 + spread))
        return max(1000, base)

    def encode(self, value: Any, what: str = "value") -> str:
        encoded = client_json(value, what, ensure_ascii=False)
        limit = self.settings.cache_max_value_bytes
        if len(encoded.encode()) > limit:
            raise AppError(ErrorCode.VALIDATION_ERROR, f"The {what} exceeds {limit} bytes as JSON")
        return encoded

    # -- counted operations ----------------------------------------------------------------

    async def get(self, name: str) -> Entry | None:
        async with self.slot():
            with cache_errors():
                reply = await self._get(keys=[self.redis_key(name), self.stats_key])
        if not reply:
            return None
        raw, pttl = reply
        return Entry(decode(raw), int(pttl))

    async def set(self, name: str, encoded: str, ttl_ms: int) -> None:
        async with self.slot() as redis:
            pipe = redis.pipeline(transaction=False)
            pipe.set(self.redis_key(name), encoded, px=ttl_ms)
            pipe.hincrby(self.stats_key, "sets", 1)
            with cache_errors():
                await pipe.execute()

    async def set_many(self, items: Sequence[tuple[str, str, int]]) -> None:
        """(name, encoded value, ttl ms) triples, all in one round trip."""
        async with self.slot() as redis:
            pipe = redis.pipeline(transaction=False)
            for name, encoded, ttl_ms in items:
                pipe.set(self.redis_key(name), encoded, px=ttl_ms)
            pipe.hincrby(self.stats_key, "sets", len(items))
            with cache_errors():
                await pipe.execute()

    async def delete(self, name: str) -> bool:
        async with self.slot():
            with cache_errors():
                removed = await self._delete(keys=[self.redis_key(name), self.stats_key])
        return bool(removed)

    # -- uncounted ---------------------------------------------------------------------------

    async def scan(self, pattern: str, cursor: int, count: int) -> tuple[int, list[str]]:
        """One SCAN step inside the cache's namespace (never KEYS: it blocks the server)."""
        match = glob_escape(self.prefix) + pattern
        async with self.slot() as redis:
            with cache_errors():
                if self.cluster:  # every cache key is on the node owning the prefix's slot
                    cluster = cast(RedisCluster, redis)
                    node = cluster.get_node_from_key(self.stats_key)
                    # A cluster's SCAN answers per node: ({node name: cursor}, keys).
                    cursors, keys = cast(
                        tuple[dict[str, int], list[str]],
                        await cluster.scan(cursor, match, count, target_nodes=node),
                    )
                    next_cursor = next(iter(cursors.values()), 0)
                else:  # decode_responses=True: keys are str
                    next_cursor, keys = cast(
                        tuple[int, list[str]],
                        await redis.scan(cursor=cursor, match=match, count=count),
                    )
        names = [key[len(self.prefix) :] for key in keys]
        return int(next_cursor), [n for n in names if not n.startswith(RESERVED)]

    async def counters(self) -> Counters:
        async with self.slot() as redis:
            raw = await redis.hgetall(self.stats_key)
        return Counters(*(int(raw.get(name, 0)) for name in COUNTERS))

    async def counters_and_info(self) -> tuple[Counters, dict[str, Any]]:
        async with self.slot() as redis:
            if self.cluster:  # a cluster pipeline refuses INFO: ask the cache's node
                cluster = cast(RedisCluster, redis)
                raw = await cluster.hgetall(self.stats_key)
                info = await cluster.info(target_nodes=cluster.get_node_from_key(self.stats_key))
                return Counters(*(int(raw.get(name, 0)) for name in COUNTERS)), info
            pipe = redis.pipeline(transaction=False)
            pipe.hgetall(self.stats_key)
            pipe.info()
            raw, info = await pipe.execute()
        return Counters(*(int(raw.get(name, 0)) for name in COUNTERS)), info
