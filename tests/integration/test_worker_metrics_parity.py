"""`kk worker --metrics-port` exposes every worker series `kk serve` does, Redis errors
included, under the same names (the README promises it)."""

from __future__ import annotations

import json
import uuid

from tests.integration.helpers import add_job, wait_job
from tests.support.full_redis import Samples, fill, private_redis, scrape, total
from tests.support.server import free_port, start_server, start_worker, wait_for

QUEUES = {"par": {"processor": "tests.support.processors:nap", "concurrency": 1}}
WORKER_PREFIXES = ("kk_job", "kk_worker")
# Redis errors are counted per queue and kind as they happen: which queues of a process
# meet one while Redis is full varies, the series' name does not.
BY_NAME_ONLY = ("kk_worker_redis_errors_total",)


def worker_series(samples: Samples) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    return {
        (name, frozenset() if name in BY_NAME_ONLY else labels)
        for name, labels in samples
        if name.startswith(WORKER_PREFIXES)
    }


def test_kk_worker_exposes_every_worker_series_of_kk_serve(tmp_path):
    port = free_port()
    worker_url = f"http://127.0.0.1:{port}/metrics"
    with private_redis(tmp_path / "redis") as (url, direct):
        env = {
            "KK_REDIS_URL": url,
            "KK_QUEUE_PREFIX": f"par-{uuid.uuid4().hex[:6]}",
            "KK_QUEUES": json.dumps(QUEUES),
        }
        with (
            start_server(tmp_path / "api", env) as api,
            api.client as client,
            start_worker(tmp_path / "w", env, ["--metrics-port", str(port)]),
        ):
            serve_url = f"{api.url}/metrics"
            # Both run jobs: several adds wake both processes' workers.
            ids = [add_job(client, "par", {"seconds": 0.2}) for _ in range(12)]
            for job_id in ids:
                wait_job(client, "par", "completed", job_id)
            # Both meet a Redis error: jobs fall due while Redis is full, and every worker
            # that asks for one is refused (an empty queue alone writes nothing).
            late = [add_job(client, "par", {"seconds": 0.2}, delay=1500) for _ in range(3)]
            fill(direct)
            try:
                for where in (serve_url, worker_url):
                    wait_for(
                        lambda u=where: total(scrape(u), "kk_worker_redis_errors_total") > 0,
                        timeout=20,
                        what=f"a Redis error counted at {where}",
                    )
            finally:
                direct.config_set("maxmemory", 0)
            for job_id in late:
                wait_job(client, "par", "completed", job_id, timeout=30)
            served, worked = scrape(serve_url), scrape(worker_url)

    for found in (served, worked):
        assert total(found, "kk_jobs_total", queue="par", outcome="completed") > 0
    missing = worker_series(served) - worker_series(worked)
    assert not missing, sorted(missing)
