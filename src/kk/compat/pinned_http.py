"""An httpx transport whose connections go through a network backend of ours, built for one
client per process serving many concurrent requests.

httpx has no public hook for the network backend; the httpcore pool under its transport has
one, so the transport's private `_pool` is replaced. Written for `kk.compat.ALWAYS`; the
SSRF tests (tests/unit/test_net_guard_pinning.py) fail if a new httpx stops using it.
"""

from __future__ import annotations

import functools
import importlib.util
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpcore
import httpx

# httpcore's pool scans all its connections (a poll() syscall per idle one) whenever a
# request starts or ends, and requests race for connections: the cost per request grows
# with the concurrency (two waiting requests can be given the same idle connection, and the
# loser queues again). Many small pools, each request to the least busy, keep it flat.
SHARDS = 64


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One per process: loading the CA bundle costs ~14 ms of CPU, far more than a request.
    An SSLContext may be shared by any number of connections and event loops."""
    return httpx.create_ssl_context(trust_env=False)


def _cache_missing_sniffio() -> None:
    """httpcore imports `sniffio` (optional, not installed here) at every lock and shield,
    about ten times per request. A failed import is not cached, so each walks sys.path
    (~100 µs); a None in sys.modules makes it fail at once, as it would anyway."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class _Released:
    """A response body stream that tells its shard when it is closed (the connection free)."""

    def __init__(self, stream: Any, done: Callable[[], None]) -> None:
        self._stream = stream
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            done, self._done = self._done, None  # once, however often it is closed
            if done is not None:
                done()


class _ShardedPool:
    """What httpx's transport uses of a pool, over several httpcore pools. Each is a whole
    pool: a connection is reused only for its origin, within its shard."""

    def __init__(self, pools: list[httpcore.AsyncConnectionPool]) -> None:
        self._pools = pools
        self._busy = [0] * len(pools)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        index = self._busy.index(min(self._busy))  # ties: the first, so few pools stay warm
        self._busy[index] += 1

        def done() -> None:
            self._busy[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            done()
            raise
        response.stream = _Released(response.stream, done)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    async def __aenter__(self) -> _ShardedPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits | None = None
    ) -> None:
        _cache_missing_sniffio()
        context = shared_ssl_context()
        limits = limits or httpx.Limits()
        # verify=context: the base class's own (discarded) pool then builds no context either.
        super().__init__(verify=context, trust_env=False, limits=limits)
        keepalive = limits.max_keepalive_connections
        pools = [
            httpcore.AsyncConnectionPool(
                ssl_context=context,
                max_connections=limits.max_connections,
                max_keepalive_connections=None if keepalive is None else -(-keepalive // SHARDS),
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=backend,
            )
            for _ in range(SHARDS)
        ]
        self._pool = _ShardedPool(pools)  # type: ignore[assignment]
