"""A Redis that is alive but does not answer (SIGSTOP): every API call answers within the
bound, with a 503 and Retry-After while Redis is frozen, and no add is stored twice."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.support.server import start_server

QUEUES = {"hung": {"attempts": 1}}  # no processor: added jobs stay in `wait` to be counted
BOUND_S = 3.0  # the default KK_REDIS_ANSWER_TIMEOUT_S
SLACK_S = 1.5  # a loaded 2-core machine: process scheduling, HTTP, the event loop


@dataclass
class Answer:
    kind: str
    marker: str
    status: int
    seconds: float
    body: dict
    retry_after: str | None


def _client_loop(base_url: str, kind: str, stop: threading.Event, out: list[Answer]) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        while not stop.is_set():
            marker = uuid.uuid4().hex
            started = time.monotonic()
            if kind == "add":  # the fast add lane
                response = client.post("/api/queues/hung/jobs", json={"data": {"m": marker}})
            elif kind == "bulk":  # a FastAPI route, one transaction
                jobs = [{"data": {"m": marker}}]
                response = client.post("/api/queues/hung/jobs/bulk", json={"jobs": jobs})
            else:  # a read
                response = client.get("/api/queues/hung/stats")
            out.append(
                Answer(
                    kind,
                    marker,
                    response.status_code,
                    time.monotonic() - started,
                    response.json(),
                    response.headers.get("retry-after"),
                )
            )
            time.sleep(0.02)


def _stored_markers(direct: redis.Redis, prefix: str) -> list[str]:
    """The marker of every job hash of the queue (each add without jobId takes a new id)."""
    last = int(direct.get(f"{prefix}:hung:id") or 0)
    pipe = direct.pipeline(transaction=False)
    for job_id in range(1, last + 1):
        pipe.hget(f"{prefix}:hung:{job_id}", "data")
    return [json.loads(data)["m"] for data in pipe.execute() if data]


def test_a_frozen_redis_gets_fast_503s_and_no_add_is_stored_twice(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis-data")
    url = server.start()
    prefix = f"hung-{uuid.uuid4().hex[:6]}"
    env = {"KK_REDIS_URL": url, "KK_QUEUES": json.dumps(QUEUES), "KK_QUEUE_PREFIX": prefix}
    answers: list[Answer] = []
    stop = threading.Event()
    frozen = False
    try:
        with start_server(tmp_path / "kk", env, ["--no-workers"]) as srv:
            kinds = ["add", "add", "add", "add", "bulk", "read"]
            threads = [
                threading.Thread(target=_client_loop, args=(srv.url, kind, stop, answers))
                for kind in kinds
            ]
            for thread in threads:
                thread.start()
            time.sleep(1.5)
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            frozen = True
            time.sleep(5)
            os.kill(server.pid, signal.SIGCONT)
            frozen = False
            time.sleep(3)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

        with redis.Redis.from_url(url, decode_responses=True) as direct:
            stored = _stored_markers(direct, prefix)
        twice = {m for m in stored if stored.count(m) > 1}
        assert not twice, f"{len(twice)} adds stored twice"
        acknowledged = {a.marker for a in answers if a.status == 201}
        assert acknowledged <= set(stored), "an acknowledged add was lost"
        slowest = max(answers, key=lambda a: a.seconds)
        assert slowest.seconds <= BOUND_S + SLACK_S, slowest
        assert {a.status for a in answers} <= {200, 201, 503}, {a.status for a in answers}
        refused = [a for a in answers if a.status == 503]
        assert {a.kind for a in refused} == {"add", "bulk", "read"}, "every kind saw the freeze"
        assert {a.body["code"] for a in refused} == {"REDIS_CONNECTION_ERROR"}
        assert all(a.retry_after for a in refused)
        assert sum(a.status in (200, 201) for a in answers) > 20, "served before and after"

    finally:
        stop.set()
        if frozen and server.pid is not None:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()
