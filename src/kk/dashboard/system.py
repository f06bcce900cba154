"""/api/queue-dashboard/system: Redis and the workers at a glance, for the overview's panel.

Two Redis round trips at most (INFO, CLIENT LIST), run at the same time. Either may be
refused by a managed service: that part is then null, never an error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from kk.dashboard.schemas import RedisInfo, SystemView
from kk.queues.router import Service
from kk.queues.service import QueueService
from kk.queues.workers_view import WorkerProcess, read_workers
from kk.schemas import Envelope
from kk.security.access import require_read

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/queue-dashboard", tags=["queue-dashboard"])

MAX_WORKERS = 500  # shown at most; a list longer than that is not read on a dashboard


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def redis_info(service: QueueService) -> RedisInfo | None:
    redis = service.redis
    try:
        if isinstance(redis, RedisCluster):
            info = await redis.info(target_nodes=RedisCluster.RANDOM)
        else:
            info = await redis.info()
    except RedisError as exc:
        log.warning("INFO refused; the dashboard shows no Redis panel: %s", exc)
        return None
    if info and all(isinstance(v, dict) for v in info.values()):
        info = next(iter(info.values()))  # one node's answer, keyed by node
    return RedisInfo(
        # Valkey reports the Redis version it is compatible with as redis_version (7.2.4):
        # its own is valkey_version, and server_name says which server it is.
        server=str(info.get("server_name") or "redis"),
        version=str(info.get("valkey_version") or info.get("redis_version") or ""),
        mode=str(info.get("redis_mode") or ""),
        usedMemory=_int(info.get("used_memory")),
        maxMemory=_int(info.get("maxmemory")),
        evictionPolicy=str(info.get("maxmemory_policy") or ""),
        connectedClients=_int(info.get("connected_clients")),
        uptimeSeconds=_int(info.get("uptime_in_seconds")),
    )


async def workers(service: QueueService) -> list[WorkerProcess] | None:
    """One row per worker process (host, pid, queues, concurrency, last seen), as
    `GET /api/queues/workers` lists them; None when CLIENT LIST is refused or fails."""
    try:
        rows = await read_workers(service.redis, service.prefix, service.names)
    except RedisError as exc:
        log.warning("CLIENT LIST failed; the dashboard lists no workers: %s", exc)
        return None
    return None if rows is None else rows[:MAX_WORKERS]


@router.get("/system", dependencies=[Depends(require_read)])
async def system(service: Service) -> Envelope[SystemView]:
    info, listed = await asyncio.gather(redis_info(service), workers(service))
    return Envelope(data=SystemView(redis=info, workers=listed))
