"""Jobs whose data another producer (Node, a custom processor) nested far deeper than any
add route allows: every route that reads them answers, none with a 500."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import add_job

QUEUE = "t-idle"


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.fixture
def client(server):
    with server.client as c:
        yield c


@pytest.mark.parametrize("depth", [300, 5000])  # past pydantic's limit; past json's stack
def test_routes_answer_for_deeply_nested_foreign_data(client, redis_client, server, depth):
    prefix = server.env["KK_QUEUE_PREFIX"]
    nested = _nested(depth)
    # A waiting job, a delayed one (promote reads it) and a completed one with a result.
    waiting = add_job(client, QUEUE, {"n": 1})
    delayed = client.post(
        f"/api/queues/{QUEUE}/jobs", json={"data": {"n": 2}, "options": {"delay": 600_000}}
    ).json()["jobId"]
    done = add_job(client, QUEUE, {"n": 3})
    for job_id in (waiting, delayed, done):
        redis_client.hset(
            f"{prefix}:{QUEUE}:{job_id}", "data", json.dumps({"deep": 0})[:-2] + nested + "}"
        )
    # Completed as a foreign worker would leave it: returnvalue nested too.
    redis_client.lrem(f"{prefix}:{QUEUE}:wait", 0, done)
    redis_client.zadd(f"{prefix}:{QUEUE}:completed", {done: 1})
    redis_client.hset(f"{prefix}:{QUEUE}:{done}", mapping={"returnvalue": nested, "finishedOn": 1})

    answers = {
        "job": client.get(f"/api/queues/{QUEUE}/jobs/{waiting}"),
        "list": client.get(f"/api/queues/{QUEUE}/jobs", params={"status": "waiting"}),
        "search": client.get(
            f"/api/queue-dashboard/queues/{QUEUE}/search", params={"q": "data.deep=1"}
        ),
        "search text": client.get(
            f"/api/queue-dashboard/queues/{QUEUE}/search", params={"q": "nothing-like-it"}
        ),
        "result": client.get(f"/api/queues/{QUEUE}/jobs/{done}/result", params={"wait": 0}),
        "promote": client.post(f"/api/queues/{QUEUE}/jobs/{delayed}/promote"),
        "logs": client.get(f"/api/queues/{QUEUE}/jobs/{waiting}/logs"),
    }
    failed = {what: (r.status_code, r.text[:200]) for what, r in answers.items()
              if r.status_code >= 500}  # fmt: skip
    assert not failed
    assert answers["result"].json()["data"]["state"] == "completed"
    assert answers["promote"].status_code == 200


def test_a_login_body_nested_past_the_parser_is_a_400(client):
    body = "[" * 5000 + "]" * 5000
    answer = client.post(
        "/dashboard/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "VALIDATION_ERROR"
