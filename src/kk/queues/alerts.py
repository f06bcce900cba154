"""Alert rules, evaluated as a pure function of a queue's numbers (no I/O, no clock).

Each rule has a critical threshold: `critical` at or above it, `warning` at or above
`warning_ratio * threshold`. A paused queue is a warning only: pausing is usually deliberate,
so it is worth seeing but not worth paging anyone (and it does not make a queue unhealthy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kk.config import AlertRules

Level = Literal["warning", "critical"]


@dataclass(frozen=True)
class QueueSignals:
    """What the rules look at, read from Redis for one queue."""

    name: str
    waiting: int
    failed: int
    paused: bool
    # Seconds since the oldest job in the wait list was created; None when it is empty.
    oldest_waiting_s: float | None = None
    # Finished jobs in the failure-ratio window (BullMQ's per-minute metrics).
    window_completed: int = 0
    window_failed: int = 0


@dataclass(frozen=True)
class AlertInputs:
    """What the alert rules need beyond the counts."""

    oldest_waiting_s: float | None
    window_completed: int
    window_failed: int


@dataclass(frozen=True)
class Alert:
    queue: str
    level: Level
    message: str
    value: float
    threshold: float
    rule: str


def level_for(value: float, threshold: float, warning_ratio: float) -> Level | None:
    if value >= threshold:
        return "critical"
    if value >= threshold * warning_ratio:
        return "warning"
    return None


def failure_ratio(signals: QueueSignals, min_jobs: int) -> float | None:
    """failed / (completed + failed) in the window; None below `min_jobs`, where one failure
    out of three jobs would otherwise read as a 33% failure rate."""
    total = signals.window_completed + signals.window_failed
    if total == 0 or total < min_jobs:
        return None
    return signals.window_failed / total


def evaluate(signals: QueueSignals, rules: AlertRules) -> list[Alert]:
    alerts: list[Alert] = []

    def check(rule: str, value: float | None, threshold: float | None, message: str) -> None:
        if value is None or threshold is None:
            return
        level = level_for(value, threshold, rules.warning_ratio)
        if level is not None:
            # Compared unrounded; rounded only for display.
            shown = value if isinstance(value, int) else round(value, 4)
            alerts.append(Alert(signals.name, level, message, shown, threshold, rule))

    # A paused queue's backlog is what pausing does: its own alert says so (a warning),
    # and the backlog and its age are not counted against it.
    backlog_counts = not signals.paused
    if backlog_counts:
        check("waiting", signals.waiting, rules.waiting, "High number of waiting jobs")
    check("failed", signals.failed, rules.failed, "High number of failed jobs")
    ratio = failure_ratio(signals, rules.failure_ratio_min_jobs)
    check(
        "failure_ratio",
        ratio,
        rules.failure_ratio,
        f"High failure ratio over the last {rules.failure_ratio_window_minutes} min",
    )
    age = None if signals.oldest_waiting_s is None else int(signals.oldest_waiting_s)
    if backlog_counts:
        check("oldest_waiting", age, rules.oldest_waiting_seconds, "Oldest waiting job is old (s)")
    if rules.paused and signals.paused:
        alerts.append(Alert(signals.name, "warning", "Queue is paused", 1, 1, "paused"))
    return alerts


def worst(alerts: list[Alert]) -> Level | None:
    levels = {a.level for a in alerts}
    return "critical" if "critical" in levels else ("warning" if levels else None)
