"""`kk worker` processes: /metrics of their own when asked, and the queues they serve."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import add_job, job_in, wait_job
from tests.support.server import ROOT, _env, free_port, start_server, start_worker, wait_for

QUEUES = {
    "wq-a": {"processor": "tests.support.processors:flaky", "attempts": 1},
    "wq-b": {"processor": "tests.support.processors:flaky", "attempts": 1},
}


@pytest.fixture
def env(redis_url):
    return {
        "KK_REDIS_URL": redis_url,
        "KK_QUEUE_PREFIX": f"kkw-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(QUEUES),
    }


def samples(url: str) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    out = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_worker_serves_job_metrics_on_its_own_port(tmp_path, env, how):
    port = free_port()
    args, extra = (["--metrics-port", str(port)], {}) if how == "flag" else (
        [], {"KK_WORKER_METRICS_PORT": str(port)})  # fmt: skip
    with (
        start_server(tmp_path / "api", env, ["--no-workers"]) as api,
        api.client as client,
        start_worker(tmp_path / "w", {**env, **extra}, args) as worker,
    ):
        assert f"metrics on http://127.0.0.1:{port}/metrics" in worker.log()
        url = f"http://127.0.0.1:{port}/metrics"
        before = samples(url)
        assert value(before, "kk_jobs_total", queue="wq-a", outcome="completed") == 0
        assert value(before, "kk_jobs_released_total", queue="wq-a") == 0
        done = [add_job(client, "wq-a", {"value": i}) for i in range(3)]
        failed = add_job(client, "wq-a", {"fail": True})
        for job_id in done:
            wait_job(client, "wq-a", "completed", job_id)
        wait_job(client, "wq-a", "failed", failed)
        after = wait_for(
            lambda: (
                (s := samples(url))
                and value(s, "kk_jobs_total", queue="wq-a", outcome="failed") == 1
                and s
            ),
            what="the worker's counters",
        )
        assert value(after, "kk_jobs_total", queue="wq-a", outcome="completed") == 3
        count = "kk_job_duration_seconds_count"
        assert value(after, count, queue="wq-a", outcome="completed") == 3
        assert value(after, count, queue="wq-a", outcome="failed") == 1
        assert value(after, "kk_jobs_active", queue="wq-a") == 0
        # The same Redis-side series as `kk serve`'s /metrics.
        assert value(after, "kk_redis_up") == 1
        assert value(after, "kk_queue_jobs", queue="wq-a", state="completed") == 3


def test_worker_metrics_are_off_by_default(tmp_path, env):
    with start_worker(tmp_path / "w", env) as worker:
        assert "metrics on" not in worker.log()


def test_worker_metrics_on_a_public_address_need_an_api_key(tmp_path, env):
    result = subprocess.run(
        [sys.executable, "-m", "kk", "worker", "--metrics-port", "0", "--metrics-host", "0.0.0.0"],
        env=_env(tmp_path, env), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Refusing to serve metrics on 0.0.0.0 without an API key" in result.stderr


def test_kk_worker_queues_limits_a_servers_workers(tmp_path, env):
    queues_env = {**env, "KK_WORKER_QUEUES": '["wq-a"]'}
    with start_server(tmp_path / "api", queues_env) as srv, srv.client as client:
        other = add_job(client, "wq-b", {"value": 1})
        mine = add_job(client, "wq-a", {"value": 2})
        assert wait_job(client, "wq-a", "completed", mine)["returnValue"] == {"doubled": 4}
        later = add_job(client, "wq-a", {"value": 3})
        wait_job(client, "wq-a", "completed", later)
        assert job_in(client, "wq-b", "waiting", other), "wq-b has no worker here"
        metrics = client.get("/metrics").text
        assert 'kk_jobs_total{outcome="completed",queue="wq-a"}' in metrics
        assert 'queue="wq-b"' not in metrics.split("kk_jobs_total")[1].split("# HELP")[0]
