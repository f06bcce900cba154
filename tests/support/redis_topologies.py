"""Real Redis Cluster and Sentinel set-ups on loopback ports, for tests.

They need Debian's `redis-server` and `redis-cli` (the embedded Valkey binary is used when
they are absent and it can do the job); tests skip with a clear message otherwise.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
def redis_cluster(workdir: Path, masters: int = 3, replicas: int = 0) -> Iterator[list[int]]:
    """`masters` cluster nodes with every slot assigned, each with `replicas` replicas;
    yields every node's port (masters first, as `--cluster create` assigns them)."""
    binary, cli = server_binary(), cli_binary()
    assert binary and cli
    ports = [_cluster_port() for _ in range(masters * (1 + replicas))]
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
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for p in ports:
            node = redis.Redis(host="127.0.0.1", port=p)
            _wait(lambda node=node: b"cluster_state:ok" in node.execute_command("CLUSTER", "INFO"))
        if replicas:  # every replica has synced with its master
            for p in ports[masters:]:
                node = redis.Redis(host="127.0.0.1", port=p, decode_responses=True)
                _wait(lambda node=node: node.info("replication").get("master_link_status") == "up")
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


@dataclass
class SentinelGroup:
    """A master, its replicas and three Sentinels (quorum 2) on loopback ports."""

    master_name: str
    ports: list[int]  # data servers; ports[0] starts as the master
    sentinel_ports: list[int]
    procs: dict[int, subprocess.Popen[bytes]]
    workdir: Path

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.master_name}"

    def master_port(self) -> int:
        """The master as the Sentinels name it now."""
        s = redis.Redis(host="127.0.0.1", port=self.sentinel_ports[0], decode_responses=True)
        try:
            return int(s.sentinel_get_master_addr_by_name(self.master_name)[1])
        finally:
            s.close()

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

    def role(self, port: int) -> str:
        node = self.node(port)
        try:
            return str(node.execute_command("ROLE")[0])
        finally:
            node.close()

    def wait_switched(self, old: int, timeout: float = 30) -> int:
        """Waits until every Sentinel names a new master and it has taken the role."""

        def switched() -> bool:
            ports = set()
            for sp in self.sentinel_ports:
                s = redis.Redis(host="127.0.0.1", port=sp, decode_responses=True)
                try:
                    ports.add(int(s.sentinel_get_master_addr_by_name(self.master_name)[1]))
                finally:
                    s.close()
            return len(ports) == 1 and old not in ports and self.role(ports.pop()) == "master"

        _wait(switched, timeout)
        return self.master_port()

    def restart(self, port: int) -> subprocess.Popen[bytes]:
        """Starts the data server of `port` again, empty (its data was not persisted)."""
        binary = server_binary()
        assert binary
        return _start(binary, self.workdir / str(port), port)

    def wait_replica(self, port: int, timeout: float = 30) -> None:
        """Waits until `port` is a replica in sync with its master (e.g. an old master)."""

        def synced() -> bool:
            info = self.node(port).info("replication")
            return info["role"] == "slave" and info.get("master_link_status") == "up"

        _wait(synced, timeout)


@contextlib.contextmanager
def sentinel_group(
    workdir: Path, replicas: int = 1, master_name: str = "kkmaster", down_after_ms: int = 1000
) -> Iterator[SentinelGroup]:
    """A master with `replicas` replicas and three Sentinels that fail over after
    `down_after_ms` of silence."""
    binary = server_binary()
    assert binary
    ports = [free_port() for _ in range(1 + replicas)]
    procs: dict[int, subprocess.Popen[bytes]] = {}
    procs[ports[0]] = _start(binary, workdir / str(ports[0]), ports[0])
    for port in ports[1:]:
        procs[port] = _start(
            binary, workdir / str(port), port, "--replicaof", "127.0.0.1", str(ports[0])
        )
    sentinel_ports = [free_port() for _ in range(3)]
    for sp in sentinel_ports:
        sdir = workdir / f"sentinel-{sp}"
        sdir.mkdir(parents=True, exist_ok=True)
        conf = sdir / "sentinel.conf"
        conf.write_text(
            f"port {sp}\nbind 127.0.0.1\ndir {sdir}\nlogfile {sdir / 'sentinel.log'}\n"
            f"sentinel monitor {master_name} 127.0.0.1 {ports[0]} 2\n"
            f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
            f"sentinel failover-timeout {master_name} 10000\n"
            f"sentinel parallel-syncs {master_name} {max(1, replicas)}\n"
        )
        procs[sp] = subprocess.Popen(
            [binary, str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    group = SentinelGroup(master_name, ports, sentinel_ports, procs, workdir)
    try:
        for port in ports[1:]:
            group.wait_replica(port)

        def all_seen() -> bool:
            for sp in sentinel_ports:
                s = redis.Redis(host="127.0.0.1", port=sp, decode_responses=True)
                try:
                    master = s.sentinel_master(master_name)
                    if master["num-other-sentinels"] < 2 or master["num-slaves"] < replicas:
                        return False
                finally:
                    s.close()
            return True

        _wait(all_seen, 30)
        yield group
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
