"""Redis clients: one pooled client for the API, one per worker for blocking commands.

Every URL form goes through `connect`:
- `redis://`, `rediss://` (TLS), `unix://` — one server (user, password and db in the URL);
- `redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>[/db]` — the master that
  the Sentinels name, followed across fail-overs;
- `redis+cluster://[user:pass@]host:port[,host:port…]` (`rediss+cluster://` for TLS) —
  a Redis Cluster; queues then need a hash-tagged prefix (see Settings).
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    ConnectionPool,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, DataError, TimeoutError

_RETRYABLE = [BusyLoadingError, ConnectionError, TimeoutError]
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def redis_mode_of(url: str) -> str:
    scheme = url.split("://", 1)[0]
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    return "standalone"


def _hosts(netloc: str, default_port: int) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """User, password and host:port list of a URL's `user:pass@h1:p1,h2:p2` part."""
    auth, _, hosts = netloc.rpartition("@")
    user, _, password = auth.partition(":")
    nodes = []
    for item in hosts.split(","):
        if item.startswith("["):  # [ipv6]:port
            host, _, port = item[1:].partition("]")
            port = port.lstrip(":")
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        else:
            host, port = item, ""
        nodes.append((host, int(port or default_port)))
    return unquote(user) or None, unquote(password) or None, nodes


def connect(
    url: str, pool_class: type[ConnectionPool] | None = None, **options: Any
) -> aioredis.Redis:
    """A client for any supported URL; `options` are redis-py connection options."""
    parts = urlsplit(url)
    if parts.scheme in SENTINEL_SCHEMES:
        user, password, nodes = _hosts(parts.netloc, 26379)
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("A Sentinel URL names the master: redis+sentinel://host:port/<name>")
        tls = {"ssl": True} if parts.scheme.startswith("rediss") else {}
        sentinel = Sentinel(
            nodes,
            sentinel_kwargs={"password": password, "socket_timeout": 2, **tls},
            username=user,
            password=password,
            db=int(path[1]) if len(path) > 1 else 0,
            **tls,
            **options,
        )
        return sentinel.master_for(path[0])
    if parts.scheme in CLUSTER_SCHEMES:
        user, password, nodes = _hosts(parts.netloc, 6379)
        options.pop("max_connections", None)
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in nodes],
            username=user,
            password=password,
            ssl=parts.scheme.startswith("rediss"),
            **options,
        )
    if pool_class is not None:
        return aioredis.Redis.from_pool(pool_class.from_url(url, **options))
    return aioredis.from_url(url, **options)


def _pack_with_hiredis(self: AbstractConnection, *args: Any) -> list[bytes]:
    """redis-py's sync connections pack commands with hiredis, its asyncio ones in Python
    (about 8 µs for a BullMQ script call against 1 µs); the bytes are the same."""
    if isinstance(args[0], str):  # 'CONFIG GET' and the like go as separate words
        args = (*args[0].encode().split(), *args[1:])
    elif b" " in args[0]:
        args = (*args[0].split(), *args[1:])
    try:
        return [hiredis.pack_command(args)]
    except TypeError:
        pass
    args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
    try:
        return [hiredis.pack_command(args)]
    except TypeError as exc:  # what redis-py raises for a bool, None, ...
        raise DataError(f"Invalid input in a Redis command: {exc}") from None


@functools.cache
def _hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    return type(
        connection_class.__name__, (connection_class,), {"pack_command": _pack_with_hiredis}
    )


class _HiredisPacking(ConnectionPool):
    """A pool whose connections pack commands with hiredis."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_class = _hiredis_packing(self.connection_class)


class FastBlockingConnectionPool(_HiredisPacking, BlockingConnectionPool):
    pass


class LeanConnectionPool(_HiredisPacking, ConnectionPool):
    """redis-py 8's pool takes a lock, emits observability events and polls the socket for
    stray bytes around every command: a large share of a busy worker's time. A connection
    interrupted mid-command is disconnected by redis-py itself, so the poll is redundant;
    this pool just hands connections out and takes them back."""

    async def get_connection(self, command_name=None, *keys, **options):  # type: ignore[override]
        try:
            connection = self._available_connections.pop()
        except IndexError:  # none idle: let the base class create one (and count it)
            return await super().get_connection(command_name, *keys, **options)
        self._in_use_connections.add(connection)
        if not connection.is_connected:
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:  # type: ignore[override]
        self._in_use_connections.discard(connection)
        if connection.should_reconnect():
            await connection.disconnect()
        self._available_connections.append(connection)


def api_client(url: str, timeout_s: float, max_connections: int = 64) -> aioredis.Redis:
    """For request handlers: bounded timeouts so a hung or absent Redis answers 503 fast.
    A burst of requests larger than the pool waits for a free connection (up to the
    timeout) instead of failing: redis-py's default pool raises when it is exhausted."""
    standalone = redis_mode_of(url) == "standalone"
    return connect(
        url,
        FastBlockingConnectionPool if standalone else None,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=min(timeout_s, 2.0),
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2),
        retry_on_error=_RETRYABLE,
        max_connections=max_connections,
        **({"timeout": timeout_s, "health_check_interval": 30} if standalone else {}),
    )


def worker_client(url: str, max_connections: int = 256) -> aioredis.Redis:
    """For workers: no socket timeout, because BullMQ blocks (BZPOPMIN) for up to 10 s and
    redis-py 8's 5 s default timeout would break the wait; reconnects with backoff. A worker
    uses at most one connection per slot plus a few (blocking wait, locks, stalled check):
    size `max_connections` above its concurrency."""
    # Keepalive probes notice a peer that vanished without a reset (TCP only).
    tcp = {} if url.startswith("unix://") else {"socket_keepalive": True}
    return connect(
        url,
        LeanConnectionPool if redis_mode_of(url) == "standalone" else None,
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=5,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=5), 20),
        retry_on_error=_RETRYABLE,
        max_connections=max_connections,
        **tcp,
        **({} if redis_mode_of(url) == "cluster" else {"health_check_interval": 30}),
    )
