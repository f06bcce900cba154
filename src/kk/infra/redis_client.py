"""Redis clients: one pooled client for the API, one per worker for blocking commands.

Every URL form goes through `connect`:
- `redis://`, `rediss://` (TLS), `unix://` — one server (user, password and db in the URL);
- `redis+sentinel://[user:pass@]host:port[,host:port…]/<master name>[/db]` — the master that
  the Sentinels name, followed across fail-overs;
- `redis+cluster://[user:pass@]host:port[,host:port…]` (`rediss+cluster://` for TLS) —
  a Redis Cluster; queues then need a hash-tagged prefix (see Settings).
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from kk.compat.redis_pool import (
    FastBlockingConnectionPool,
    LeanConnectionPool,
    ResetCheckingBlockingPool,
)
from kk.config.redis import CLUSTER_SCHEMES, SENTINEL_SCHEMES, redis_mode_of
from kk.infra.sentinel_watch import FollowingSentinelPool, watch_for

_RETRYABLE = [BusyLoadingError, ConnectionError, TimeoutError]


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


def _answer_bound(client: aioredis.Redis) -> float | None:
    return client.connection_pool.connection_kwargs.get("socket_timeout")


def _no_answer(bound: float) -> TimeoutError:
    return TimeoutError(f"Redis did not answer within {bound:g}s")


class BoundedPipeline(Pipeline):
    """A pipeline whose `execute` (waiting for a pooled connection, connecting, writing,
    reading every reply) ends within the client's socket timeout, or `bound_s` if set."""

    bound_s: float | None = None

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        bound = self.bound_s or _answer_bound(self)
        if bound is None:
            return await super().execute(raise_on_error)
        try:
            async with asyncio.timeout(bound):
                return await super().execute(raise_on_error)
        except builtins.TimeoutError:  # asyncio.timeout's (redis-py's shadows the name)
            raise _no_answer(bound) from None


# Commands that only read, so sending one again after a dropped connection is harmless.
READ_ONLY_COMMANDS = frozenset(
    {"GET", "MGET", "EXISTS", "TYPE", "TTL", "PTTL", "STRLEN", "HGET", "HMGET", "HGETALL",
     "HEXISTS", "HLEN", "HKEYS", "LLEN", "LRANGE", "LINDEX", "SCARD", "SMEMBERS", "SISMEMBER",
     "ZCARD", "ZCOUNT", "ZSCORE", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZRANK", "XLEN",
     "XRANGE", "XREVRANGE", "XINFO", "SCAN", "INFO", "PING", "CLIENT LIST", "DBSIZE"}
)  # fmt: skip


class BoundedRedis(aioredis.Redis):
    """A client whose every command ends within its socket timeout, all steps included.

    redis-py applies the socket timeout to each step on its own: waiting for a free pooled
    connection, connecting, the connection's handshake, then the reply. Against a Redis
    that accepts connections but does not answer (stopped, `DEBUG SLEEP`, a long script)
    those add up to several timeouts. Here one deadline covers them all; redis-py drops
    the connection of a command cut short, so no late reply is read as another's."""

    # Read-only scripts (by SHA1), registered by their users: like READ_ONLY_COMMANDS.
    read_only_scripts: frozenset[str] = frozenset()

    def register_read_only_script(self, sha: str) -> None:
        self.read_only_scripts = self.read_only_scripts | {sha}

    def _repeatable(self, args: tuple[Any, ...]) -> bool:
        name = str(args[0]).upper() if args else ""
        if name in ("EVALSHA", "EVALSHA_RO") and len(args) > 1:
            return str(args[1]) in self.read_only_scripts
        return name in READ_ONLY_COMMANDS

    async def _execute_once_or_read_twice(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)
        except ConnectionError:
            # The connection dropped under the command. A read is sent again on a fresh
            # connection (running it twice changes nothing); a write never is.
            if not self._repeatable(args):
                raise
            return await super().execute_command(*args, **options)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        bound = _answer_bound(self)
        if bound is None:
            return await self._execute_once_or_read_twice(*args, **options)
        try:
            async with asyncio.timeout(bound):
                return await self._execute_once_or_read_twice(*args, **options)
        except builtins.TimeoutError:  # asyncio.timeout's (redis-py's shadows the name)
            raise _no_answer(bound) from None

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return BoundedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


# Blocking reads a worker sends, with the position of their timeout (seconds) argument.
_BLOCKING = {"BZPOPMIN": -1, "BZPOPMAX": -1, "BLPOP": -1, "BRPOP": -1, "BRPOPLPUSH": -1,
             "BLMOVE": -1}  # fmt: skip


class WorkerRedis(aioredis.Redis):
    """A worker's client: every command ends within `command_bound_s`, a blocking wait
    within its own timeout plus that. Without a socket timeout (a blocking wait must not
    be cut), a command to a Redis that froze would otherwise wait for ever, and the worker
    with it, long after a Sentinel has promoted another master."""

    command_bound_s: float = 10.0

    def _bound(self, args: tuple[Any, ...]) -> float | None:
        name = str(args[0]).upper() if args else ""
        position = _BLOCKING.get(name)
        if position is None:
            return self.command_bound_s
        try:
            block_s = float(args[position])
        except (IndexError, TypeError, ValueError):
            return None
        return None if block_s <= 0 else block_s + self.command_bound_s

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        bound = self._bound(args)
        if bound is None:
            return await super().execute_command(*args, **options)
        try:
            async with asyncio.timeout(bound):
                return await super().execute_command(*args, **options)
        except builtins.TimeoutError:  # asyncio.timeout's (redis-py's shadows the name)
            raise _no_answer(bound) from None

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = BoundedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.bound_s = self.command_bound_s
        return pipe


def connect(
    url: str,
    pool_class: type[ConnectionPool] | None = None,
    *,
    redis_class: type[aioredis.Redis] = aioredis.Redis,
    **options: Any,
) -> aioredis.Redis:
    """A client for any supported URL; `options` are redis-py connection options.
    `redis_class` applies to standalone and Sentinel URLs (Redis Cluster has its own)."""
    parts = urlsplit(url)
    if parts.scheme in SENTINEL_SCHEMES:
        user, password, nodes = _hosts(parts.netloc, 26379)
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ValueError("A Sentinel URL names the master: redis+sentinel://host:port/<name>")
        tls = {"ssl": True} if parts.scheme.startswith("rediss") else {}
        sentinel_kwargs = {"password": password, "socket_timeout": 2, **tls}
        sentinel = Sentinel(
            nodes,
            sentinel_kwargs=sentinel_kwargs,
            username=user,
            password=password,
            db=int(path[1]) if len(path) > 1 else 0,
            **tls,
            **options,
        )
        return sentinel.master_for(
            path[0],
            redis_class=redis_class,
            connection_pool_class=FollowingSentinelPool,
            watch=watch_for(nodes, path[0], sentinel_kwargs),
        )
    if parts.scheme in CLUSTER_SCHEMES:
        user, password, nodes = _hosts(parts.netloc, 6379)
        options.pop("max_connections", None)
        # Not a `Redis` subclass, but the same command API: callers use it as one.
        return RedisCluster(  # type: ignore[return-value]
            startup_nodes=[ClusterNode(h, p) for h, p in nodes],
            username=user,
            password=password,
            ssl=parts.scheme.startswith("rediss"),
            **options,
        )
    if pool_class is None:
        pool_class = ConnectionPool
    return redis_class.from_pool(pool_class.from_url(url, **options))


def api_client(
    url: str, timeout_s: float, max_connections: int = 64, tuned: bool = True
) -> aioredis.Redis:
    """For request handlers: every command ends within `timeout_s` (waiting for a pooled
    connection included), so a hung or absent Redis answers 503 within that bound.
    A burst of requests larger than the pool waits for a free connection (up to the
    timeout) instead of failing: redis-py's default pool raises when it is exhausted.

    No write is ever sent twice. redis-py's retry re-sends a command after a timeout or
    a dropped connection, when it may already have run: for an add without a job id (a
    Lua script that takes the next id) that is a second job. A stale pooled connection is
    still replaced before use (the pool checks it), so a retry would only paper over a
    Redis that is really away, and the client, told 503, decides. Reads alone are sent
    again once on a fresh connection (see `BoundedRedis`)."""
    standalone = redis_mode_of(url) == "standalone"
    pool = FastBlockingConnectionPool if tuned else ResetCheckingBlockingPool
    return connect(
        url,
        pool if standalone else None,
        redis_class=BoundedRedis,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=min(timeout_s, 2.0),
        retry=Retry(NoBackoff(), 0),
        retry_on_error=_RETRYABLE,
        max_connections=max_connections,
        **({"timeout": timeout_s, "health_check_interval": 30} if standalone else {}),
    )


def worker_client(url: str, max_connections: int = 256, tuned: bool = True) -> aioredis.Redis:
    """For workers: no socket timeout, because BullMQ blocks (BZPOPMIN) for up to 10 s and
    redis-py 8's 5 s default timeout would break the wait; each command has a deadline of
    its own instead (`WorkerRedis`). Reconnects with backoff. A worker uses at most one
    connection per slot plus a few (blocking wait, locks, stalled check): size
    `max_connections` above its concurrency."""
    # Keepalive probes notice a peer that vanished without a reset (TCP only).
    extra: dict[str, Any] = {} if url.startswith("unix://") else {"socket_keepalive": True}
    if redis_mode_of(url) != "cluster":
        extra["health_check_interval"] = 30
    return connect(
        url,
        LeanConnectionPool if tuned and redis_mode_of(url) == "standalone" else None,
        redis_class=WorkerRedis,
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=5,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=5), 20),
        retry_on_error=_RETRYABLE,
        max_connections=max_connections,
        **extra,
    )
