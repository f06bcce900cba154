"""Redis goes away for 10 s while producers add jobs and workers run: clients get clean 503s,
every add that got a jobId survives, and processing resumes on its own."""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx

from kk.infra.embedded_redis import EmbeddedRedis
from tests.integration.helpers import job_in
from tests.support.server import start_server, wait_for

# A job running when Redis goes away fails (its processor writes to Redis too): retries,
# spaced over more than the outage, let it finish once Redis is back, as a real queue would.
QUEUES = {
    "out": {
        "processor": "tests.support.processors:flaky",
        "attempts": 10,
        "backoff_type": "fixed",
        "backoff_delay_ms": 2000,
    }
}


def test_adds_during_an_outage_get_503_and_nothing_acknowledged_is_lost(tmp_path):
    redis_dir = tmp_path / "redis-data"
    redis_server = EmbeddedRedis(redis_dir)
    url = redis_server.start()
    env = {"KK_REDIS_URL": url, "KK_QUEUES": json.dumps(QUEUES), "KK_QUEUE_PREFIX": "out"}
    results: list[tuple[str, int, dict]] = []
    stop = threading.Event()

    def produce(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            i = 0
            while not stop.is_set():
                job_id = f"p-{uuid.uuid4().hex[:6]}-{i}"
                started = time.monotonic()
                response = client.post(
                    "/api/queues/out/jobs",
                    json={"data": {"value": i}, "options": {"jobId": job_id}},
                )
                assert time.monotonic() - started < 8, "an add must not hang during an outage"
                results.append((job_id, response.status_code, response.json()))
                i += 1
                time.sleep(0.05)

    try:
        with start_server(tmp_path / "kk", env) as srv, srv.client as client:
            producer = threading.Thread(target=produce, args=(srv.url,))
            producer.start()
            time.sleep(2)
            redis_server.stop()
            time.sleep(10)
            redis_server = EmbeddedRedis(redis_dir)
            assert redis_server.start() == url
            time.sleep(3)
            stop.set()
            producer.join(timeout=30)

            statuses = {status for _, status, _ in results}
            assert statuses <= {201, 503}, statuses
            unavailable = [body for _, status, body in results if status == 503]
            assert unavailable, "the outage was seen by clients"
            assert {b["code"] for b in unavailable} == {"REDIS_CONNECTION_ERROR"}
            accepted = [job_id for job_id, status, _ in results if status == 201]
            assert len(accepted) > 20
            for job_id in accepted:
                wait_for(
                    lambda job_id=job_id: job_in(client, "out", "completed", job_id),
                    timeout=40,
                    what=f"acknowledged job {job_id} to complete",
                )
    finally:
        redis_server.stop()
