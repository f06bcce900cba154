"""Shared helpers for the benchmarks: a private Redis server and percentile maths."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from kk.infra.embedded_redis import EmbeddedRedis


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A real server of the benchmark's own (never the machine's), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def commands_processed(url: str) -> int:
    """Redis's own count of commands, to measure round trips rather than assume them."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


SCRIPT_COMMANDS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro")


@dataclasses.dataclass(frozen=True)
class ServerCounters:
    """Redis's own counters at one moment: its CPU time (user + sys, all its threads), the
    calls of every command (INFO commandstats, which counts the commands that Lua scripts
    run too) and the calls of script commands alone (one client round trip each)."""

    at: float  # time.perf_counter() when read
    cpu_s: float
    commands: int
    scripts: int

    @classmethod
    def read(cls, url: str) -> ServerCounters:
        client = redis.Redis.from_url(url)
        try:
            info = client.info("cpu", "commandstats")
        finally:
            client.close()
        at = time.perf_counter()
        calls = {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in info.items()
            if name.startswith("cmdstat_") and isinstance(stats, dict)
        }
        calls.pop("info", None)  # the readings themselves
        return cls(
            at=at,
            cpu_s=float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            commands=sum(calls.values()),
            scripts=sum(calls.get(name, 0) for name in SCRIPT_COMMANDS),
        )


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + sys) a process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def machine_busy_s() -> float:
    """CPU seconds all cores have spent busy so far (not idle nor waiting on I/O)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return float("nan")
    ticks = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK
