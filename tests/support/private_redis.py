"""A Redis server of the test's own, reached through a TcpProxy the test controls."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.support.tcp_proxy import TcpProxy


@dataclass
class ProxiedRedis:
    server: EmbeddedRedis
    proxy: TcpProxy
    direct_url: str  # bypasses the proxy (for the test's own checks)
    url: str  # through the proxy (for the service under test)

    def client(self) -> redis.Redis:
        # Admin credentials: tests change the server's config (CONFIG SET), the service may not.
        return redis.Redis.from_url(self.server.admin_url, decode_responses=True)


@contextlib.contextmanager
def proxied_redis(data_dir: Path) -> Iterator[ProxiedRedis]:
    server = EmbeddedRedis(data_dir)
    direct = server.start()
    target = direct.removeprefix("unix://") if direct.startswith("unix://") else None
    target = target or urlsplit(direct).netloc
    try:
        with TcpProxy(target) as proxy:
            yield ProxiedRedis(server, proxy, direct, f"redis://127.0.0.1:{proxy.port}/0")
    finally:
        server.stop()
