"""The long-lived parts of a process (Redis, queues, workers), started and stopped in order.

Shared by `kk serve` (the FastAPI lifespan) and `kk worker`, so both see the same
configuration and the same embedded server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from kk.cache.lifecycle import CacheRuntime
from kk.compat import check_versions
from kk.config import Settings
from kk.db.engine import create_engine
from kk.infra.embedded_redis import EmbeddedRedis
from kk.infra.redis_client import api_client
from kk.infra.sentinel_watch import close_watches
from kk.processors.base import JobContext, ProcessorSpec
from kk.processors.registry import resolve_processor
from kk.queues.service import QueueService
from kk.schedules.manager import ScheduleManager
from kk.workers.pool import JobListener, WorkerPool

log = logging.getLogger("kk.runtime")


def private_data_dir(path: Path) -> None:
    """The data dir holds secrets (session and webhook keys), emails with reset links and
    the database: only this service's user may enter it, whatever the umask."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        log.warning("Data dir %s was open to other users: now 0700", path)
        path.chmod(0o700)


def load_processors(settings: Settings) -> dict[str, ProcessorSpec | None]:
    return {
        name: resolve_processor(name, cfg.processor, cfg.payload)
        for name, cfg in settings.queues.items()
    }


@dataclass
class Runtime:
    settings: Settings
    redis_url: str
    redis: Redis
    queues: QueueService
    embedded: EmbeddedRedis | None = None
    workers: WorkerPool | None = None
    schedules: ScheduleManager | None = None
    db: AsyncEngine | None = None
    cache: CacheRuntime | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        with_workers: bool,
        worker_queues: Iterable[str] | None = None,
        concurrency: int | None = None,
        job_listeners: Iterable[JobListener] = (),
    ) -> Runtime:
        check_versions(settings.tuned_worker)  # before anything uses the libraries' internals
        private_data_dir(settings.data_dir)
        embedded = None
        if settings.redis_url:
            redis_url = settings.redis_url
        else:
            embedded = EmbeddedRedis(settings.data_dir)
            redis_url = embedded.start()
            embedded.start_supervision()
        redis = api_client(redis_url, settings.redis_timeout_s, tuned=settings.tuned_worker)
        processors = load_processors(settings)
        queues = QueueService(redis, settings, processors)
        runtime = cls(settings, redis_url, redis, queues, embedded)
        runtime.db = create_engine(settings)
        runtime.cache = await CacheRuntime.start(settings, redis, runtime.db)
        schedules = runtime.schedules = ScheduleManager(redis, settings, queues)
        if with_workers:
            context = JobContext(settings=settings, redis=redis, queues=queues)
            # `kk worker --queues` wins; otherwise KK_WORKER_QUEUES; otherwise every queue.
            wanted = worker_queues or settings.worker_queues or None
            pool = WorkerPool(settings, redis_url, processors, context, wanted, concurrency)
            pool.listeners.extend(job_listeners)  # before start: no job goes unseen
            pool.listeners.append(schedules)  # records when a schedule's tick runs
            pool.start()
            runtime.workers = pool
        schedules.start()
        return runtime

    async def stop(self) -> None:
        if self.schedules is not None:
            await self.schedules.stop()
        if self.workers is not None:
            await self.workers.close()
        if self.cache is not None:
            await self.cache.stop()
        if self.db is not None:
            await self.db.dispose()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await close_watches()
        if self.embedded is not None:
            await self.embedded.stop_supervision()
            self.embedded.stop()
