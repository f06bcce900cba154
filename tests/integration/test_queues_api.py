"""Every /api/queues route through the real HTTP API of a running `kk serve`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.helpers import add_job, assert_error, job_in, wait_job
from tests.support.server import KKServer, wait_for

STATS_FIELDS = {"name", "waiting", "active", "completed", "failed", "delayed", "paused"}


@pytest.fixture
def client(server: KKServer):
    with server.client as c:
        yield c


def test_stats_of_all_queues_have_the_contract_shape(client):
    response = client.get("/api/queues/stats")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    names = [q["name"] for q in body["data"]]
    for builtin in ("email", "image-processing", "cleanup", "webhook", "t-basic"):
        assert builtin in names
    for queue in body["data"]:
        assert set(queue) >= STATS_FIELDS
        assert isinstance(queue["paused"], bool)
        assert all(isinstance(queue[f], int) for f in STATS_FIELDS - {"name", "paused"})


def test_stats_of_one_queue_and_name_errors(client):
    body = client.get("/api/queues/email/stats").json()
    assert body["success"] is True and body["data"]["name"] == "email"
    assert set(body["data"]) >= STATS_FIELDS
    assert_error(client.get("/api/queues/no-such-queue/stats"), 404, "QUEUE_NOT_FOUND")
    assert_error(client.get("/api/queues/Bad.Name/stats"), 400, "INVALID_QUEUE_NAME")
    assert_error(client.get("/api/queues/" + "a" * 65 + "/stats"), 400, "INVALID_QUEUE_NAME")
    assert_error(client.post("/api/queues/Bad.Name/pause"), 400, "INVALID_QUEUE_NAME")
    assert_error(client.post("/api/queues/nope/jobs", json={}), 404, "QUEUE_NOT_FOUND")


def test_unknown_routes_and_methods_answer_the_envelope(client):
    assert_error(client.get("/api/nothing-here"), 404, "NOT_FOUND")
    assert_error(client.delete("/api/queues/stats"), 405, "METHOD_NOT_ALLOWED")


def test_added_job_is_processed_and_listed_with_its_result(client):
    job_id = add_job(client, "t-basic", {"value": 21})
    job = wait_job(client, "t-basic", "completed", job_id)
    assert job["name"] == "job"
    assert job["data"] == {"value": 21}
    assert job["returnValue"] == {"doubled": 42}
    assert job["status"] == "completed"
    assert job["attempts"] == 1
    assert job["createdAt"].endswith("Z") and job["finishedOn"]
    detail = client.get(f"/api/queues/t-basic/jobs/{job_id}").json()["data"]
    assert detail["status"] == "completed" and detail["id"] == job_id


def test_job_bodies_are_validated(client):
    bad_data = client.post("/api/queues/t-basic/jobs", json={"data": {"value": -1}})
    body = assert_error(bad_data, 400, "VALIDATION_ERROR")
    assert "value" in body["error"]
    unknown_option = {"data": {}, "options": {"removeOnComplete": False}}
    assert_error(
        client.post("/api/queues/t-basic/jobs", json=unknown_option), 400, "VALIDATION_ERROR"
    )
    for options in ({"attempts": 0}, {"delay": -5}, {"priority": -1}, {"jobId": "123"},
                    {"jobId": "a:b"}, {"backoff": {"type": "linear"}}):  # fmt: skip
        response = client.post("/api/queues/t-basic/jobs", json={"data": {}, "options": options})
        assert_error(response, 400, "VALIDATION_ERROR")
    not_json = client.post(
        "/api/queues/t-basic/jobs", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert_error(not_json, 400, "VALIDATION_ERROR")


def test_job_id_makes_adds_idempotent(client):
    first = add_job(client, "t-idle", {"n": 1}, jobId="order-42")
    again = client.post(
        "/api/queues/t-idle/jobs", json={"data": {"n": 2}, "options": {"jobId": "order-42"}}
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    assert first == again.json()["jobId"] == "order-42"
    jobs = client.get("/api/queues/t-idle/jobs", params={"status": "waiting", "end": 999}).json()
    matching = [j for j in jobs["data"] if j["id"] == "order-42"]
    assert len(matching) == 1 and matching[0]["data"] == {"n": 1}


def test_job_options_reach_bullmq(client):
    job_id = add_job(
        client, "t-idle", {"n": 3}, attempts=7, priority=5, backoff={"type": "fixed", "delay": 10}
    )
    job = job_in(client, "t-idle", "prioritized", job_id)
    assert job is not None
    assert job["priority"] == 5
    assert job["opts"]["attempts"] == 7
    assert job["opts"]["backoff"] == {"type": "fixed", "delay": 10}
    assert client.get("/api/queues/t-idle/stats").json()["data"]["prioritized"] >= 1


def test_listing_pages_are_bounded_and_ordered(client):
    ids = [add_job(client, "t-idle", {"page": i}) for i in range(5)]
    everything = client.get("/api/queues/t-idle/jobs", params={"status": "waiting", "end": 999})
    waiting = [j["id"] for j in everything.json()["data"]]
    positions = [waiting.index(i) for i in ids]
    assert positions == sorted(positions), "waiting jobs are listed oldest first"
    first = waiting.index(ids[0])
    page = client.get(
        "/api/queues/t-idle/jobs", params={"status": "waiting", "start": first, "end": first + 1}
    ).json()["data"]
    assert [j["id"] for j in page] == ids[:2]
    default_page = client.get("/api/queues/t-idle/jobs").json()["data"]
    assert len(default_page) <= 51
    for params in ({"start": 0, "end": 1000}, {"start": -1}, {"end": -3}, {"status": "nope"},
                   {"start": 10, "end": 5}, {"start": "x"}):  # fmt: skip
        assert_error(client.get("/api/queues/t-idle/jobs", params=params), 400, "VALIDATION_ERROR")
    wide_but_allowed = client.get("/api/queues/t-idle/jobs", params={"start": 0, "end": 999})
    assert wide_but_allowed.status_code == 200


def test_delayed_jobs_are_listed_as_delayed(client):
    job_id = add_job(client, "t-idle", {"later": True}, delay=3_600_000)
    job = job_in(client, "t-idle", "delayed", job_id)
    assert job is not None and job["delay"] == 3_600_000
    assert client.get("/api/queues/t-idle/stats").json()["data"]["delayed"] >= 1


def test_delay_longer_than_redis_default_timeout_still_runs(client):
    # redis-py 8 has a 5 s socket timeout by default; the worker's blocking wait must survive it.
    job_id = add_job(client, "t-basic", {"value": 1}, delay=6_000)
    assert job_in(client, "t-basic", "delayed", job_id)
    wait_job(client, "t-basic", "completed", job_id, timeout=25)


def test_pause_stops_processing_and_resume_restarts_it(client):
    assert client.post("/api/queues/t-pause/pause").json()["success"] is True
    assert client.post("/api/queues/t-pause/pause").status_code == 200  # idempotent
    assert client.get("/api/queues/t-pause/stats").json()["data"]["paused"] is True
    job_id = add_job(client, "t-pause", {"value": 5})
    time.sleep(2.5)
    assert job_in(client, "t-pause", "waiting", job_id), "a paused queue must not run jobs"
    assert job_in(client, "t-pause", "completed", job_id) is None
    assert client.post("/api/queues/t-pause/resume").json()["success"] is True
    assert client.post("/api/queues/t-pause/resume").status_code == 200
    assert client.get("/api/queues/t-pause/stats").json()["data"]["paused"] is False
    wait_job(client, "t-pause", "completed", job_id)


def test_retry_reruns_a_failed_job(client, redis_client, queue_prefix):
    job_id = add_job(client, "t-retry", {"fail": True, "value": 9})
    failed = wait_job(client, "t-retry", "failed", job_id)
    assert "requested failure for value 9" in failed["failedReason"]
    assert failed["stacktrace"] and "RuntimeError" in failed["stacktrace"][0]
    runs_key = f"kk-test:runs:{queue_prefix}:t-retry:{job_id}"
    assert redis_client.get(runs_key) == "1"

    response = client.post(f"/api/queues/t-retry/jobs/{job_id}/retry")
    assert response.status_code == 200 and response.json()["success"] is True
    assert job_id in response.json()["message"]
    wait_for(lambda: redis_client.get(runs_key) == "2", what="the retried job to run again")
    wait_job(client, "t-retry", "failed", job_id)

    ok_id = add_job(client, "t-retry", {"value": 1})
    wait_job(client, "t-retry", "completed", ok_id)
    assert_error(client.post(f"/api/queues/t-retry/jobs/{ok_id}/retry"), 409, "JOB_NOT_RETRYABLE")
    assert_error(client.post("/api/queues/t-retry/jobs/nope-1/retry"), 404, "JOB_NOT_FOUND")
    assert_error(client.get("/api/queues/t-retry/jobs/nope-1"), 404, "JOB_NOT_FOUND")


def test_clean_removes_finished_jobs_but_never_active_ones(client, server):
    done = [add_job(client, "t-clean", {"value": i}) for i in range(3)]
    failed = add_job(client, "t-clean", {"fail": True})
    for job_id in done:
        wait_job(client, "t-clean", "completed", job_id)
    wait_job(client, "t-clean", "failed", failed)
    active = add_job(client, "t-sleep", {"seconds": 3})
    wait_job(client, "t-sleep", "active", active)

    response = client.post("/api/queues/t-clean/clean", params={"status": "completed", "limit": 2})
    assert response.json()["data"] == {"completed": 2}
    response = client.post("/api/queues/t-clean/clean")
    assert response.status_code == 200
    assert response.json()["data"] == {"completed": 1, "failed": 1}
    stats = client.get("/api/queues/t-clean/stats").json()["data"]
    assert stats["completed"] == 0 and stats["failed"] == 0

    assert client.post("/api/queues/t-sleep/clean").status_code == 200
    assert_error(client.post("/api/queues/t-sleep/clean", params={"status": "active"}), 400,
                 "VALIDATION_ERROR")  # fmt: skip
    assert job_in(client, "t-sleep", "active", active), "clean must not touch an active job"
    wait_job(client, "t-sleep", "completed", active)


def test_waiting_jobs_can_be_cleaned_with_a_grace(client):
    # Jobs other tests left in this shared queue may be older than the grace: none left.
    client.post("/api/queues/t-idle/clean", params={"status": "waiting"})
    fresh = add_job(client, "t-idle", {"fresh": True})
    response = client.post(
        "/api/queues/t-idle/clean", params={"status": "waiting", "grace": 60_000}
    )
    assert response.json()["data"] == {"waiting": 0}
    assert job_in(client, "t-idle", "waiting", fresh)
    response = client.post("/api/queues/t-idle/clean", params={"status": "waiting"})
    assert response.json()["data"]["waiting"] >= 1
    assert job_in(client, "t-idle", "waiting", fresh) is None


def test_sizes_are_limited(client):
    big = {"blob": "x" * 70_000}
    assert_error(client.post("/api/queues/t-idle/jobs", json={"data": big}), 413,
                 "PAYLOAD_TOO_LARGE")  # fmt: skip
    huge = b'{"data": {"blob": "' + b"x" * 1_100_000 + b'"}}'
    response = client.post(
        "/api/queues/t-idle/jobs", content=huge, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")

    # Chunked bodies (no Content-Length) are read up to the limit, then refused or replayed.
    def chunked(blob_bytes: int) -> Iterator[bytes]:
        yield b'{"data": {"blob": "'
        yield b"x" * blob_bytes
        yield b'"}}'

    json_type = {"content-type": "application/json"}
    response = client.post("/api/queues/t-idle/jobs", content=chunked(1_100_000), headers=json_type)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    response = client.post("/api/queues/t-idle/jobs", content=chunked(10), headers=json_type)
    assert response.status_code == 201, response.text
    assert client.get(f"/api/queues/t-idle/jobs/{response.json()['jobId']}").json()["data"][
        "data"
    ] == {"blob": "x" * 10}


def test_values_json_or_unicode_do_not_allow_are_refused(client, redis_client, queue_prefix):
    """Python's JSON parser accepts NaN, Infinity and lone surrogates; BullMQ and UTF-8
    do not."""
    waiting = redis_client.llen(f"{queue_prefix}:t-idle:wait")
    json_type = {"content-type": "application/json"}
    for path, raw in (
        ("/api/queues/t-idle/jobs", b'{"data": {"a": NaN}}'),
        ("/api/queues/t-idle/jobs", b'{"data": {"a": [1, -Infinity]}}'),
        ("/api/queues/t-idle/jobs/bulk", b'{"jobs": [{"data": {}}, {"data": {"a": Infinity}}]}'),
        # Valid JSON text, but not Unicode: every later read of the job would fail.
        ("/api/queues/t-idle/jobs", b'{"data": {"a": "\\ud800"}}'),
        ("/api/queues/t-idle/jobs", b'{"data": {"\\udfff": 1}}'),
    ):
        body = assert_error(client.post(path, content=raw, headers=json_type), 400,
                            "VALIDATION_ERROR")  # fmt: skip
        assert "NaN or Infinity" in body["error"] or "surrogate" in body["error"]
    assert redis_client.llen(f"{queue_prefix}:t-idle:wait") == waiting
    # A surrogate pair (an emoji) is fine, escaped or not, and reads back.
    for raw in (b'{"data": {"a": "\\ud83d\\ude00"}}', '{"data": {"a": "😀"}}'.encode()):
        response = client.post("/api/queues/t-idle/jobs", content=raw, headers=json_type)
        assert response.status_code == 201, response.text
        job = client.get(f"/api/queues/t-idle/jobs/{response.json()['jobId']}").json()
        assert job["data"]["data"] == {"a": "😀"}


def test_a_lone_surrogate_written_by_another_producer_still_reads(
    client, redis_client, queue_prefix
):
    job_id = add_job(client, "t-idle", {"a": 1})
    # What JSON.stringify in Node writes for a string holding half of a surrogate pair.
    redis_client.hset(f"{queue_prefix}:t-idle:{job_id}", "data",
                      '{"a":"\\uD800x","b":["\\ud83d\\ude00"]}')  # fmt: skip
    job = client.get(f"/api/queues/t-idle/jobs/{job_id}")
    assert job.status_code == 200, job.text
    assert job.json()["data"]["data"] == {"a": "?x", "b": ["😀"]}
    listing = client.get("/api/queues/t-idle/jobs", params={"end": 999})
    assert listing.status_code == 200, listing.text
    assert {"a": "?x", "b": ["😀"]} in [j["data"] for j in listing.json()["data"]]


def test_request_id_is_echoed(client):
    response = client.get("/api/queues/stats", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert len(client.get("/api/queues/stats").headers["x-request-id"]) == 32


def test_bulk_add_is_one_transaction_and_validated(client):
    jobs = [{"data": {"value": i}} for i in range(50)]
    response = client.post("/api/queues/t-basic/jobs/bulk", json={"jobs": jobs})
    assert response.status_code == 201, response.text
    ids = response.json()["jobIds"]
    assert len(set(ids)) == 50
    for job_id in ids[-3:]:
        assert wait_job(client, "t-basic", "completed", job_id)["returnValue"]["doubled"] >= 0
    before = client.get("/api/queues/t-idle/stats").json()["data"]["waiting"]
    mixed = [{"data": {"value": 1}}, {"data": {"value": -1}}]
    assert_error(client.post("/api/queues/t-basic/jobs/bulk", json={"jobs": mixed}), 400,
                 "VALIDATION_ERROR")  # fmt: skip
    assert_error(client.post("/api/queues/t-idle/jobs/bulk", json={"jobs": []}), 400,
                 "VALIDATION_ERROR")  # fmt: skip
    too_many = {"jobs": [{"data": {}}] * 1001}
    assert_error(client.post("/api/queues/t-idle/jobs/bulk", json=too_many), 400,
                 "VALIDATION_ERROR")  # fmt: skip
    assert client.get("/api/queues/t-idle/stats").json()["data"]["waiting"] == before


def test_unreadable_job_data_fails_with_a_reason(client, redis_client, queue_prefix):
    assert client.post("/api/queues/t-basic/pause").status_code == 200
    try:
        bad = add_job(client, "t-basic", {"value": 1})
        redis_client.hset(f"{queue_prefix}:t-basic:{bad}", "data", "{not json")
        good = add_job(client, "t-basic", {"value": 2})
    finally:
        client.post("/api/queues/t-basic/resume")
    failed = wait_job(client, "t-basic", "failed", bad)
    assert "not valid JSON" in failed["failedReason"]
    assert failed["data"] == "{not json", "shown raw, not hidden"
    assert wait_job(client, "t-basic", "completed", good)["returnValue"] == {"doubled": 4}


def test_a_burst_larger_than_the_connection_pool_is_served(server):
    # More requests at once than the API's Redis pool has connections: they wait for one
    # instead of failing with 503.
    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as c:
            adds = [
                c.post("/api/queues/t-idle/jobs", json={"data": {"burst": i}}) for i in range(150)
            ]
            reads = [c.get("/api/queues/stats") for _ in range(150)]
            return [r.status_code for r in await asyncio.gather(*adds, *reads)]

    statuses = asyncio.run(burst())
    assert statuses == [201] * 150 + [200] * 150
