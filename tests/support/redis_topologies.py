"""Real Redis Cluster and Sentinel set-ups on loopback ports, for tests.

They need Debian's `redis-server` and `redis-cli` (the embedded Valkey binary is used when
they are absent and it can do the job); tests skip with a clear message otherwise.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from kk.infra.embedded_redis import find_server_binary
from tests.support.server import free_port


def server_binary() -> str | None:
    try:
        return find_server_binary()
    except RuntimeError:
        return None


def cli_binary() -> str | None:
    server = server_binary()
    if server:
        sibling = Path(server).with_name(Path(server).name.replace("server", "cli"))
        if sibling.is_file():
            return str(sibling)
    return shutil.which("redis-cli") or shutil.which("valkey-cli")


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    import random
    import socket

    while True:
        port = random.randint(20000, 50000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


def _start(binary: str, workdir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--daemonize", "no",
         "--logfile", str(workdir / "server.log"), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait(check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError("Redis topology did not come up")


@contextlib.contextmanager
def redis_cluster(workdir: Path, masters: int = 3) -> Iterator[list[int]]:
    """`masters` cluster nodes with every slot assigned; yields their ports."""
    binary, cli = server_binary(), cli_binary()
    assert binary and cli
    ports = [_cluster_port() for _ in range(masters)]
    procs = [
        _start(binary, workdir / str(p), p, "--cluster-enabled", "yes",
               "--cluster-config-file", str(workdir / str(p) / "nodes.conf"))
        for p in ports
    ]  # fmt: skip
    try:
        for p in ports:
            _wait(lambda p=p: redis.Redis(host="127.0.0.1", port=p).ping())
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for p in ports:
            node = redis.Redis(host="127.0.0.1", port=p)
            _wait(lambda node=node: b"cluster_state:ok" in node.execute_command("CLUSTER", "INFO"))
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


@contextlib.contextmanager
def redis_sentinel(workdir: Path, master_name: str = "kkmaster") -> Iterator[int]:
    """One master watched by one Sentinel; yields the Sentinel's port."""
    binary = server_binary()
    assert binary
    master_port, sentinel_port = free_port(), free_port()
    master = _start(binary, workdir / "master", master_port)
    conf = workdir / "sentinel.conf"
    workdir.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 5000\n"
    )
    sentinel = subprocess.Popen(
        [binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(lambda: redis.Redis(host="127.0.0.1", port=master_port).ping())
        _wait(lambda: redis.Redis(host="127.0.0.1", port=sentinel_port).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name))  # fmt: skip
        yield sentinel_port
    finally:
        for proc in (sentinel, master):
            proc.terminate()
            proc.wait()


@contextlib.contextmanager
def redis_with_password(workdir: Path, password: str) -> Iterator[int]:
    """One server that demands `password` (requirepass); yields its port."""
    binary = server_binary()
    assert binary
    port = free_port()
    proc = _start(binary, workdir, port, "--requirepass", password)
    try:
        _wait(lambda: redis.Redis(host="127.0.0.1", port=port, password=password).ping())
        yield port
    finally:
        proc.terminate()
        proc.wait()
