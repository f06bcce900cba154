"""The checks themselves: one Redis PING (+ INFO), one `SELECT 1` on the database."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kk.config.redis import redis_mode_of
from kk.health.memory import memory_verdict
from kk.health.schemas import (
    DatabaseIndicator,
    RedisConnections,
    RedisHealth,
    RedisIndicator,
    RedisMemory,
    RedisMemoryBrief,
)
from kk.units import format_mb, format_ms, format_threshold_mb

ObserveSeconds = Callable[[float], None]


async def timed_ping(redis: Redis, observe: ObserveSeconds | None = None) -> float:
    """Round trip of one PING, in seconds."""
    started = time.perf_counter()
    answer = await redis.ping()
    elapsed = time.perf_counter() - started
    if answer is not True and answer not in ("PONG", b"PONG"):
        raise RuntimeError(f"unexpected PING answer: {answer!r}")
    if observe is not None:
        observe(elapsed)
    return elapsed


def policy_warnings(info: Mapping[str, Any]) -> list[str]:
    policy = info.get("maxmemory_policy")
    if policy and policy != "noeviction":
        return [
            f"maxmemory-policy is '{policy}': at maxmemory Redis evicts keys and may silently "
            "drop queued jobs; queues need 'noeviction'"
        ]
    return []


async def redis_brief(
    redis: Redis,
    memory_threshold_mb: float,
    probe_key: str,
    job_bytes: int,
    observe: ObserveSeconds | None = None,
) -> RedisIndicator:
    """The `redis` indicator of `/health`: down when Redis answers but refuses writes."""
    elapsed = await timed_ping(redis, observe)
    info = await redis.info("memory")
    used = int(info.get("used_memory", 0))
    memory = await memory_verdict(redis, info, memory_threshold_mb, probe_key, job_bytes)
    return RedisIndicator(
        status="down" if memory.refused else "up",
        message=memory.refused,
        responseTime=format_ms(elapsed * 1000),
        memory=RedisMemoryBrief(used=format_mb(used), healthy=memory.healthy),
        warnings=policy_warnings(info) + memory.warnings or None,
    )


def redis_mode(url: str, info: Mapping[str, Any]) -> str:
    """Sentinel is a property of how we connect (INFO of a master says "standalone");
    cluster and standalone come from INFO (`redis_mode`, Valkey 8: `server_mode`)."""
    if redis_mode_of(url) == "sentinel":
        return "sentinel"
    mode = info.get("redis_mode") or info.get("server_mode") or "standalone"
    return mode if mode in ("standalone", "cluster", "sentinel") else "standalone"


async def redis_details(
    redis: Redis,
    url: str,
    memory_threshold_mb: float,
    connections_threshold: int,
    probe_key: str,
    job_bytes: int,
    observe: ObserveSeconds | None = None,
) -> RedisHealth:
    """`GET /health/redis`: PING, then one INFO (default sections: server, clients, memory);
    down, with every detail, when Redis answers but refuses writes (memory full, or no room
    for an add of `job_bytes`)."""
    elapsed = await timed_ping(redis, observe)
    info = await redis.info()
    used = int(info.get("used_memory", 0))
    maxmemory = int(info.get("maxmemory", 0))
    clients = int(info.get("connected_clients", 0))
    memory = await memory_verdict(redis, info, memory_threshold_mb, probe_key, job_bytes)
    clients_ok = clients <= connections_threshold
    warnings = policy_warnings(info) + memory.warnings
    if not clients_ok:
        warnings.append(
            f"{clients} client connections are over the threshold of {connections_threshold}"
        )
    server_name = info.get("server_name")
    server_version = info.get(f"{server_name}_version") if server_name else None
    return RedisHealth(
        status="down" if memory.refused else "up",
        error=memory.refused,
        ping="PONG",
        responseTime=format_ms(elapsed * 1000),
        memory=RedisMemory(
            used=format_mb(used),
            threshold=format_threshold_mb(memory_threshold_mb),
            healthy=memory.healthy,
            maxmemory=format_mb(maxmemory) if maxmemory else None,
            policy=info.get("maxmemory_policy"),
        ),
        connections=RedisConnections(
            current=clients,
            threshold=connections_threshold,
            healthy=clients_ok,
            max=int(info["maxclients"]) if "maxclients" in info else None,
        ),
        mode=redis_mode(url, info),
        version=str(info.get("redis_version", "")) or None,
        server=f"{server_name} {server_version}" if server_name and server_version else None,
        uptime=int(info["uptime_in_seconds"]) if "uptime_in_seconds" in info else None,
        warnings=warnings,
    )


async def database_ping(engine: AsyncEngine) -> DatabaseIndicator:
    started = time.perf_counter()
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return DatabaseIndicator(
        status="up", responseTime=format_ms((time.perf_counter() - started) * 1000)
    )
