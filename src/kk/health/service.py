"""Runs the indicators concurrently, each under the configured deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kk.config import Settings
from kk.health.indicators import ObserveSeconds, database_ping, redis_brief, redis_details
from kk.health.schemas import (
    DatabaseIndicator,
    HealthReport,
    Indicator,
    RedisHealth,
    RedisIndicator,
    aggregate,
)
from kk.singleflight import SingleFlight

log = logging.getLogger("kk.health")


def describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return f"Timed out: {text}"
    return f"{type(exc).__name__}: {text}"[:300]


class HealthService:
    def __init__(self, settings: Settings, observe_redis: ObserveSeconds | None = None) -> None:
        self.settings = settings
        self.timeout_s = settings.health_timeout_ms / 1000
        # Near maxmemory, `SET <key> <job-sized value> XX`: would an add be refused? The key
        # is never created (XX), so the probe stores nothing.
        self.probe_key = f"{settings.queue_prefix}:kk-health-room"
        self.observe_redis = observe_redis
        self._flights: SingleFlight[Any] = SingleFlight()

    async def _guarded(
        self,
        key: str,
        call: Callable[[], Awaitable[Indicator]],
        down: Callable[[str], Indicator],
    ) -> Indicator:
        try:
            return await self._flights.run(key, call, self.timeout_s)
        except Exception as exc:
            log.warning("health check %s failed: %s", key, describe_error(exc))
            return down(describe_error(exc))

    async def check_redis(self, runtime: Any) -> Indicator:
        if runtime is None:
            return RedisIndicator(status="down", message="The service is still starting")
        threshold = self.settings.health_redis_memory_threshold_mb
        job_bytes = self.settings.max_job_data_bytes
        return await self._guarded(
            "redis",
            lambda: redis_brief(
                runtime.redis, threshold, self.probe_key, job_bytes, self.observe_redis
            ),
            lambda msg: RedisIndicator(status="down", message=msg),
        )

    async def check_database(self, runtime: Any) -> Indicator:
        # The engine is optional on the runtime: read it defensively.
        engine = getattr(runtime, "db", None)
        if runtime is None or engine is None:
            message = "The service is still starting" if runtime is None else "No database"
            return DatabaseIndicator(status="down", message=message)
        return await self._guarded(
            "database",
            lambda: database_ping(engine),
            lambda msg: DatabaseIndicator(status="down", message=msg),
        )

    async def check(self, runtime: Any) -> HealthReport:
        database, redis = await asyncio.gather(
            self.check_database(runtime), self.check_redis(runtime)
        )
        return aggregate({"database": database, "redis": redis})

    async def redis(self, runtime: Any) -> RedisHealth:
        if runtime is None:
            return RedisHealth(status="down", error="The service is still starting")
        settings = self.settings
        try:
            return await self._flights.run(
                "redis-details",
                lambda: redis_details(
                    runtime.redis,
                    runtime.redis_url,
                    settings.health_redis_memory_threshold_mb,
                    settings.health_redis_connections_threshold,
                    self.probe_key,
                    settings.max_job_data_bytes,
                    self.observe_redis,
                ),
                self.timeout_s,
            )
        except Exception as exc:
            log.warning("health check redis failed: %s", describe_error(exc))
            return RedisHealth(status="down", error=describe_error(exc))

    async def close(self) -> None:
        await self._flights.close()
