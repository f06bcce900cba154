"""Start real `kk serve` / `kk worker` processes for tests and wait until they answer."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll until `predicate()` is truthy; return its value or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: {last!r}")


def _env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
    env.update(
        {
            "KK_DATA_DIR": str(data_dir),
            "KK_LOG_LEVEL": "info",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class KKServer:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _spawn(args: list[str], data_dir: Path, extra: dict[str, str], log_name: str):
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / log_name
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kk", *args],
            env=_env(data_dir, extra),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return proc, log_path


@contextlib.contextmanager
def start_server(
    data_dir: Path, env: dict[str, str] | None = None, args: list[str] | None = None
) -> Iterator[KKServer]:
    port = free_port()
    extra = {**(env or {}), "KK_PORT": str(port)}
    proc, log_path = _spawn(["serve", *(args or [])], data_dir, extra, f"serve-{port}.log")
    srv = KKServer(proc, f"http://127.0.0.1:{port}", data_dir, log_path, extra)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"kk serve exited with {proc.returncode}:\n{srv.log()}")
        try:
            return httpx.get(f"{srv.url}/api/queues/stats", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=40, what="kk serve to answer")
        yield srv
    finally:
        srv.stop()


@contextlib.contextmanager
def start_worker(
    data_dir: Path, env: dict[str, str] | None = None, args: list[str] | None = None
) -> Iterator[KKServer]:
    proc, log_path = _spawn(["worker", *(args or [])], data_dir, env or {}, "worker.log")
    srv = KKServer(proc, "", data_dir, log_path, env or {})
    try:
        wait_for(lambda: "KK worker running" in srv.log(), timeout=30, what="kk worker to start")
        yield srv
    finally:
        srv.stop()
