"""The embedded default: no Redis configured, the service runs its own real server."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.integration.helpers import add_job, job_in, wait_job
from tests.support.server import start_server, wait_for

IDLE = json.dumps(
    {
        "parked": {"attempts": 1},  # no processor: jobs stay put
        "flaky": {"attempts": 1, "processor": "tests.support.processors:flaky"},
    }
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_queued_jobs_survive_a_restart_of_the_embedded_service(tmp_path):
    data_dir = tmp_path / "data"
    env = {"KK_QUEUES": IDLE}
    with start_server(data_dir, env) as srv, srv.client as client:
        stats = client.get("/api/queues/stats").json()
        assert stats["success"] is True and {q["name"] for q in stats["data"]} >= {
            "email",
            "parked",
        }
        waiting = add_job(client, "parked", {"kind": "waiting"})
        delayed = add_job(client, "parked", {"kind": "delayed"}, delay=3_600_000)
        failed = add_job(client, "flaky", {"fail": True})
        wait_job(client, "flaky", "failed", failed)
        schedules = client.get("/api/queue-dashboard/scheduled-jobs").json()["data"]
        next_runs = {s["name"]: s["nextRun"] for s in schedules}
        assert set(next_runs) == {"daily-cleanup", "hourly-trim"}
        assert client.post("/api/queue-dashboard/scheduled-jobs/hourly-trim/disable").is_success
        ticks = client.get("/api/queues/cleanup/stats").json()["data"]["delayed"]
        assert ticks == 1, "one pending tick: daily-cleanup's (hourly-trim is disabled)"
        assert (data_dir / "redis" / "appendonlydir").is_dir(), "AOF is on"
        pid = int((data_dir / "redis" / "server.pid").read_text())
        assert _pid_alive(pid)
    wait_for(lambda: not _pid_alive(pid), timeout=15, what="the embedded server to stop")

    with start_server(data_dir, env) as srv, srv.client as client:
        assert job_in(client, "parked", "waiting", waiting)["data"] == {"kind": "waiting"}
        assert job_in(client, "parked", "delayed", delayed)["data"] == {"kind": "delayed"}
        stats = client.get("/api/queues/parked/stats").json()["data"]
        assert stats["waiting"] == 1 and stats["delayed"] == 1
        assert job_in(client, "flaky", "failed", failed)["failedReason"]
        after = {
            s["name"]: s for s in client.get("/api/queue-dashboard/scheduled-jobs").json()["data"]
        }
        assert (
            after["daily-cleanup"]["enabled"]
            and after["daily-cleanup"]["nextRun"] == next_runs["daily-cleanup"]
        )
        assert after["hourly-trim"]["enabled"] is False, "the choice survived the restart"
        assert client.get("/api/queues/cleanup/stats").json()["data"]["delayed"] == ticks


def test_the_embedded_server_is_supervised(tmp_path):
    data_dir = tmp_path / "data"
    with start_server(data_dir, {"KK_QUEUES": IDLE}) as srv, srv.client as client:
        job_id = add_job(client, "parked", {"n": 1})
        time.sleep(1.5)  # AOF fsyncs every second: let the add reach the disk
        pid = int((data_dir / "redis" / "server.pid").read_text())
        os.kill(pid, signal.SIGKILL)

        def back() -> bool:
            response = client.get("/api/queues/parked/stats")
            return response.status_code == 200

        wait_for(back, timeout=20, what="the service to answer again after a Redis crash")
        assert job_in(client, "parked", "waiting", job_id)


def test_listening_beyond_loopback_needs_a_key(tmp_path):
    import subprocess
    import sys

    from tests.support.server import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
    env.update({"KK_HOST": "0.0.0.0", "KK_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
    result = subprocess.run(
        [sys.executable, "-m", "kk", "serve"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    assert "without an API key" in result.stderr
