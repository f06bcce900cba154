"""The embedded Redis is not open to other local processes: its loopback port (used when the
data dir's path is too long for a unix socket) needs a password, and the service's own user
cannot reconfigure the server (CONFIG SET dir + SAVE would write files anywhere)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.integration.helpers import add_job, wait_job
from tests.support.server import start_server

QUEUES = json.dumps({"flaky": {"attempts": 1, "processor": "tests.support.processors:flaky"}})


def _long_data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / ("long-data-dir-" + "d" * 90)
    assert len(str(data_dir / "redis" / "redis.sock")) > 108, "too long for a unix socket"
    return data_dir


def _raw_command(port: int, command: bytes) -> bytes:
    """What a local process without credentials gets: plain RESP over TCP."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(command)
        return conn.recv(4096)


def _port_of(data_dir: Path) -> int:
    address = (data_dir / "redis" / "url").read_text().strip()
    port = urlsplit(address).port
    assert address.startswith("redis://127.0.0.1:") and port, address
    return port


def test_the_tcp_fallback_needs_a_password_and_the_service_still_works(tmp_path):
    data_dir = _long_data_dir(tmp_path)
    with start_server(data_dir, {"KK_QUEUES": QUEUES}) as srv, srv.client as client:
        port = _port_of(data_dir)
        for command in (b"PING\r\n", b"KEYS *\r\n", b"CONFIG SET dir /tmp\r\n"):
            assert _raw_command(port, command).startswith(b"-NOAUTH"), command
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, protocol=2).ping()

        secrets_dir = data_dir / "redis"
        assert secrets_dir.stat().st_mode & 0o777 == 0o700
        for name in ("service.password", "admin.password", "server.conf"):
            assert (secrets_dir / name).stat().st_mode & 0o777 == 0o600, name
        password = (secrets_dir / "service.password").read_text().strip()
        assert password not in (secrets_dir / "server.conf").read_text(), "only a hash"

        health = client.get("/health").json()
        assert health["info"]["redis"]["status"] == "up", health
        job_id = add_job(client, "flaky", {"value": 21})
        assert wait_job(client, "flaky", "completed", job_id)["returnValue"] == {"doubled": 42}

        # Even with the service's password, the server cannot be turned into a file writer.
        service = redis.Redis(host="127.0.0.1", port=port, password=password)
        try:
            assert service.ping()
            for name, value in (("dir", "/tmp"), ("dbfilename", "x.so"), ("maxmemory", "1")):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    service.config_set(name, value)
            with pytest.raises(redis.exceptions.NoPermissionError):
                service.execute_command("ACL", "SETUSER", "default", "+config")
        finally:
            service.close()


def test_the_service_user_cannot_reconfigure_the_server_on_the_socket_path_either(tmp_path):
    server = EmbeddedRedis(tmp_path / "data")
    url = server.start()
    try:
        assert url.startswith("unix://")
        service = redis.Redis.from_url(url)
        admin = redis.Redis.from_url(server.admin_url)
        try:
            with pytest.raises(redis.exceptions.NoPermissionError):
                service.config_set("maxmemory", "1")
            with pytest.raises(redis.exceptions.NoPermissionError):
                service.config_get("requirepass")
            with pytest.raises(redis.exceptions.NoPermissionError):
                service.execute_command("MODULE", "LIST")
            assert admin.config_get("maxmemory")["maxmemory"] in (b"0", "0")
        finally:
            service.close()
            admin.close()
    finally:
        server.stop()


def test_the_password_is_kept_and_not_on_the_command_line(tmp_path):
    data_dir = _long_data_dir(tmp_path)
    first = EmbeddedRedis(data_dir)
    url = first.start()
    try:
        pid = int((data_dir / "redis" / "server.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        password = (data_dir / "redis" / "service.password").read_text().strip()
        assert password.encode() not in cmdline and password in url
    finally:
        first.stop()
    again = EmbeddedRedis(data_dir)
    try:
        assert urlsplit(again.start()).password == password, "generated once, then kept"
        assert redis.Redis.from_url(again.url).ping()
    finally:
        again.stop()
