"""/api/queue-dashboard/system: Redis and the workers at a glance, for the overview's panel.

Two Redis round trips at most (INFO, CLIENT LIST), run at the same time. Either may be
refused by a managed service: that part is then null, never an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any

from fastapi import APIRouter, Depends
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from kk.dashboard.schemas import RedisInfo, SystemView, WorkerView
from kk.queues.router import Service
from kk.queues.service import QueueService
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
        version=str(info.get("redis_version") or info.get("valkey_version") or ""),
        mode=str(info.get("redis_mode") or ""),
        usedMemory=_int(info.get("used_memory")),
        maxMemory=_int(info.get("maxmemory")),
        evictionPolicy=str(info.get("maxmemory_policy") or ""),
        connectedClients=_int(info.get("connected_clients")),
        uptimeSeconds=_int(info.get("uptime_in_seconds")),
    )


def _queue_of(client_name: str, prefix: str, queues: set[str]) -> tuple[str, str] | None:
    """(queue, worker name) of a BullMQ connection named `<prefix>:<queue>[:w:<name>]`;
    the Node port base64-encodes the queue name."""
    if not client_name.startswith(f"{prefix}:"):
        return None
    rest = client_name[len(prefix) + 1 :]
    queue, _, worker = rest.partition(":w:")
    if queue not in queues:
        try:
            queue = base64.b64decode(queue, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    return (queue, worker) if queue in queues else None


def _host(addr: str) -> str:
    """The machine a connection comes from: its IP without the port; "unix" for a local
    socket (whose path is nobody's business)."""
    if addr.startswith("/") or not addr:
        return "unix"
    return addr.rsplit(":", 1)[0]


async def workers(service: QueueService) -> list[WorkerView] | None:
    """One row per worker (queue, name, host): a worker holds several connections."""
    try:
        raw = await service.redis.client_list()
    except RedisError as exc:
        log.warning("CLIENT LIST refused; the dashboard lists no workers: %s", exc)
        return None
    queues = set(service.names)
    grouped: dict[tuple[str, str, str], WorkerView] = {}
    for client in raw if isinstance(raw, list) else []:
        if not isinstance(client, dict):
            continue
        owner = _queue_of(str(client.get("name") or ""), service.prefix, queues)
        if owner is None:
            continue
        key = (*owner, _host(str(client.get("addr") or "")))
        age, idle = _int(client.get("age")), _int(client.get("idle"))
        seen = grouped.get(key)
        if seen is None:
            grouped[key] = WorkerView(
                queue=key[0], name=key[1], host=key[2], connections=1, ageSeconds=age,
                idleSeconds=idle,
            )  # fmt: skip
            continue
        seen.connections += 1
        seen.ageSeconds = max(seen.ageSeconds or 0, age or 0)
        idles = [x for x in (seen.idleSeconds, idle) if x is not None]
        seen.idleSeconds = min(idles) if idles else None
    return sorted(grouped.values(), key=lambda w: (w.queue, w.name, w.host))[:MAX_WORKERS]


@router.get("/system", dependencies=[Depends(require_read)])
async def system(service: Service) -> Envelope[SystemView]:
    info, listed = await asyncio.gather(redis_info(service), workers(service))
    return Envelope(data=SystemView(redis=info, workers=listed))
