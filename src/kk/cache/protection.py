"""Cache-aside reads of users, protected against penetration and stampedes.

- A Bloom filter of existing ids answers "certainly absent" without the cache or database.
- A missing id is remembered: JSON `null` under its key for a short TTL (negative caching).
- Concurrent misses of one id load it once per process (single flight) and, through a short
  Redis lock (SET NX PX), once across processes: the others wait briefly for the cache.
- A cache outage falls back to the database (logged), never a 500; a database failure is a
  503 and nothing is cached from it. A hung Redis is bounded by the client's socket timeout
  (KK_REDIS_TIMEOUT_S), not by a tighter asyncio timeout here: under a burst, event-loop lag
  alone would trip one and send the burst to the database.

A user is cached under the plain key `user:<id>`, so the cache CRUD routes can inspect or
invalidate it; a value there that isn't a valid user entry is treated as a miss.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Final

from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from kk.cache.bloom import BloomFilter
from kk.cache.keys import RESERVED
from kk.cache.schemas import UserView
from kk.cache.service import CacheService, decode
from kk.config import Settings
from kk.db.models import User
from kk.db.users import find_user, user_id_chunks
from kk.errors import AppError, ErrorCode
from kk.singleflight import SingleFlight
from kk.times import iso_z

log = logging.getLogger("kk.cache.protection")

MAX_USER_ID = 2**31 - 1
_POLL_S = 0.02
_OUTAGE_LOG_EVERY_S = 5.0

# Cache key, stats hash, Bloom key; ARGV: the id's Bloom offsets (none: no filter in use).
# One round trip: the lookup, its hit/miss count and the Bloom verdict.
_PROBE = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
  return {'hit', value}
end
redis.call('HINCRBY', KEYS[2], 'misses', 1)
if #ARGV == 0 or redis.call('EXISTS', KEYS[3]) == 0 then return {'unknown'} end
for i = 1, #ARGV do
  if redis.call('GETBIT', KEYS[3], ARGV[i]) == 0 then return {'absent'} end
end
return {'maybe'}
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _Miss:
    """No usable cache entry (distinct from a cached "no such user", which is None)."""


MISS: Final = _Miss()
Cached = UserView | None | _Miss


def user_view(user: User) -> UserView:
    created = iso_z(user.created_at)
    return UserView(id=str(user.id), name=user.name, email=user.email, createdAt=created)


def parse_user_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or raw.startswith("0"):
        raise AppError(ErrorCode.VALIDATION_ERROR, "userId must be a positive integer")
    user_id = int(raw)
    if user_id > MAX_USER_ID:
        raise AppError(ErrorCode.VALIDATION_ERROR, f"userId must be at most {MAX_USER_ID}")
    return user_id


class UserLookup:
    def __init__(
        self,
        cache: CacheService,
        engine: AsyncEngine,
        settings: Settings,
        db_ready: asyncio.Event,
    ) -> None:
        self.cache = cache
        self.engine = engine
        self.settings = settings
        self.db_ready = db_ready
        capacity = settings.cache_bloom_capacity
        self.bloom = BloomFilter.for_capacity(capacity) if capacity else None
        tag = self.bloom.name if self.bloom else "off"
        self.bloom_key = cache.redis_key(f"{RESERVED}bloom:users:{tag}")
        self._probe = cache.redis.register_script(_PROBE)
        self._unlock = cache.redis.register_script(_UNLOCK)
        self._flight: SingleFlight[tuple[UserView | None, bool]] = SingleFlight()
        self._last_outage_log = 0.0

    # -- the lookup ----------------------------------------------------------------------------

    async def get(self, user_id: int) -> tuple[UserView, bool]:
        """The user and whether it came from the cache; USER_NOT_FOUND (404) if there is no
        such user, DATABASE_CONNECTION_ERROR (503) if the database can't be asked."""
        name = f"user:{user_id}"
        verdict, cached = await self._probe_cache(name, user_id)
        if cached is None:
            raise self._not_found(user_id)
        if isinstance(cached, UserView):
            return cached, True
        if verdict == "absent":
            raise self._not_found(user_id)
        user, from_cache = await self._flight.run(
            name, lambda: self._load(name, user_id, cache_up=verdict != "down")
        )
        if user is None:
            raise self._not_found(user_id)
        return user, from_cache

    async def _probe_cache(self, name: str, user_id: int) -> tuple[str, Cached]:
        offsets = self.bloom.offsets(user_id) if self.bloom else []
        try:
            async with self.cache.slot():
                reply = await self._probe(
                    keys=[self.cache.redis_key(name), self.cache.stats_key, self.bloom_key],
                    args=offsets,
                )
        except RedisError as exc:
            self._cache_down(exc)
            return "down", MISS
        verdict = reply[0]
        return verdict, self._parse(reply[1], user_id) if verdict == "hit" else MISS

    async def _load(self, name: str, user_id: int, cache_up: bool) -> tuple[UserView | None, bool]:
        """One per id in this process at a time (single flight)."""
        lock = self.cache.redis_key(f"{RESERVED}lock:{name}")
        token = uuid.uuid4().hex
        locked = False
        if cache_up:
            try:
                async with self.cache.slot() as redis:
                    pipe = redis.pipeline(transaction=False)
                    pipe.set(lock, token, nx=True, px=self.settings.cache_lock_ms)
                    pipe.get(self.cache.redis_key(name))  # filled since our probe?
                    locked_reply, raw = await pipe.execute()
                locked = bool(locked_reply)
                cached = self._parse(raw, user_id) if raw is not None else MISS
                if not isinstance(cached, _Miss):
                    if locked:
                        await self._release(lock, token)
                    return cached, True
                if not locked:
                    # Another process is loading it: wait for its result in the cache.
                    cached = await self._wait_for_fill(name, lock, user_id)
                    if not isinstance(cached, _Miss):
                        return cached, True
            except RedisError as exc:
                self._cache_down(exc)
                cache_up = False
        try:
            user = await self._query(user_id)
            if cache_up:
                await self._store(name, user)
            return user, False
        finally:
            if locked:
                await self._release(lock, token)

    async def _wait_for_fill(self, name: str, lock: str, user_id: int) -> Cached:
        """Poll until the lock holder fills the cache; MISS if it gave up (lock gone, no
        value: e.g. its database query failed) or takes longer than the lock lasts."""
        deadline = time.monotonic() + self.settings.cache_lock_ms / 1000
        while time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            async with self.cache.slot() as redis:
                pipe = redis.pipeline(transaction=False)
                pipe.get(self.cache.redis_key(name))
                pipe.exists(lock)
                raw, held = await pipe.execute()
            if raw is not None:
                cached = self._parse(raw, user_id)
                if not isinstance(cached, _Miss):
                    return cached
            if not held:
                return MISS
        return MISS

    async def _query(self, user_id: int) -> UserView | None:
        if not self.db_ready.is_set():
            raise AppError(ErrorCode.DATABASE_CONNECTION_ERROR, "The database is not ready yet")
        try:
            async with asyncio.timeout(self.settings.db_query_timeout_ms / 1000):
                user = await find_user(self.engine, user_id)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("Database query for user %d failed: %s", user_id, exc)
            raise AppError(
                ErrorCode.DATABASE_CONNECTION_ERROR, "The database is unavailable; retry later"
            ) from None
        return user_view(user) if user else None

    async def _store(self, name: str, user: UserView | None) -> None:
        if user is None:
            encoded, ttl_ms = "null", self.cache.ttl_ms(self.settings.cache_negative_ttl_s)
        else:
            encoded, ttl_ms = user.model_dump_json(), self.cache.ttl_ms()
        try:
            await self.cache.set(name, encoded, ttl_ms)
        except RedisError as exc:
            self._cache_down(exc)

    async def _release(self, lock: str, token: str) -> None:
        try:
            async with self.cache.slot():
                await self._unlock(keys=[lock], args=[token])
        except RedisError as exc:
            self._cache_down(exc)  # the lock expires by itself

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _parse(raw: str, user_id: int) -> Cached:
        value: Any = decode(raw)
        if value is None:
            return None
        try:
            user = UserView.model_validate(value)
        except ValidationError:
            return MISS
        return user if user.id == str(user_id) else MISS

    @staticmethod
    def _not_found(user_id: int) -> AppError:
        return AppError(ErrorCode.USER_NOT_FOUND, f"User {user_id} not found")

    def _cache_down(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_outage_log >= _OUTAGE_LOG_EVERY_S:  # one line per 5 s, not per call
            self._last_outage_log = now
            log.warning("Cache unavailable, reading the database instead: %r", exc)

    # -- the Bloom filter ------------------------------------------------------------------------

    async def rebuild_bloom(self) -> int:
        """Rebuild the filter from the users table; returns the number of ids added."""
        if self.bloom is None:
            return 0
        bitmap = self.bloom.new_bitmap()
        count = 0
        async for ids in user_id_chunks(self.engine):
            self.bloom.add_all(bitmap, ids)
            count += len(ids)
        async with self.cache.slot() as redis:
            await redis.set(self.bloom_key, bytes(bitmap))
        if count > self.settings.cache_bloom_capacity:
            log.warning(
                "%d users exceed cache_bloom_capacity %d: more false positives",
                count,
                self.settings.cache_bloom_capacity,
            )
        return count
