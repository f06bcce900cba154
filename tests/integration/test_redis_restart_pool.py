"""After Redis restarts, no add fails on a pooled connection from before the restart.

Each connection the API's pool kept idle was closed by the old server. Reusing one would
write the add to a dead socket: "Connection closed by server", a 503 for an add the
client then has to retry although Redis was back."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.support.redis_topologies import _start, _wait, server_binary
from tests.support.server import free_port, start_server

QUEUES = {"rs": {"attempts": 1}}
PARALLEL = 16


def _adds(url: str, tag: str) -> list[int]:
    def add(i: int) -> int:
        body = {"data": {"i": i}, "options": {"jobId": f"{tag}-{i}"}}
        return httpx.post(f"{url}/api/queues/rs/jobs", json=body, timeout=10).status_code

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(add, range(PARALLEL)))


def test_no_add_fails_on_a_connection_from_before_a_restart(tmp_path):
    """The embedded server, stopped and started again on its unix socket."""
    redis_dir = tmp_path / "redis-data"
    server = EmbeddedRedis(redis_dir)
    url = server.start()
    env = {"KK_REDIS_URL": url, "KK_QUEUES": json.dumps(QUEUES), "KK_RUN_WORKERS": "false"}
    try:
        with start_server(tmp_path / "kk", env) as srv:
            for round_ in range(3):
                # Several connections in the pool, idle.
                assert set(_adds(srv.url, f"warm{round_}")) == {201}
                server.stop()
                server = EmbeddedRedis(redis_dir)
                assert server.start() == url
                redis.Redis.from_url(server.admin_url).ping()
                statuses = _adds(srv.url, f"after{round_}")
                assert statuses == [201] * PARALLEL, f"round {round_}: {statuses}"
    finally:
        server.stop()


@pytest.mark.skipif(server_binary() is None, reason="needs a Redis server binary")
def test_no_add_fails_on_a_connection_from_before_a_kill(tmp_path):
    """A server on TCP, killed (`kill -9`) and started again on the same port."""
    binary, port = server_binary(), free_port()
    assert binary
    proc = _start(binary, tmp_path / "redis", port)
    url = f"redis://127.0.0.1:{port}/0"
    env = {"KK_REDIS_URL": url, "KK_QUEUES": json.dumps(QUEUES), "KK_RUN_WORKERS": "false"}
    try:
        _wait(lambda: redis.Redis(port=port).ping())
        with start_server(tmp_path / "kk", env) as srv:
            for round_ in range(3):
                assert set(_adds(srv.url, f"warm{round_}")) == {201}
                proc.kill()
                proc.wait()
                proc = _start(binary, tmp_path / "redis", port)
                _wait(lambda: redis.Redis(port=port).ping())
                statuses = _adds(srv.url, f"after{round_}")
                assert statuses == [201] * PARALLEL, f"round {round_}: {statuses}"
    finally:
        proc.kill()
        proc.wait()
