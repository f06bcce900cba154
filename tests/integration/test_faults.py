"""Nothing lost: killed workers, graceful and hurried shutdowns, with real processes."""

from __future__ import annotations

import json
import re
import signal
import uuid

import pytest

from tests.integration.helpers import add_job, job_in, wait_job
from tests.support.server import start_server, start_worker, wait_for

SLEEPY = {"slow": {"processor": "tests.support.processors:sleepy", "attempts": 1}}
# Short locks so a dead worker's job is recovered in seconds, not the default 30 s.
FAST_STALL = {"KK_LOCK_DURATION_MS": "2000", "KK_STALLED_INTERVAL_MS": "1000"}


@pytest.fixture
def env(redis_url):
    return {
        "KK_REDIS_URL": redis_url,
        "KK_QUEUE_PREFIX": f"kkf-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(SLEEPY),
        **FAST_STALL,
    }


def _runs(redis_client, env, job_id, what="runs"):
    return int(redis_client.get(f"kk-test:{what}:{env['KK_QUEUE_PREFIX']}:slow:{job_id}") or 0)


def _worker_started(worker, job_id: str) -> bool:
    return re.search(rf"job start queue=slow id={job_id} ", worker.log()) is not None


def test_a_killed_workers_job_is_run_again_by_another_worker(tmp_path, env, redis_client):
    with start_server(tmp_path / "api", env, ["--no-workers"]) as api, api.client as client:
        with start_worker(tmp_path / "w1", env) as first:
            job_id = add_job(client, "slow", {"seconds": 3})
            wait_for(lambda: _worker_started(first, job_id), what="the first worker to start it")
            wait_for(lambda: _runs(redis_client, env, job_id) == 1, what="the processor to run")
            assert _runs(redis_client, env, job_id, "done") == 0
            first.stop(signal.SIGKILL)
        assert job_in(client, "slow", "active", job_id), "the job is stuck in active"
        with start_worker(tmp_path / "w2", env) as second:
            wait_job(client, "slow", "completed", job_id, timeout=30)
            assert _worker_started(second, job_id)
        assert _runs(redis_client, env, job_id, "runs") == 2
        assert _runs(redis_client, env, job_id, "done") == 1, "completed exactly once"
        detail = client.get(f"/api/queues/slow/jobs/{job_id}").json()["data"]
        assert detail["status"] == "completed"


def test_sigterm_lets_active_jobs_finish_within_the_grace(tmp_path, env, redis_client):
    with start_server(tmp_path / "api", env, ["--no-workers"]) as api, api.client as client:
        with start_worker(tmp_path / "w", {**env, "KK_SHUTDOWN_GRACE_S": "10"}) as worker:
            job_id = add_job(client, "slow", {"seconds": 2})
            wait_for(lambda: _worker_started(worker, job_id), what="the worker to start it")
            assert worker.stop(signal.SIGTERM, timeout=15) == 0
        assert job_in(client, "slow", "completed", job_id), "finished before the worker exited"
        assert _runs(redis_client, env, job_id, "done") == 1


def test_a_job_outliving_the_grace_is_released_and_retried(tmp_path, env, redis_client):
    with start_server(tmp_path / "api", env, ["--no-workers"]) as api, api.client as client:
        with start_worker(tmp_path / "w", {**env, "KK_SHUTDOWN_GRACE_S": "0.5"}) as worker:
            job_id = add_job(client, "slow", {"seconds": 4})
            wait_for(lambda: _worker_started(worker, job_id), what="the worker to start it")
            worker.stop(signal.SIGTERM, timeout=10)
            assert "outlived" in worker.log()
        assert _runs(redis_client, env, job_id, "done") == 0
        assert job_in(client, "slow", "failed", job_id) is None, "not failed, not lost"
        with start_worker(tmp_path / "w2", env):
            wait_job(client, "slow", "completed", job_id, timeout=30)
        assert _runs(redis_client, env, job_id, "done") == 1
