"""/api/cache-demo: the contract's demonstration routes."""

from __future__ import annotations

import random
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from kk.cache.keys import check_key
from kk.cache.lifecycle import CacheRuntime
from kk.cache.protection import parse_user_id
from kk.cache.schemas import (
    BasicDemo,
    BatchBody,
    BatchResult,
    CacheCounters,
    CacheStats,
    DemoValue,
    MessageEnvelope,
    ProtectedLookup,
    RedisBrief,
)
from kk.cache.service import Counters
from kk.errors import AppError, ErrorCode
from kk.schemas import Envelope
from kk.security.access import require_admin, require_read
from kk.times import utc_now_iso
from kk.units import format_mb, format_ms

router = APIRouter(prefix="/api/cache-demo", tags=["cache"])

DEMO_NAMESPACE = "demo:"


def get_cache_runtime(request: Request) -> CacheRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    cache = getattr(runtime, "cache", None)
    if cache is None:
        raise AppError(ErrorCode.INTERNAL_ERROR, "The cache is not running")
    return cache


Cache = Annotated[CacheRuntime, Depends(get_cache_runtime)]
KeyPath = Annotated[str, Path(min_length=1, max_length=256)]


def counters_view(counters: Counters) -> CacheCounters:
    return CacheCounters(
        hits=counters.hits,
        misses=counters.misses,
        sets=counters.sets,
        deletes=counters.deletes,
        hitRate=counters.hit_rate,
        totalOperations=counters.total,
    )


@router.get("/basic/{key}", dependencies=[Depends(require_read)])
async def basic(key: KeyPath, rt: Cache) -> Envelope[BasicDemo]:
    """Write a fresh value under `demo:<key>` (a GET, so read keys may call it: it only ever
    writes inside the demo's own namespace), read it back, show TTL and counters."""
    name = DEMO_NAMESPACE + check_key(key)
    original = DemoValue(
        message="Hello from cache!", timestamp=utc_now_iso(), random=round(random.random(), 6)
    )
    await rt.cache.set(name, rt.cache.encode(original.model_dump()), rt.cache.ttl_ms())
    entry = await rt.cache.get(name)
    counters = await rt.cache.counters()
    return Envelope(
        data=BasicDemo(
            original=original,
            cached=entry.value if entry else None,
            exists=entry is not None,
            ttl=entry.ttl_s if entry else -2,
            stats=counters_view(counters),
        )
    )


@router.get("/protection/{userId}", dependencies=[Depends(require_read)])
async def protection(
    userId: Annotated[str, Path(max_length=32)], rt: Cache
) -> Envelope[ProtectedLookup]:
    started = time.perf_counter()
    user, from_cache = await rt.users.get(parse_user_id(userId))
    duration = format_ms((time.perf_counter() - started) * 1000)
    return Envelope(data=ProtectedLookup(user=user, duration=duration, fromCache=from_cache))


@router.post("/batch", dependencies=[Depends(require_admin)])
async def batch(body: BatchBody, rt: Cache) -> MessageEnvelope[BatchResult]:
    limit = rt.settings.cache_max_batch
    if len(body.keys) != len(body.values):
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"keys and values differ in length ({len(body.keys)} vs {len(body.values)})",
        )
    if not body.keys:
        raise AppError(ErrorCode.VALIDATION_ERROR, "A batch needs at least one key")
    if len(body.keys) > limit:
        raise AppError(ErrorCode.VALIDATION_ERROR, f"A batch holds at most {limit} keys")
    if len(set(body.keys)) != len(body.keys):
        raise AppError(ErrorCode.VALIDATION_ERROR, "Keys in a batch must be unique")
    ttl_s = body.ttl or rt.settings.cache_default_ttl_s
    if ttl_s > rt.settings.cache_max_ttl_s:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, f"ttl is at most {rt.settings.cache_max_ttl_s} seconds"
        )
    items = [
        (check_key(key, f"key #{i}"), rt.cache.encode(value, f"value #{i}"), rt.cache.ttl_ms(ttl_s))
        for i, (key, value) in enumerate(zip(body.keys, body.values, strict=True))
    ]
    await rt.cache.set_many(items)
    return MessageEnvelope(
        data=BatchResult(count=len(items), keys=body.keys, ttl=ttl_s),
        message=f"Stored {len(items)} keys",
    )


@router.get("/stats", dependencies=[Depends(require_read)])
async def stats(rt: Cache) -> Envelope[CacheStats]:
    counters, info = await rt.cache.counters_and_info()
    redis = RedisBrief(
        version=str(info.get("redis_version", "")),
        uptime=int(info.get("uptime_in_seconds", 0)),
        memory=format_mb(int(info.get("used_memory", 0))),
        clients=int(info.get("connected_clients", 0)),
        operations=int(info.get("total_commands_processed", 0)),
    )
    return Envelope(data=CacheStats(cache=counters_view(counters), redis=redis))
