"""Hostile shapes of input through the real API: deep nesting, and BullMQ's own key names
used as job ids. Each once answered 500 (or showed a queue's internal hash as a job)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.helpers import add_job, assert_error


def nested(depth: int) -> Any:
    """`depth` levels of objects around a number."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_text(depth: int) -> str:
    # Built as text: json.dumps itself gives up near 1000 levels.
    return '{"a":' * depth + "1" + "}" * depth


def send(client: httpx.Client, method: str, url: str, body: str) -> httpx.Response:
    headers = {"content-type": "application/json"}
    return client.request(method, url, content=body, headers=headers)


@pytest.mark.parametrize("depth", [65, 255, 600, 900])
def test_deeply_nested_job_data_is_refused_on_every_add_route(server, depth):
    data = '{"deep":' + deep_text(depth) + "}"  # `data` itself is one more level
    with server.client as client:
        # The generic route (answered by the fast add lane when the body parses).
        r = send(client, "POST", "/api/queues/t-idle/jobs", '{"data":' + data + "}")
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert "nested more than 64 levels" in body["error"]
        # A queue with a payload model, and a bulk add.
        r = send(client, "POST", "/api/queues/t-basic/jobs", '{"data":' + data + "}")
        assert_error(r, 400, "VALIDATION_ERROR")
        bulk = '{"jobs":[{"data":{"ok":1}},{"data":' + data + "}]}"
        r = send(client, "POST", "/api/queues/t-idle/jobs/bulk", bulk)
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert "jobs[1].data" in body["error"]
        email = '{"to":"a@example.com","subject":"Hi","template":"notification","data":'
        r = send(client, "POST", "/api/queues/email/jobs", email + data + "}")
        assert_error(r, 400, "VALIDATION_ERROR")
        # Nothing was stored; the queue's pages still answer.
        assert client.get("/api/queues/t-idle/jobs").status_code == 200


def test_bodies_too_deep_for_the_json_parser_are_a_400(server):
    with server.client as client:
        for url in ("/api/queues/t-idle/jobs", "/api/queues/t-idle/jobs/bulk"):
            assert_error(send(client, "POST", url, deep_text(5000)), 400, "VALIDATION_ERROR")
        r = send(client, "PUT", "/api/cache/too-deep", deep_text(5000))
        assert_error(r, 400, "VALIDATION_ERROR")


def test_nesting_up_to_the_limit_is_accepted_and_reads_back(server):
    data = {"deep": nested(63)}  # 64 levels with `data` itself
    with server.client as client:
        job_id = add_job(client, "t-idle", data)
        r = client.get(f"/api/queues/t-idle/jobs/{job_id}")
        assert r.status_code == 200, r.text
        assert r.json()["data"]["data"] == data


@pytest.mark.parametrize("depth", [65, 900])
def test_deeply_nested_cache_values_are_refused(server, depth):
    key = f"deep-{uuid.uuid4().hex[:8]}"
    with server.client as client:
        r = send(client, "PUT", f"/api/cache/{key}", '{"value":' + deep_text(depth) + "}")
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert "nested" in body["error"]
        batch = f'{{"keys":["{key}","{key}-2"],"values":[1,{deep_text(depth)}]}}'
        r = send(client, "POST", "/api/cache-demo/batch", batch)
        assert_error(r, 400, "VALIDATION_ERROR")
        assert_error(client.get(f"/api/cache/{key}"), 404, "CACHE_KEY_NOT_FOUND")
        ok = client.put(f"/api/cache/{key}", json={"value": nested(63)})
        assert ok.status_code == 200, ok.text
        assert client.get(f"/api/cache/{key}").json()["data"]["value"] == nested(63)
        client.delete(f"/api/cache/{key}")


def test_deep_values_other_producers_wrote_read_back_as_text(server, redis_client, queue_prefix):
    """A Node producer or another tool may write what the API refuses: reads still answer."""
    text = deep_text(900)
    job_key = f"{queue_prefix}:t-idle:deep-{uuid.uuid4().hex[:8]}"
    now = str(int(time.time() * 1000))
    redis_client.hset(job_key, mapping={"name": "x", "data": text, "opts": "{}", "timestamp": now})
    cache_name = f"deep-{uuid.uuid4().hex[:8]}"
    redis_client.set(f"kk:cache:{cache_name}", text, ex=60)
    try:
        with server.client as client:
            r = client.get(f"/api/queues/t-idle/jobs/{job_key.rsplit(':', 1)[1]}")
            assert r.status_code == 200, r.text
            assert r.json()["data"]["data"] == text
            r = client.get(f"/api/cache/{cache_name}")
            assert r.status_code == 200, r.text
            assert r.json()["data"]["value"] == text
    finally:
        redis_client.delete(job_key, f"kk:cache:{cache_name}")


# Every name bullmq's QueueKeys gives a queue's own keys, and the stems of its metrics and
# deduplication keys.
BULLMQ_KEY_NAMES = [
    "events", "id", "meta", "wait", "paused", "active", "completed", "failed", "delayed",
    "prioritized", "stalled", "limiter", "marker", "de", "dn", "pc", "stalled-check",
    "metrics", "repeat", "waiting-children",
]  # fmt: skip


def test_job_ids_naming_bullmq_keys_are_not_jobs(server, redis_client, queue_prefix):
    with server.client as client:
        job_id = add_job(client, "t-idle", {"n": 1})  # creates events, meta, id, wait, marker
        # A job's own sub-keys (its log list, its lock) are not jobs either.
        logs_key = f"{queue_prefix}:t-idle:{job_id}:logs"
        redis_client.rpush(logs_key, "a line")
        try:
            for name in [*BULLMQ_KEY_NAMES, f"{job_id}:logs"]:
                base = f"/api/queues/t-idle/jobs/{name}"
                assert_error(client.get(base), 404, "JOB_NOT_FOUND")
                assert_error(client.post(f"{base}/retry"), 404, "JOB_NOT_FOUND")
                assert_error(client.post(f"{base}/promote"), 404, "JOB_NOT_FOUND")
                assert_error(client.get(f"{base}/logs"), 404, "JOB_NOT_FOUND")
                assert_error(client.delete(base), 404, "JOB_NOT_FOUND")
        finally:
            redis_client.delete(logs_key)
        # The queue itself is intact and the real job still reads.
        assert client.get(f"/api/queues/t-idle/jobs/{job_id}").status_code == 200
        assert client.get("/api/queues/t-idle/stats").status_code == 200


@pytest.mark.parametrize("name", ["meta", "events", "wait", "id", "stalled-check"])
def test_adding_a_job_with_a_bullmq_key_as_its_id_is_refused(server, name):
    add = {"data": {"n": 1}, "options": {"jobId": name}}
    with server.client as client:
        r = client.post("/api/queues/t-idle/jobs", json=add)
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert "options.jobId" in body["error"]
        bulk = {"jobs": [add]}
        r = client.post("/api/queues/t-idle/jobs/bulk", json=bulk)
        assert_error(r, 400, "VALIDATION_ERROR")
        email = {"to": "a@example.com", "subject": "Hi", "template": "notification",
                 "options": {"jobId": name}}  # fmt: skip
        assert_error(client.post("/api/queues/email/jobs", json=email), 400, "VALIDATION_ERROR")
