"""/api/cache: plain get/put/delete of cache keys and a paged key listing, confined to the
cache's namespace. Reads need a read key, writes an admin key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from kk.cache.demo_routes import Cache
from kk.cache.keys import check_key, check_pattern
from kk.cache.schemas import (
    CacheEntry,
    DeleteResult,
    KeyPage,
    MessageEnvelope,
    PutBody,
    PutResult,
)
from kk.errors import AppError, ErrorCode
from kk.schemas import Envelope
from kk.security.access import require_admin, require_read

router = APIRouter(prefix="/api/cache", tags=["cache"])

# `path` so keys may hold "/" (sent percent-encoded or not).
KeyPath = Annotated[str, Path(min_length=1, max_length=256)]
_MAX_CURSOR = 2**64 - 1


def _not_found(key: str) -> AppError:
    return AppError(ErrorCode.CACHE_KEY_NOT_FOUND, f"Cache key '{key}' not found")


@router.get("", dependencies=[Depends(require_read)])
async def list_keys(
    rt: Cache,
    pattern: Annotated[str, Query(max_length=256, description="glob, as Redis MATCH")] = "*",
    cursor: Annotated[str, Query(pattern=r"^[0-9]{1,20}$")] = "0",
    count: Annotated[int, Query(ge=1, description="SCAN hint; capped by settings")] = 100,
) -> Envelope[KeyPage]:
    position = int(cursor)
    if position > _MAX_CURSOR:
        raise AppError(ErrorCode.VALIDATION_ERROR, "cursor is out of range")
    count = min(count, rt.settings.cache_max_scan_count)
    next_cursor, keys = await rt.cache.scan(check_pattern(pattern), position, count)
    return Envelope(data=KeyPage(keys=keys, cursor=str(next_cursor), done=next_cursor == 0))


@router.get("/{key:path}", dependencies=[Depends(require_read)])
async def get_key(key: KeyPath, rt: Cache) -> Envelope[CacheEntry]:
    entry = await rt.cache.get(check_key(key))
    if entry is None:
        raise _not_found(key)
    return Envelope(data=CacheEntry(key=key, value=entry.value, ttl=entry.ttl_s))


@router.put("/{key:path}", dependencies=[Depends(require_admin)])
async def put_key(key: KeyPath, body: PutBody, rt: Cache) -> MessageEnvelope[PutResult]:
    check_key(key)
    if body.ttl is not None and body.ttl > rt.settings.cache_max_ttl_s:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, f"ttl is at most {rt.settings.cache_max_ttl_s} seconds"
        )
    # A TTL the client chose is kept exactly; the default one gets jitter.
    ttl_ms = rt.cache.ttl_ms(body.ttl, jitter=body.ttl is None)
    await rt.cache.set(key, rt.cache.encode(body.value), ttl_ms)
    return MessageEnvelope(
        data=PutResult(key=key, ttl=round(ttl_ms / 1000)), message=f"Cache key '{key}' stored"
    )


@router.delete("/{key:path}", dependencies=[Depends(require_admin)])
async def delete_key(key: KeyPath, rt: Cache) -> MessageEnvelope[DeleteResult]:
    if not await rt.cache.delete(check_key(key)):
        raise _not_found(key)
    return MessageEnvelope(data=DeleteResult(key=key), message=f"Cache key '{key}' deleted")
