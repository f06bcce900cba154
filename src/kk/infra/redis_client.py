"""Redis clients: one pooled client for the API, one per worker for blocking commands."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

_RETRYABLE = [BusyLoadingError, ConnectionError, TimeoutError]


def api_client(url: str, timeout_s: float, max_connections: int = 64) -> aioredis.Redis:
    """For request handlers: bounded timeouts so a hung or absent Redis answers 503 fast."""
    return aioredis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=min(timeout_s, 2.0),
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2),
        retry_on_error=_RETRYABLE,
        max_connections=max_connections,
        health_check_interval=30,
    )


def worker_client(url: str, max_connections: int = 256) -> aioredis.Redis:
    """For workers: no socket timeout, because BullMQ blocks (BZPOPMIN) for up to 10 s and
    redis-py 8's 5 s default timeout would break the wait; reconnects with backoff."""
    # Keepalive probes notice a peer that vanished without a reset (TCP only).
    tcp = {"socket_keepalive": True} if url.startswith(("redis://", "rediss://")) else {}
    return aioredis.from_url(
        url,
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=5,
        **tcp,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=5), 20),
        retry_on_error=_RETRYABLE,
        max_connections=max_connections,
        health_check_interval=30,
    )
