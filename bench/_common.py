"""Shared helpers for the benchmarks: a private Redis server and percentile maths."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
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
