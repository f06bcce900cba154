"""/api/queue-dashboard reads and the dashboard's job actions, through a real `kk serve`."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.dashboard_support import FAIL_FIRST, SLEEPY, dashboard_env
from tests.integration.helpers import add_job, assert_error, job_in, wait_job
from tests.support.server import KKServer, start_server

ADMIN_KEY, READ_KEY = "dash-admin-key-0123456789abcdef0123", "dash-read-key-0123456789abcdef01234"
QUEUES = {
    "d-work": {"processor": FAIL_FIRST, "attempts": 1, "concurrency": 2},
    "d-metrics": {"processor": FAIL_FIRST, "attempts": 1},
    "d-idle": {"attempts": 1},
    "d-orphan": {"attempts": 1},
    "d-sleep": {"processor": SLEEPY, "attempts": 1},
}


@pytest.fixture(scope="module")
def dash(server_env, tmp_path_factory) -> KKServer:
    env = dashboard_env(server_env, QUEUES)
    with start_server(tmp_path_factory.mktemp("dash-api"), env) as srv:
        yield srv


@pytest.fixture
def client(dash: KKServer):
    with dash.client as c:
        yield c


def data(response: httpx.Response):
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def test_overview_has_the_contract_shape_and_consistent_totals(client):
    overview = data(client.get("/api/queue-dashboard/overview"))
    assert set(overview) >= {"stats", "metrics", "alerts", "timestamp"}
    assert overview["timestamp"].endswith("Z")
    # The overview reads counts with a Lua script of its own: the same as /api/queues/stats.
    add_job(client, "d-idle", {"n": "overview"})
    add_job(client, "d-idle", {"n": "later"}, delay=3_600_000)
    add_job(client, "d-idle", {"n": "urgent"}, priority=1)
    client.post("/api/queues/d-orphan/pause")
    overview = data(client.get("/api/queue-dashboard/overview"))
    assert overview["stats"] == data(client.get("/api/queues/stats"))
    client.post("/api/queues/d-orphan/resume")
    names = [s["name"] for s in overview["stats"]]
    idle = next(s for s in overview["stats"] if s["name"] == "d-idle")
    assert (idle["waiting"], idle["delayed"], idle["prioritized"]) >= (1, 1, 1)
    assert next(s for s in overview["stats"] if s["name"] == "d-orphan")["paused"] is True
    total = overview["metrics"]["total"]
    assert set(total) >= {"totalWaiting", "totalActive", "totalCompleted", "totalFailed",
                          "totalQueues"}  # fmt: skip
    stats = overview["stats"]
    assert total["totalQueues"] == len(names) == len(QUEUES) + 4  # plus the built-ins
    assert total["totalWaiting"] == sum(s["waiting"] + s["prioritized"] for s in stats)
    assert total["totalActive"] == sum(s["active"] for s in stats)
    assert total["totalCompleted"] == sum(s["completed"] for s in stats)
    assert total["totalFailed"] == sum(s["failed"] for s in stats)
    for alert in overview["alerts"]:
        assert set(alert) >= {"queue", "level", "message", "value", "threshold"}
        assert alert["level"] in ("warning", "critical")


def test_health_marks_waiting_jobs_without_a_worker(client):
    health = data(client.get("/api/queue-dashboard/health"))["queues"]
    assert health["status"] in ("up", "down")
    assert set(health["queues"]) >= set(QUEUES)
    work = health["queues"]["d-work"]
    assert set(work["metrics"]) == {"waiting", "active", "failed"}
    assert work["workers"] >= 1, "d-work has a worker in this process"
    assert health["queues"]["d-orphan"]["workers"] == 0

    job_id = add_job(client, "d-orphan", {"n": 1})
    health = data(client.get("/api/queue-dashboard/health"))["queues"]
    orphan = health["queues"]["d-orphan"]
    assert orphan["healthy"] is False and orphan["metrics"]["waiting"] == 1
    assert any("no worker" in r for r in orphan["reasons"])
    assert orphan["reasonCodes"] == ["no_worker"]
    assert health["status"] == "down"

    assert client.delete(f"/api/queues/d-orphan/jobs/{job_id}").status_code == 200
    health = data(client.get("/api/queue-dashboard/health"))["queues"]
    assert health["queues"]["d-orphan"]["healthy"] is True
    assert health["status"] == ("up" if all(q["healthy"] for q in health["queues"].values())
                                else "down")  # fmt: skip


def test_throughput_counts_finished_jobs_per_minute(client):
    ids = [add_job(client, "d-metrics", {"fail": i >= 3}) for i in range(5)]
    for job_id in ids[:3]:
        wait_job(client, "d-metrics", "completed", job_id)
    for job_id in ids[3:]:
        wait_job(client, "d-metrics", "failed", job_id)
    result = data(client.get("/api/queue-dashboard/queues/d-metrics/throughput?minutes=5"))
    assert result["queue"] == "d-metrics" and result["minutes"] == 5
    assert result["totals"] == {"completed": 3, "failed": 2}
    points = result["points"]
    assert len(points) == 5
    assert sum(p["completed"] for p in points) == 3 and sum(p["failed"] for p in points) == 2
    times = [datetime.fromisoformat(p["time"].replace("Z", "+00:00")) for p in points]
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(times))
    now = datetime.now(UTC)
    assert timedelta(0) <= now - times[-1] < timedelta(minutes=1), "ends with this minute"

    every = data(client.get("/api/queue-dashboard/throughput?minutes=10"))
    assert every["minutes"] == 10 and set(every["queues"]) >= set(QUEUES)
    assert sum(every["queues"]["d-metrics"]["completed"]) == 3
    assert sum(every["queues"]["d-metrics"]["failed"]) == 2
    assert len(every["queues"]["d-idle"]["completed"]) == 10


def test_throughput_window_is_bounded(client):
    day = data(client.get("/api/queue-dashboard/queues/d-idle/throughput?minutes=1440"))
    assert len(day["points"]) == 1440 and day["totals"] == {"completed": 0, "failed": 0}
    for minutes in ("0", "1441", "-5", "x"):
        url = f"/api/queue-dashboard/queues/d-idle/throughput?minutes={minutes}"
        assert_error(client.get(url), 400, "VALIDATION_ERROR")
        assert_error(client.get(f"/api/queue-dashboard/throughput?minutes={minutes}"), 400,
                     "VALIDATION_ERROR")  # fmt: skip
    assert_error(client.get("/api/queue-dashboard/queues/nope/throughput"), 404, "QUEUE_NOT_FOUND")
    assert_error(
        client.get("/api/queue-dashboard/queues/Bad.Name/throughput"), 400, "INVALID_QUEUE_NAME"
    )


def test_retry_all_failed_moves_every_failed_job_back(client):
    ids = [add_job(client, "d-work", {"failFirst": True, "n": i}) for i in range(3)]
    for job_id in ids:
        wait_job(client, "d-work", "failed", job_id)
    response = client.post("/api/queues/d-work/retry-failed")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["retried"] >= 3
    for job_id in ids:
        job = wait_job(client, "d-work", "completed", job_id)
        assert job["returnValue"] == {"runs": 2}
    again = client.post("/api/queues/d-work/retry-failed").json()
    assert again["success"] is True and again["data"]["retried"] == 0
    assert_error(client.post("/api/queues/nope/retry-failed"), 404, "QUEUE_NOT_FOUND")


def test_promote_and_remove_a_delayed_job(client):
    job_id = add_job(client, "d-idle", {"later": True}, delay=3_600_000)
    assert job_in(client, "d-idle", "delayed", job_id)
    response = client.post(f"/api/queues/d-idle/jobs/{job_id}/promote")
    assert response.status_code == 200 and response.json()["success"] is True
    assert job_in(client, "d-idle", "waiting", job_id)
    assert_error(client.post(f"/api/queues/d-idle/jobs/{job_id}/promote"), 409, "JOB_CONFLICT")
    assert_error(client.post("/api/queues/d-idle/jobs/nope/promote"), 404, "JOB_NOT_FOUND")

    assert client.delete(f"/api/queues/d-idle/jobs/{job_id}").json()["success"] is True
    assert_error(client.get(f"/api/queues/d-idle/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
    assert_error(client.delete(f"/api/queues/d-idle/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
    assert_error(client.delete("/api/queues/nope/jobs/1"), 404, "QUEUE_NOT_FOUND")


def test_an_active_job_cannot_be_removed(client):
    job_id = add_job(client, "d-sleep", {"seconds": 3})
    wait_job(client, "d-sleep", "active", job_id)
    assert_error(client.delete(f"/api/queues/d-sleep/jobs/{job_id}"), 409, "JOB_CONFLICT")
    wait_job(client, "d-sleep", "completed", job_id)
    assert client.delete(f"/api/queues/d-sleep/jobs/{job_id}").status_code == 200


def test_job_logs_are_readable_and_paged(client):
    job_id = add_job(client, "d-work", {"n": 99})
    wait_job(client, "d-work", "completed", job_id)
    logs = data(client.get(f"/api/queues/d-work/jobs/{job_id}/logs"))
    assert logs == {"logs": [f"run 1 of job {job_id}"], "count": 1}
    empty = data(client.get(f"/api/queues/d-work/jobs/{job_id}/logs?start=5&end=9"))
    assert empty == {"logs": [], "count": 1}
    url = f"/api/queues/d-work/jobs/{job_id}/logs"
    assert_error(client.get(url, params={"start": 9, "end": 2}), 400, "VALIDATION_ERROR")
    assert_error(client.get(url, params={"start": 0, "end": 1000}), 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/queues/d-work/jobs/nope/logs"), 404, "JOB_NOT_FOUND")


def _next_utc(now: datetime, hour: int | None) -> datetime:
    """The next full hour (hour=None) or the next `hour`:00 UTC after now."""
    base = now.replace(minute=0, second=0, microsecond=0)
    if hour is None:
        return base + timedelta(hours=1)
    candidate = base.replace(hour=hour)
    return candidate if candidate > now else candidate + timedelta(days=1)


def test_the_built_in_schedules_are_listed_as_the_contract_says(client, dash, redis_client):
    schedules = {s["name"]: s for s in data(client.get("/api/queue-dashboard/scheduled-jobs"))}
    daily = schedules["daily-cleanup"]
    fields = ("name", "queueName", "jobType", "cronExpression", "enabled", "description")
    assert {k: daily[k] for k in fields} == {
        "name": "daily-cleanup",
        "queueName": "cleanup",
        "jobType": "cleanup-temp-files",
        "cronExpression": "0 2 * * *",
        "enabled": True,
        "description": "Clean temporary files every day",
    }
    assert daily["timezone"] == "UTC"
    now = datetime.now(UTC)
    next_run = datetime.fromisoformat(daily["nextRun"].replace("Z", "+00:00"))
    assert next_run == _next_utc(now, 2)
    trim = schedules["hourly-trim"]
    assert trim["queueName"] == "cleanup" and trim["jobType"] == "trim-finished-jobs"
    assert datetime.fromisoformat(trim["nextRun"].replace("Z", "+00:00")) == _next_utc(now, None)

    # Real BullMQ job schedulers, with the pending tick as a delayed job.
    prefix = dash.env["KK_QUEUE_PREFIX"]
    score = redis_client.zscore(f"{prefix}:cleanup:repeat", "daily-cleanup")
    assert score is not None and int(score) == int(next_run.timestamp() * 1000)
    assert redis_client.zscore(f"{prefix}:cleanup:delayed", f"repeat:daily-cleanup:{int(score)}")
    assert_error(
        client.post("/api/queue-dashboard/scheduled-jobs/nope/enable"), 404, "SCHEDULE_NOT_FOUND"
    )
    assert_error(
        client.post("/api/queue-dashboard/scheduled-jobs/Bad.Name/run"), 404, "SCHEDULE_NOT_FOUND"
    )


@pytest.fixture(scope="module")
def locked(server_env, tmp_path_factory) -> KKServer:
    env = dashboard_env(
        server_env, {"d-idle": {"attempts": 1}}, KK_API_KEY=ADMIN_KEY,
        KK_READ_API_KEYS=json.dumps([READ_KEY]),
    )  # fmt: skip
    with start_server(tmp_path_factory.mktemp("dash-auth"), env) as srv:
        yield srv


def test_reads_need_a_key_and_actions_an_admin_key(locked):
    reads = ["/api/queue-dashboard/overview", "/api/queue-dashboard/health",
             "/api/queue-dashboard/scheduled-jobs", "/api/queue-dashboard/throughput",
             "/api/queue-dashboard/queues/d-idle/throughput"]  # fmt: skip
    actions = [("POST", "/api/queues/d-idle/retry-failed"),
               ("POST", "/api/queues/d-idle/jobs/1/promote"),
               ("DELETE", "/api/queues/d-idle/jobs/1"),
               ("POST", "/api/queue-dashboard/scheduled-jobs/daily-cleanup/disable"),
               ("POST", "/api/queue-dashboard/scheduled-jobs/daily-cleanup/run")]  # fmt: skip
    with locked.client as c:
        for url in reads:
            assert_error(c.get(url), 401, "UNAUTHORIZED")
            assert c.get(url, headers={"X-API-Key": READ_KEY}).status_code == 200, url
        for method, url in actions:
            assert_error(c.request(method, url), 401, "UNAUTHORIZED")
            assert_error(c.request(method, url, headers={"X-API-Key": READ_KEY}), 403,
                         "FORBIDDEN")  # fmt: skip
        ok = c.post("/api/queues/d-idle/retry-failed", headers={"X-API-Key": ADMIN_KEY})
        assert ok.status_code == 200
        assert_error(c.get("/api/queues/d-idle/jobs/1/logs"), 401, "UNAUTHORIZED")


def test_running_the_built_in_schedules_now_runs_the_cleanup_processor(client):
    results = {}
    for name in ("daily-cleanup", "hourly-trim"):
        response = client.post(f"/api/queue-dashboard/scheduled-jobs/{name}/run")
        assert response.status_code == 200, response.text
        job = wait_job(client, "cleanup", "completed", response.json()["jobId"])
        results[name] = job
    assert results["daily-cleanup"]["name"] == "cleanup-temp-files"
    assert results["hourly-trim"]["name"] == "trim-finished-jobs"
    # The schedules' data is the cleanup processor's: sweep files daily, trim jobs hourly.
    assert results["daily-cleanup"]["returnValue"]["trimmedJobs"] == 0
    assert results["hourly-trim"]["returnValue"]["removedFiles"] == 0
    listed = {s["name"]: s for s in data(client.get("/api/queue-dashboard/scheduled-jobs"))}
    assert listed["daily-cleanup"]["lastRun"] and listed["hourly-trim"]["lastRun"]
