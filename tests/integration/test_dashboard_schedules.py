"""Cron schedules run by BullMQ job schedulers: once per tick across processes, enable and
disable shared through Redis and kept over restarts, run now, next and last run."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.integration.dashboard_support import FAIL_FIRST, dashboard_env
from tests.integration.helpers import assert_error, wait_job
from tests.support.server import start_server, wait_for

TICK_MS = 2000
QUEUES = {"s-tick": {"processor": FAIL_FIRST, "attempts": 1, "concurrency": 4}}
SCHEDULES = {
    "tick": {
        "queue": "s-tick",
        "job": "tick",
        "cron": "*/2 * * * * *",
        "description": "every two seconds",
    }
}


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def schedule_of(client, name: str) -> dict:
    listed = client.get("/api/queue-dashboard/scheduled-jobs").json()["data"]
    return next(s for s in listed if s["name"] == name)


def tick_jobs(client, queue: str = "s-tick") -> list[dict]:
    jobs = []
    for status in ("completed", "failed", "active", "waiting", "delayed"):
        page = client.get(f"/api/queues/{queue}/jobs", params={"status": status, "end": 999})
        jobs += [j for j in page.json()["data"] if j["name"] == "tick"]
    return jobs


def tick_of(job: dict) -> int:
    prefix, name, millis = job["id"].split(":")
    assert (prefix, name) == ("repeat", "tick"), job["id"]
    return int(millis)


@pytest.fixture
def env(server_env):
    return dashboard_env(server_env, QUEUES, SCHEDULES, prefix=f"kks-{uuid.uuid4().hex[:8]}")


def test_two_processes_enqueue_each_tick_exactly_once(env, tmp_path_factory, redis_client):
    prefix = env["KK_QUEUE_PREFIX"]
    with (
        start_server(tmp_path_factory.mktemp("sched-a"), env) as a,
        start_server(tmp_path_factory.mktemp("sched-b"), env) as b,
        a.client as ca,
        b.client as cb,
    ):
        start = int(time.time() * 1000)
        time.sleep(7)
        end = int(time.time() * 1000)
        # Every tick due in the window, give or take the first and the last.
        expected = list(range((start // TICK_MS + 1) * TICK_MS, end - 1000, TICK_MS))
        assert len(expected) >= 3
        for tick in expected:
            wait_job(ca, "s-tick", "completed", f"repeat:tick:{tick}", timeout=10)

        jobs = tick_jobs(ca)
        ticks = [tick_of(j) for j in jobs]
        assert len(ticks) == len(set(ticks)), f"a tick was enqueued twice: {sorted(ticks)}"
        assert all(t % TICK_MS == 0 for t in ticks)
        finished = sorted(tick_of(j) for j in jobs if j["status"] == "completed")
        # No gap and no extra tick from the first to the last one run.
        assert finished == list(range(finished[0], finished[-1] + 1, TICK_MS))
        assert len([j for j in jobs if j["status"] == "delayed"]) <= 1
        for job in jobs:
            if job["status"] == "completed":
                runs = redis_client.get(f"kk-test:runs:{prefix}:s-tick:{job['id']}")
                assert runs == "1", f"{job['id']} ran {runs} times"
                assert job["returnValue"] == {"runs": 1}

        # Both processes show the same schedule, with a recorded last run.
        seen_a, seen_b = schedule_of(ca, "tick"), schedule_of(cb, "tick")
        assert seen_a["enabled"] is seen_b["enabled"] is True
        last = ms(seen_a["lastRun"])
        assert last % TICK_MS == 0 and last >= expected[-1]
        assert ms(seen_a["nextRun"]) % TICK_MS == 0 and ms(seen_a["nextRun"]) > last


def test_disable_stops_ticks_in_every_process_and_survives_a_restart(
    env, tmp_path_factory, redis_client
):
    prefix = env["KK_QUEUE_PREFIX"]
    data_dir = tmp_path_factory.mktemp("sched-restart")
    with (
        start_server(data_dir, env) as a,
        start_server(data_dir / "b", env) as b,
        a.client as ca,
        b.client as cb,
    ):
        wait_for(lambda: tick_jobs(ca), timeout=10, what="a first tick")
        response = ca.post("/api/queue-dashboard/scheduled-jobs/tick/disable")
        assert response.status_code == 200 and response.json()["success"] is True
        assert schedule_of(cb, "tick")["enabled"] is False
        assert schedule_of(cb, "tick")["nextRun"] is None
        # The BullMQ scheduler and its pending tick are gone.
        assert redis_client.zscore(f"{prefix}:s-tick:repeat", "tick") is None
        time.sleep(0.5)  # a tick already taken by a worker may still finish
        before = {j["id"] for j in tick_jobs(ca)}
        assert not [j for j in tick_jobs(ca) if j["status"] == "delayed"]
        time.sleep(3 * TICK_MS / 1000)
        assert {j["id"] for j in tick_jobs(ca)} == before, "a disabled schedule ticked"

    with start_server(data_dir, env) as c, c.client as cc:
        assert schedule_of(cc, "tick")["enabled"] is False
        time.sleep(TICK_MS / 1000 + 1)
        assert {j["id"] for j in tick_jobs(cc)} == before, "disabled, yet it ran after restart"
        assert redis_client.zscore(f"{prefix}:s-tick:repeat", "tick") is None
        assert cc.post("/api/queue-dashboard/scheduled-jobs/tick/enable").status_code == 200
        assert schedule_of(cc, "tick")["enabled"] is True
        wait_for(lambda: len(tick_jobs(cc)) > len(before), timeout=10, what="ticks again")

    with start_server(data_dir, env) as d, d.client as cd:
        listed = schedule_of(cd, "tick")
        assert listed["enabled"] is True and listed["nextRun"] is not None
        count = len(tick_jobs(cd))
        wait_for(lambda: len(tick_jobs(cd)) > count, timeout=10, what="ticks after restart")


def test_run_now_next_run_in_a_time_zone_and_disabled_by_configuration(
    server_env, tmp_path_factory
):
    schedules = {
        "tz-daily": {
            "queue": "s-idle",
            "job": "report",
            "cron": "0 2 * * *",
            "timezone": "Asia/Shanghai",
            "data": {"kind": "daily"},
        },
        "off": {"queue": "s-idle", "job": "never", "cron": "* * * * *", "enabled": False},
    }
    env = dashboard_env(server_env, {"s-idle": {"attempts": 1}}, schedules)
    with start_server(tmp_path_factory.mktemp("sched-tz"), env) as srv, srv.client as c:
        daily = schedule_of(c, "tz-daily")
        assert daily["timezone"] == "Asia/Shanghai" and daily["lastRun"] is None
        local = datetime.fromtimestamp(ms(daily["nextRun"]) / 1000, ZoneInfo("Asia/Shanghai"))
        assert (local.hour, local.minute, local.second) == (2, 0, 0)
        assert timedelta(0) < local - datetime.now(UTC) <= timedelta(days=1)
        off = schedule_of(c, "off")
        assert off["enabled"] is False and off["nextRun"] is None

        before = time.time() * 1000
        response = c.post("/api/queue-dashboard/scheduled-jobs/tz-daily/run")
        assert response.status_code == 200, response.text
        job_id = response.json()["jobId"]
        job = wait_job(c, "s-idle", "waiting", job_id)
        assert job["name"] == "report" and job["data"] == {"kind": "daily"}
        assert ms(schedule_of(c, "tz-daily")["lastRun"]) >= before - 1
        # Run now does not move the schedule's own next tick.
        assert schedule_of(c, "tz-daily")["nextRun"] == daily["nextRun"]
        assert_error(
            c.post("/api/queue-dashboard/scheduled-jobs/nope/run"), 404, "SCHEDULE_NOT_FOUND"
        )
