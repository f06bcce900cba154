"""Reads for the dashboard that `QueueService` does not do: per-minute throughput from
BullMQ's metrics keys, which queues have workers, and the signals the alert rules read
(gathered by `kk.queues.snapshot`).

Every function costs a fixed number of Redis round trips whatever the number of queues:
one pipeline for throughput, one CLIENT LIST for workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kk.queues.alerts import AlertInputs, QueueSignals
from kk.queues.schemas import QueueStats
from kk.queues.service import QueueService
from kk.queues.workers_view import process_counts, read_workers

log = logging.getLogger("kk.queues.insights")

_KINDS = ("completed", "failed")


@dataclass(frozen=True)
class MinuteSeries:
    """Per-minute counts, oldest first, ending with the current minute."""

    start_minute: int  # epoch minutes of the first point
    completed: list[int]
    failed: list[int]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _queue_metrics(pipe, service: QueueService, name: str, minutes: int) -> None:
    for kind in _KINDS:
        key = service.key(name, f"metrics:{kind}")
        pipe.hmget(key, "count", "prevTS", "prevCount")
        pipe.lrange(f"{key}:data", 0, minutes - 1)


def series_from(meta: Sequence[object], points: Sequence[object], now_ms: int, minutes: int):
    """BullMQ keeps, per kind, `count`/`prevTS`/`prevCount` and a list of per-minute counts,
    newest first, where item i is the minute `minute(prevTS) - 1 - i`. The minute of
    `prevTS` itself is still open: its count is `count - prevCount`. Minutes after it had
    no finished job. Returns `minutes` counts ending with the current minute."""
    now_minute = now_ms // 60_000
    first = now_minute - minutes + 1
    out = [0] * minutes
    count, prev_ts, prev_count = (_int(v) for v in meta)
    if meta[1] is None:
        return out
    open_minute = prev_ts // 60_000
    for i in range(minutes):
        minute = first + i
        if minute == open_minute:
            out[i] = max(count - prev_count, 0)
        elif minute < open_minute:
            index = open_minute - 1 - minute
            if index < len(points):
                out[i] = _int(points[index])
    return out


async def throughput(
    service: QueueService, names: Sequence[str], minutes: int, now_ms: int
) -> dict[str, MinuteSeries]:
    """Completed and failed jobs per minute for each queue, in one round trip."""
    pipe = service.redis.pipeline(transaction=False)
    for name in names:
        _queue_metrics(pipe, service, name, minutes)
    replies = await pipe.execute()
    out: dict[str, MinuteSeries] = {}
    start = now_ms // 60_000 - minutes + 1
    for i, name in enumerate(names):
        c_meta, c_points, f_meta, f_points = replies[i * 4 : i * 4 + 4]
        out[name] = MinuteSeries(
            start,
            series_from(c_meta, c_points, now_ms, minutes),
            series_from(f_meta, f_points, now_ms, minutes),
        )
    return out


def to_signals(stats: QueueStats, inputs: AlertInputs) -> QueueSignals:
    return QueueSignals(
        name=stats.name,
        # Prioritized jobs wait too; BullMQ only keeps them in a set of their own.
        waiting=stats.waiting + stats.prioritized,
        failed=stats.failed,
        paused=stats.paused,
        oldest_waiting_s=inputs.oldest_waiting_s,
        window_completed=inputs.window_completed,
        window_failed=inputs.window_failed,
    )


async def worker_counts(service: QueueService, names: Sequence[str]) -> dict[str, int] | None:
    """Worker processes per queue, from one CLIENT LIST: a process holds several
    connections per queue, counted once (`kk.queues.workers_view`). None when the server
    refuses CLIENT LIST (some managed services do)."""
    rows = await read_workers(service.redis, service.prefix, list(names))
    return None if rows is None else process_counts(rows, list(names))
