"""The alert evaluator at its exact boundaries, and the reading of BullMQ's metrics lists."""

from __future__ import annotations

import pytest

from kk.config import AlertRules
from kk.queues.alerts import QueueSignals, evaluate, level_for, worst
from kk.queues.insights import series_from

OFF = {"waiting": None, "failed": None, "failure_ratio": None, "oldest_waiting_seconds": None}


def rules(**kwargs) -> AlertRules:
    return AlertRules(**{**OFF, "paused": False, **kwargs})


def signals(**kwargs) -> QueueSignals:
    return QueueSignals(**{"name": "q", "waiting": 0, "failed": 0, "paused": False, **kwargs})


def levels(alerts) -> list[tuple[str, str]]:
    return [(a.rule, a.level) for a in alerts]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(49, None), (50, "warning"), (99, "warning"), (100, "critical"), (1000, "critical")],
)
def test_waiting_backlog_boundaries(value, expected):
    found = evaluate(signals(waiting=value), rules(waiting=100))
    assert levels(found) == ([("waiting", expected)] if expected else [])
    if found:
        assert (found[0].value, found[0].threshold, found[0].queue) == (value, 100, "q")
        assert found[0].message == "High number of waiting jobs"


@pytest.mark.parametrize(
    ("value", "expected"), [(14, None), (15, "warning"), (19, "warning"), (20, "critical")]
)
def test_failed_count_boundaries_with_a_custom_warning_ratio(value, expected):
    found = evaluate(signals(failed=value), rules(failed=20, warning_ratio=0.75))
    assert levels(found) == ([("failed", expected)] if expected else [])


@pytest.mark.parametrize(
    ("age", "expected"),
    [(None, None), (299.0, None), (300.0, "warning"), (599.9, "warning"), (600.0, "critical")],
)
def test_oldest_waiting_age_boundaries(age, expected):
    found = evaluate(signals(oldest_waiting_s=age), rules(oldest_waiting_seconds=600))
    assert levels(found) == ([("oldest_waiting", expected)] if expected else [])


@pytest.mark.parametrize(
    ("completed", "failed", "expected"),
    [
        (76, 24, None),  # 0.24: below warning (0.5 * 0.5)
        (75, 25, "warning"),  # exactly 0.25
        (51, 49, "warning"),  # 0.49
        (50, 50, "critical"),  # exactly 0.5
        (0, 100, "critical"),
    ],
)
def test_failure_ratio_boundaries(completed, failed, expected):
    found = evaluate(
        signals(window_completed=completed, window_failed=failed),
        rules(failure_ratio=0.5, failure_ratio_min_jobs=20),
    )
    assert levels(found) == ([("failure_ratio", expected)] if expected else [])
    if found:
        assert found[0].value == failed / (completed + failed)


def test_failure_ratio_needs_enough_jobs():
    few = signals(window_completed=0, window_failed=19)
    assert evaluate(few, rules(failure_ratio=0.5, failure_ratio_min_jobs=20)) == []
    enough = signals(window_completed=0, window_failed=20)
    assert levels(evaluate(enough, rules(failure_ratio=0.5, failure_ratio_min_jobs=20))) == [
        ("failure_ratio", "critical")
    ]
    assert evaluate(signals(), rules(failure_ratio=0.5, failure_ratio_min_jobs=0)) == []


def test_paused_queue_is_a_warning_and_can_be_turned_off():
    assert levels(evaluate(signals(paused=True), rules(paused=True))) == [("paused", "warning")]
    assert evaluate(signals(paused=True), rules(paused=False)) == []
    assert evaluate(signals(paused=False), rules(paused=True)) == []


def test_disabled_rules_never_fire_and_rules_combine():
    assert evaluate(signals(waiting=10**9, failed=10**9), rules()) == []
    found = evaluate(signals(waiting=10_000, failed=30), AlertRules())
    assert levels(found) == [("waiting", "critical"), ("failed", "warning")]
    assert worst(found) == "critical"
    assert worst([]) is None


def test_level_for_with_a_warning_ratio_of_one_has_no_warning_band():
    assert level_for(99, 100, 1.0) is None
    assert level_for(100, 100, 1.0) == "critical"


NOW = 1_800_000_000_000  # a whole minute in ms
MINUTE = 60_000


def test_series_reads_the_open_minute_and_the_list_newest_first():
    # Last job finished 2 minutes ago (open minute, 3 jobs in it); before that, per minute
    # newest first: 5 (3 minutes ago), 0, 7 (5 minutes ago).
    meta = ["20", str(NOW - 2 * MINUTE + 5), "17"]
    points = ["5", "0", "7"]
    assert series_from(meta, points, NOW + 1000, 6) == [7, 0, 5, 3, 0, 0]


def test_series_of_a_queue_without_metrics_is_zero_and_bounded_by_the_list():
    assert series_from([None, None, None], [], NOW, 3) == [0, 0, 0]
    meta = ["1", str(NOW), "0"]
    assert series_from(meta, [], NOW, 3) == [0, 0, 1]  # first job ever: this minute
    assert series_from(meta, ["9"] * 10, NOW, 2) == [9, 1]


def test_a_paused_queue_backlog_is_no_alert_but_the_pause_is():
    paused = signals(waiting=50_000, oldest_waiting_s=10_000.0, paused=True)
    found = evaluate(paused, rules(waiting=100, oldest_waiting_seconds=60, paused=True))
    assert levels(found) == [("paused", "warning")]
    assert worst(found) == "warning"  # not "Down"


def test_the_default_backlog_threshold_lets_a_bulk_send_through():
    assert evaluate(signals(waiting=2_000), AlertRules()) == []
