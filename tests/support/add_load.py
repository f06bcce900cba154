"""Producers adding jobs over HTTP while a test breaks something, and the record of runs
that `tests.support.processors:recorded` keeps outside Redis."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import redis


class AddLoad:
    """Producers adding jobs over HTTP until stopped; remembers which adds were
    acknowledged (201) and when each answer came."""

    def __init__(self, url: str, queue: str, runs: Path, producers: int = 4) -> None:
        self.url, self.queue, self.runs = url, queue, runs
        self.acked: dict[int, float] = {}
        self.refused = 0
        self.stopped_at = float("inf")
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._produce) for _ in range(producers)]

    def _take(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def _produce(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                n = self._take()
                body = {"data": {"n": n, "log": str(self.runs)}}
                try:
                    answer = client.post(f"/api/queues/{self.queue}/jobs", json=body)
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 201:
                    self.acked[n] = time.time()
                else:
                    self.refused += 1
                    time.sleep(0.05)

    def __enter__(self) -> AddLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped_at = time.time()  # no add after this: the queue may run dry
        self._stop.set()
        for thread in self._threads:
            thread.join()


def runs_of(path: Path) -> list[tuple[int, float]]:
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(int(n), float(t)) for n, t in rows]


_LISTS = ("wait", "active", "paused")
_SETS = ("delayed", "prioritized", "completed", "failed", "waiting-children")


def unfinished(node: redis.Redis, prefix: str, queue: str) -> int:
    """Jobs still to run: waiting, active, delayed (a retry's backoff) or prioritized."""
    base = f"{prefix}:{queue}"
    return (
        node.llen(f"{base}:wait")
        + node.llen(f"{base}:active")
        + node.zcard(f"{base}:delayed")
        + node.zcard(f"{base}:prioritized")
    )


def held(node: redis.Redis, prefix: str, queue: str) -> dict[str, set[int]]:
    """The `n` of every job the queue holds, by state: what an acknowledged add became."""
    base = f"{prefix}:{queue}"
    found: dict[str, set[int]] = {}
    for state in (*_LISTS, *_SETS):
        kind = node.type(f"{base}:{state}")
        if kind == "list":
            ids = node.lrange(f"{base}:{state}", 0, -1)
        elif kind == "zset":
            ids = node.zrange(f"{base}:{state}", 0, -1)
        else:
            continue
        pipe = node.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(f"{base}:{job_id}", "data")
        found[state] = {json.loads(data)["n"] for data in pipe.execute() if data}
    return found
