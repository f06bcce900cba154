"""A schedule's next tick (a delayed `repeat:` job) is not promoted: run now runs the
schedule at once and leaves its next tick where it was."""

from __future__ import annotations

from tests.integration.dashboard_support import dashboard_env
from tests.integration.helpers import assert_error, job_in, wait_job
from tests.support.server import start_server, wait_for

SCHEDULES = {"nightly": {"queue": "p-idle", "job": "report", "cron": "0 3 * * *", "data": {"n": 1}}}


def schedule_of(client, name: str) -> dict:
    listed = client.get("/api/queue-dashboard/scheduled-jobs").json()["data"]
    return next(s for s in listed if s["name"] == name)


def next_tick(client) -> dict | None:
    page = client.get("/api/queues/p-idle/jobs", params={"status": "delayed", "end": 99})
    return next((j for j in page.json()["data"] if j["id"].startswith("repeat:")), None)


def test_promoting_a_schedules_next_tick_is_refused_and_run_now_keeps_it(
    server_env, tmp_path_factory
):
    env = dashboard_env(server_env, {"p-idle": {"attempts": 1}}, SCHEDULES)
    with start_server(tmp_path_factory.mktemp("sched-promote"), env) as srv, srv.client as c:
        tick = wait_for(lambda: next_tick(c), what="the schedule's delayed next tick")
        before = schedule_of(c, "nightly")
        assert before["lastRun"] is None and before["nextRun"]

        response = c.post(f"/api/queues/p-idle/jobs/{tick['id']}/promote")
        body = assert_error(response, 409, "JOB_CONFLICT")
        assert "schedule 'nightly'" in body["error"]
        assert "/api/queue-dashboard/scheduled-jobs/nightly/run" in body["error"]
        # Nothing moved: the tick is still delayed, no run was recorded.
        assert job_in(c, "p-idle", "delayed", tick["id"])
        after = schedule_of(c, "nightly")
        assert after["nextRun"] == before["nextRun"] and after["lastRun"] is None

        response = c.post("/api/queue-dashboard/scheduled-jobs/nightly/run")
        assert response.status_code == 200, response.text
        job = wait_job(c, "p-idle", "waiting", response.json()["jobId"])
        assert job["name"] == "report" and job["data"] == {"n": 1}
        ran = schedule_of(c, "nightly")
        assert ran["nextRun"] == before["nextRun"], "run now leaves the next tick alone"
        assert ran["lastRun"] is not None
        assert job_in(c, "p-idle", "delayed", tick["id"])

        # An ordinary delayed job is still promoted.
        added = c.post("/api/queues/p-idle/jobs", json={"data": {}, "options": {"delay": 60000}})
        assert added.status_code == 201, added.text
        plain = added.json()["jobId"]
        assert c.post(f"/api/queues/p-idle/jobs/{plain}/promote").status_code == 200
        assert job_in(c, "p-idle", "waiting", plain)
