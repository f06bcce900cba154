"""Alerts in the overview and health as queues cross small configured thresholds."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from kk.queues.insights import series_from
from tests.integration.dashboard_support import FAIL_FIRST, dashboard_env
from tests.integration.helpers import add_job, wait_job
from tests.support.server import KKServer, start_server, wait_for

OFF = {"waiting": None, "failed": None, "failure_ratio": None, "oldest_waiting_seconds": None}
QUEUES = {
    # No worker: jobs stay waiting, so the backlog is exactly what the test added.
    "a-backlog": {"attempts": 1, "alerts": {**OFF, "waiting": 4, "warning_ratio": 0.5}},
    "a-age": {"attempts": 1, "alerts": {**OFF, "oldest_waiting_seconds": 4}},
    "a-ratio": {
        "processor": FAIL_FIRST,
        "attempts": 1,
        "alerts": {**OFF, "failure_ratio": 0.5, "failure_ratio_min_jobs": 4, "failed": 3},
    },
    "a-paused": {"processor": FAIL_FIRST, "attempts": 1, "alerts": {**OFF, "paused": True}},
    # Paused with a backlog far past its thresholds: no worker, so the jobs stay waiting.
    "a-held": {
        "attempts": 1,
        "alerts": {**OFF, "waiting": 2, "oldest_waiting_seconds": 1, "paused": True},
    },
    "a-crafted": {
        "attempts": 1,
        "alerts": {
            **OFF,
            "failure_ratio": 0.5,
            "failure_ratio_min_jobs": 1,
            "failure_ratio_window_minutes": 5,
        },
    },
}


@pytest.fixture(scope="module")
def alerting(server_env, tmp_path_factory) -> KKServer:
    env = dashboard_env(server_env, QUEUES)
    with start_server(tmp_path_factory.mktemp("dash-alerts"), env) as srv:
        yield srv


@pytest.fixture
def client(alerting: KKServer):
    with alerting.client as c:
        yield c


def alerts_of(client, queue: str) -> list[dict]:
    overview = client.get("/api/queue-dashboard/overview").json()["data"]
    return [a for a in overview["alerts"] if a["queue"] == queue]


def health_of(client, queue: str) -> dict:
    return client.get("/api/queue-dashboard/health").json()["data"]["queues"]["queues"][queue]


def test_backlog_goes_from_nothing_to_warning_to_critical_at_the_exact_counts(client):
    seen = []
    for n in range(1, 5):
        add_job(client, "a-backlog", {"n": n})
        found = alerts_of(client, "a-backlog")
        seen.append([(a["level"], a["value"], a["threshold"]) for a in found])
    # threshold 4, warning at 0.5 * 4 = 2
    assert seen == [[], [("warning", 2, 4)], [("warning", 3, 4)], [("critical", 4, 4)]]
    alert = alerts_of(client, "a-backlog")[0]
    assert alert["message"] == "High number of waiting jobs"
    health = health_of(client, "a-backlog")
    assert health["healthy"] is False
    assert any("waiting jobs" in r for r in health["reasons"])
    assert "waiting" in health["reasonCodes"]


def test_oldest_waiting_job_age_crosses_its_thresholds(client):
    add_job(client, "a-age", {"n": 1})
    assert alerts_of(client, "a-age") == []
    warning = wait_for(lambda: alerts_of(client, "a-age"), timeout=10, what="an age warning")
    assert warning[0]["level"] == "warning" and 2 <= warning[0]["value"] < 4
    critical = wait_for(
        lambda: [a for a in alerts_of(client, "a-age") if a["level"] == "critical"],
        timeout=10,
        what="an age critical alert",
    )
    assert critical[0]["value"] >= 4 and critical[0]["threshold"] == 4


def test_failure_ratio_over_the_window_from_bullmq_metrics(client):
    outcomes = [False, False, True]  # 1 failed of 3: too few jobs to judge (min 4)
    ids = [add_job(client, "a-ratio", {"fail": fail}) for fail in outcomes]
    for job_id, fail in zip(ids, outcomes, strict=True):
        wait_job(client, "a-ratio", "failed" if fail else "completed", job_id)
    assert alerts_of(client, "a-ratio") == []
    wait_job(client, "a-ratio", "failed", add_job(client, "a-ratio", {"fail": True}))
    # 2 of 4 failed: ratio 0.5 = critical; 2 failed jobs >= 0.5 * 3 = warning.
    found = {a["rule"]: a for a in alerts_of(client, "a-ratio")}
    assert found["failure_ratio"]["level"] == "critical"
    assert found["failure_ratio"]["value"] == 0.5 and found["failure_ratio"]["threshold"] == 0.5
    assert found["failed"]["level"] == "warning" and found["failed"]["value"] == 2
    assert health_of(client, "a-ratio")["healthy"] is False


def test_a_paused_queue_warns_but_stays_healthy(client):
    assert alerts_of(client, "a-paused") == []
    client.post("/api/queues/a-paused/pause")
    try:
        found = alerts_of(client, "a-paused")
        assert [(a["level"], a["message"]) for a in found] == [("warning", "Queue is paused")]
        add_job(client, "a-paused", {"n": 1})
        health = health_of(client, "a-paused")
        assert health["healthy"] is True and health["metrics"]["waiting"] == 1
    finally:
        client.post("/api/queues/a-paused/resume")
    assert alerts_of(client, "a-paused") == []


def test_window_sums_and_throughput_read_bullmq_metrics_the_same_way(
    client, alerting, redis_client
):
    """BullMQ's layout written by hand: the minute of prevTS is open (count - prevCount),
    the list holds the closed minutes before it, newest first. Zeros sit where a minute
    rolling over during the test would move the 5-minute window's edge."""
    prefix = f"{alerting.env['KK_QUEUE_PREFIX']}:a-crafted:metrics"
    now_min = int(time.time() // 60)
    prev_ts = (now_min - 1) * 60_000 + 30_000
    layout = {
        "completed": ({"count": 12, "prevTS": prev_ts, "prevCount": 10}, [3, 4, 0, 0, 100, 100]),
        "failed": ({"count": 6, "prevTS": prev_ts, "prevCount": 5}, [0, 8, 0, 0, 50, 50]),
    }
    for kind, (meta, points) in layout.items():
        redis_client.delete(f"{prefix}:{kind}", f"{prefix}:{kind}:data")
        redis_client.hset(f"{prefix}:{kind}", mapping=meta)
        redis_client.rpush(f"{prefix}:{kind}:data", *points)
    # In the window: completed 2 + 3 + 4, failed 1 + 8; the 100s and 50s are older.
    ratio = {a["rule"]: a for a in alerts_of(client, "a-crafted")}["failure_ratio"]
    assert (ratio["value"], ratio["level"]) == (0.5, "critical")

    result = client.get("/api/queue-dashboard/queues/a-crafted/throughput?minutes=8").json()
    points = result["data"]["points"]
    last = datetime.fromisoformat(points[-1]["time"].replace("Z", "+00:00"))
    server_min = int(last.timestamp()) // 60
    for kind, (meta, data) in layout.items():
        raw_meta = [str(meta["count"]), str(meta["prevTS"]), str(meta["prevCount"])]
        expected = series_from(raw_meta, [str(p) for p in data], server_min * 60_000, 8)
        assert [p[kind] for p in points] == expected
    assert [p["completed"] for p in points][:7] in (
        [100, 100, 0, 0, 4, 3, 2],  # the minute did not roll over
        [100, 0, 0, 4, 3, 2, 0],
    )


def test_a_paused_queue_with_a_backlog_is_a_warning_not_down(client):
    assert client.post("/api/queues/a-held/pause").status_code == 200
    for n in range(5):
        add_job(client, "a-held", {"n": n})
    time.sleep(1.5)  # older than the age threshold too
    found = alerts_of(client, "a-held")
    assert [(a["rule"], a["level"]) for a in found] == [("paused", "warning")]
    assert health_of(client, "a-held")["healthy"] is True
    # Resumed with the same backlog (and no worker): now it counts.
    assert client.post("/api/queues/a-held/resume").status_code == 200
    rules = {a["rule"]: a["level"] for a in alerts_of(client, "a-held")}
    assert rules == {"waiting": "critical", "oldest_waiting": "critical"}
    assert health_of(client, "a-held")["healthy"] is False
