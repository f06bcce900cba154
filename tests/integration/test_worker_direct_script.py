"""The tuned worker finishes jobs with EVALSHA written straight to a connection (one call
per pooled connection at concurrency 1, every call pipelined on one connection above).
When the server has lost its script cache (a restart, SCRIPT FLUSH) it loads the script
again (each job's processor still runs once and its result is kept); when the connection
is reset mid-flight, or refused, a new one is opened: every job still completes, well
before a lost job's lock would expire."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.helpers import add_job, wait_job
from tests.support.private_redis import proxied_redis
from tests.support.server import start_server, wait_for


def _env(url: str, prefix: str, concurrency: int, **queue: object) -> dict[str, str]:
    queue = {"processor": "tests.support.processors:flaky", "attempts": 1,
             "concurrency": concurrency, **queue}  # fmt: skip
    return {"KK_REDIS_URL": url, "KK_QUEUE_PREFIX": prefix,
            "KK_QUEUES": json.dumps({"ds-work": queue})}  # fmt: skip


def _completed(client) -> int:
    response = client.get("/api/queues/ds-work/stats")  # may be refused while Redis is away
    return response.json()["data"]["completed"] if response.status_code == 200 else -1


@pytest.mark.parametrize("concurrency", [1, 8])
def test_jobs_complete_after_the_server_forgets_its_scripts(tmp_path, concurrency):
    with proxied_redis(tmp_path / "redis") as redis_server:
        prefix = f"kkd-{uuid.uuid4().hex[:8]}"
        env = _env(redis_server.url, prefix, concurrency)
        admin = redis_server.client()
        with start_server(tmp_path / "data", env) as srv, srv.client as client:
            first = add_job(client, "ds-work", {"value": 1})
            assert wait_job(client, "ds-work", "completed", first)["returnValue"] == {"doubled": 2}
            for round_ in range(2):
                admin.script_flush()
                # Several at once: the worker takes the next job in the finishing call too.
                ids = [add_job(client, "ds-work", {"value": n}) for n in range(5)]
                for n, job_id in enumerate(ids):
                    done = wait_job(client, "ds-work", "completed", job_id)
                    assert done["returnValue"] == {"doubled": 2 * n}, round_
            stats = client.get("/api/queues/ds-work/stats").json()["data"]
            assert stats["completed"] == 11 and stats["failed"] == 0
            # Each job's processor ran exactly once: no job was finished twice or retried.
            for job_id in [first, *ids]:
                assert admin.get(f"kk-test:runs:{prefix}:ds-work:{job_id}") == "1"
        assert "tuned bullmq worker" in srv.log()


def test_calls_in_flight_when_the_connection_resets_are_sent_again(tmp_path):
    with proxied_redis(tmp_path / "redis") as redis_server:
        napping = {"processor": "tests.support.processors:nap"}
        env = _env(redis_server.url, f"kkr-{uuid.uuid4().hex[:8]}", 8, **napping)
        with start_server(tmp_path / "data", env) as srv, srv.client as client:
            ids = [add_job(client, "ds-work", {"seconds": 1}) for _ in range(16)]
            time.sleep(0.5)
            # The first eight finish during the hang: their moveToFinished calls are written
            # to the shared connection and wait there for replies that never come.
            redis_server.proxy.hold()
            time.sleep(1.5)
            redis_server.proxy.stop()  # every connection reset, the held calls lost
            time.sleep(0.5)
            redis_server.proxy.release()
            redis_server.proxy.start()
            # Far below the 30 s lock: no job waits for the stalled check to be found.
            wait_for(lambda: _completed(client) == len(ids), timeout=15, what="every job")
            stats = client.get("/api/queues/ds-work/stats").json()["data"]
            assert stats["failed"] == 0 and stats["active"] == 0


@pytest.mark.parametrize("concurrency", [1, 8])
def test_jobs_that_finish_while_redis_is_away_are_finished_when_it_returns(tmp_path, concurrency):
    with proxied_redis(tmp_path / "redis") as redis_server:
        napping = {"processor": "tests.support.processors:nap"}
        env = _env(redis_server.url, f"kka-{uuid.uuid4().hex[:8]}", concurrency, **napping)
        with start_server(tmp_path / "data", env) as srv, srv.client as client:
            ids = [add_job(client, "ds-work", {"seconds": 1}) for _ in range(concurrency + 2)]
            time.sleep(0.5)
            redis_server.proxy.stop()  # refused: the running jobs end while it lasts
            time.sleep(2)
            redis_server.proxy.start()
            wait_for(lambda: _completed(client) == len(ids), timeout=15, what="every job")
            stats = client.get("/api/queues/ds-work/stats").json()["data"]
            assert stats["failed"] == 0 and stats["active"] == 0
