"""Start and stop the cache and the database for a process.

The database is prepared (migrations, demo users) at start. If it can't be reached then,
the process starts anyway, answers 503 on routes that need it (health shows it down) and
keeps retrying in the background; a schema or code error is not retried but raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from kk.cache.protection import UserLookup
from kk.cache.service import CacheService
from kk.config import Settings
from kk.db.migrate import prepare_database
from kk.infra.redis_client import api_client

log = logging.getLogger("kk.cache")

_UNREACHABLE = (DBAPIError, OSError, TimeoutError)
_RETRY_MAX_S = 30.0


@dataclass
class CacheRuntime:
    settings: Settings
    engine: AsyncEngine
    cache: CacheService
    users: UserLookup
    db_ready: asyncio.Event
    own_redis: Redis | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    async def start(cls, settings: Settings, redis: Redis, engine: AsyncEngine) -> CacheRuntime:
        own = None
        if settings.cache_redis_url:
            own = api_client(
                settings.cache_redis_url, settings.redis_timeout_s, tuned=settings.tuned_worker
            )
        cache = CacheService(own or redis, settings)
        ready = asyncio.Event()
        users = UserLookup(cache, engine, settings, ready)
        runtime = cls(settings, engine, cache, users, ready, own_redis=own)
        try:
            await runtime._prepare()
        except _UNREACHABLE as exc:
            log.error("Database unavailable at start (%s); retrying in the background", exc)
        runtime._task = asyncio.create_task(runtime._maintain(), name="kk-cache-maintenance")
        return runtime

    async def _prepare(self) -> None:
        await prepare_database(self.engine, self.settings.demo_users)
        self.db_ready.set()
        await self.refresh_bloom()

    async def refresh_bloom(self) -> None:
        try:
            count = await self.users.rebuild_bloom()
        except (RedisError, *_UNREACHABLE) as exc:
            log.warning("Could not rebuild the users Bloom filter: %s", exc)
        else:
            log.debug("Users Bloom filter rebuilt from %d ids", count)

    async def _maintain(self) -> None:
        delay = 1.0
        while not self.db_ready.is_set():
            await asyncio.sleep(delay)
            try:
                await self._prepare()
                log.info("Database ready")
            except _UNREACHABLE as exc:
                delay = min(delay * 2, _RETRY_MAX_S)
                log.warning("Database still unavailable (%s); next try in %.0fs", exc, delay)
        period = self.settings.cache_bloom_refresh_s
        while period:
            # Picks up users added by other means; until then they may read as absent.
            await asyncio.sleep(period)
            await self.refresh_bloom()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.own_redis is not None:
            with contextlib.suppress(Exception):
                await self.own_redis.aclose()
