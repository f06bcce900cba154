"""Pairing a job's BullMQ events into attempts (pure logic; the route is tested in the
browser tests against a real server)."""

from __future__ import annotations

from kk.dashboard.attempts import pair


def ev(ms: int, event: str, prev: str = "") -> tuple[str, dict[str, str]]:
    fields = {"event": event, "jobId": "7"}
    if prev:
        fields["prev"] = prev
    return f"{ms}-0", fields


def newest_first(*events):
    return list(reversed(events))


def test_three_failed_attempts_each_with_its_times():
    events = newest_first(
        ev(1_000, "waiting"),  # added
        ev(1_010, "active", "waiting"),
        ev(1_020, "waiting", "active"),  # retried at once
        ev(1_030, "active", "waiting"),
        ev(1_040, "delayed"),  # retried after a backoff
        ev(2_050, "active", "waiting"),
        ev(2_060, "failed"),
    )
    attempts = pair(events, attempts_made=3)
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert [a.outcome for a in attempts] == ["failed"] * 3
    assert attempts[0].startedAt == "1970-01-01T00:00:01.010Z"
    assert attempts[2].endedAt == "1970-01-01T00:00:02.060Z"


def test_a_running_attempt_has_no_end_and_trimmed_history_keeps_the_numbers():
    # The stream lost the first attempts: what is left is numbered from the job's count.
    events = newest_first(
        ev(5_000, "active", "waiting"),
        ev(5_010, "waiting", "failed"),  # as other BullMQ versions write it
        ev(6_000, "active", "waiting"),
    )
    attempts = pair(events, attempts_made=4)
    assert [(a.attempt, a.outcome) for a in attempts] == [(4, "failed"), (5, None)]
    assert attempts[-1].endedAt is None


def test_a_waiting_event_that_is_no_failure_does_not_close_an_attempt():
    events = newest_first(ev(1, "active"), ev(2, "waiting"), ev(3, "completed"))
    (only,) = pair(events, attempts_made=1)
    assert only.outcome == "completed" and only.endedAt == "1970-01-01T00:00:00.003Z"


def test_no_events_no_attempts():
    assert pair([], attempts_made=2) == []
