"""Job data contracts through the real API: strict, published job data models; email
templates that declare their variables; a repeated `jobId` answered as a duplicate; a
webhook URL that can never pass the SSRF guard refused when added."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bullmq import Queue

from tests.integration.helpers import add_job, assert_error, wait_job
from tests.support.server import KKServer, start_server

ADMIN = "contracts-admin-key-0123456789abcdef"
READER = "contracts-read-key-0123456789abcdef"


@pytest.fixture
def client(server: KKServer) -> Iterator[httpx.Client]:
    with server.client as c:
        yield c


@pytest.fixture(scope="module")
def keyed(server_env, tmp_path_factory) -> Iterator[KKServer]:
    """API keys on, no workers: examples can be added without anything running them."""
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkc-{uuid.uuid4().hex[:8]}",
        "KK_API_KEYS": json.dumps([ADMIN]),
        "KK_READ_API_KEYS": json.dumps([READER]),
    }
    with start_server(tmp_path_factory.mktemp("contracts"), env, ["--no-workers"]) as srv:
        yield srv


def other_producer_adds(redis_url: str, prefix: str, queue: str, data: dict[str, Any]) -> str:
    """A job written straight to Redis with bullmq, as a Node or Python producer would."""

    async def add() -> str:
        q = Queue(queue, {"connection": redis_url, "prefix": prefix})
        try:
            job = await q.add("from-elsewhere", data, {"attempts": 3})
            return str(job.id)
        finally:
            await q.close()

    return asyncio.run(add())


# -- strict job data ------------------------------------------------------------------------

UNKNOWN_FIELD = {
    "cleanup": {"dryrun": True},  # the typo of `dryRun` that once ran a real cleanup
    "image-processing": {"source": "a.png", "output": "b.png", "width": 10, "widht": 5},
    "webhook": {"url": "https://example.com/h", "paylaod": {"x": 1}},
    "t-basic": {"value": 1, "valeu": 2},  # a queue configured with a `payload` model
}


@pytest.mark.parametrize("queue", sorted(UNKNOWN_FIELD))
def test_unknown_job_data_fields_are_refused_naming_the_field(client, queue):
    data = UNKNOWN_FIELD[queue]
    field = next(k for k in data if k not in {"value", "source", "output", "width", "url"})
    # The fast lane (a well-formed generic body) and the routes behind it.
    r = client.post(f"/api/queues/{queue}/jobs", json={"data": data})
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert f"data.{field}" in body["error"], body
    # A body the fast lane hands on (an unknown option too) reaches the documented route.
    r = client.post(f"/api/queues/{queue}/jobs", json={"data": data, "options": {"x": 1}})
    assert_error(r, 400, "VALIDATION_ERROR")
    r = client.post(f"/api/queues/{queue}/jobs/bulk", json={"jobs": [{"data": data}]})
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert f"jobs[0].data.{field}" in body["error"], body


def test_unknown_email_fields_are_refused(client):
    good = {"to": "a@example.com", "subject": "Hi", "template": "notification"}
    r = client.post("/api/queues/email/jobs", json={**good, "cc": "b@example.com"})
    assert_error(r, 400, "VALIDATION_ERROR")
    r = client.post("/api/queues/email/jobs/bulk", json={"jobs": [{"data": {**good, "bcc": 1}}]})
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert "jobs[0].data.bcc" in body["error"]


@pytest.mark.parametrize(
    ("queue", "data", "field"),
    [("cleanup", {"dryrun": True}, "dryrun"), ("t-basic", {"value": 1, "bogus": 2}, "bogus")],
)
def test_jobs_other_producers_wrote_with_unknown_fields_fail_for_good(
    client, redis_url, queue_prefix, queue, data, field
):
    job_id = other_producer_adds(redis_url, queue_prefix, queue, data)
    failed = wait_job(client, queue, "failed", job_id)
    assert field in failed["failedReason"] and "invalid job data" in failed["failedReason"]
    assert failed["attempts"] == 1, "unrecoverable: not retried although 3 attempts were allowed"


def test_each_builtin_queue_publishes_its_data_model_with_a_working_example(keyed):
    headers = {"X-API-Key": ADMIN}
    with keyed.client as c:
        doc = c.get("/openapi.json").json()
        schemas = doc["components"]["schemas"]
        for model in ("CleanupJobData", "ImageJobData", "WebhookJobData", "AddEmailJob"):
            assert model in schemas, model
        assert schemas["CleanupJobData"]["additionalProperties"] is False
        for queue in ("cleanup", "image-processing", "webhook", "email"):
            content = doc["paths"][f"/api/queues/{queue}/jobs"]["post"]["requestBody"]["content"]
            media = content["application/json"]
            example = next(iter(media["examples"].values()))["value"]
            r = c.post(f"/api/queues/{queue}/jobs", json=example, headers=headers)
            assert r.status_code == 201, (queue, r.text)
        # The generic route still takes any queue's jobs.
        r = c.post("/api/queues/t-idle/jobs", json={"data": {"free": "form"}}, headers=headers)
        assert r.status_code == 201, r.text


# -- email templates ---------------------------------------------------------------------------


def test_email_templates_list_their_variables_for_a_read_key(keyed):
    with keyed.client as c:
        r = c.get("/api/queues/email/templates", headers={"X-API-Key": READER})
        assert r.status_code == 200, r.text
        templates = {t["name"]: t for t in r.json()["data"]}
        assert set(templates) >= {"welcome", "password-reset", "notification"}
        required = {v["name"] for v in templates["welcome"]["required"]}
        assert required == {"username", "activationLink"}
        assert_error(c.get("/api/queues/email/templates"), 401, "UNAUTHORIZED")


def test_a_missing_required_template_variable_is_refused(client):
    mail = {"to": "a@example.com", "subject": "Hi", "template": "welcome",
            "data": {"username": "Ada"}}  # fmt: skip
    body = assert_error(client.post("/api/queues/email/jobs", json=mail), 400, "VALIDATION_ERROR")
    assert "data.activationLink" in body["error"]
    mail["data"]["activationLink"] = "  "
    assert_error(client.post("/api/queues/email/jobs", json=mail), 400, "VALIDATION_ERROR")
    r = client.post("/api/queues/email/jobs/bulk", json={"jobs": [{"data": mail}]})
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert "jobs[0].data.data.activationLink" in body["error"]
    mail["data"]["activationLink"] = "https://example.com/activate/1"
    assert client.post("/api/queues/email/jobs", json=mail).status_code == 201


# -- duplicate job ids -------------------------------------------------------------------------


def test_a_repeated_job_id_is_a_duplicate_not_a_new_job(client):
    job_id = f"order-{uuid.uuid4().hex[:8]}"
    first = client.post(
        "/api/queues/t-idle/jobs", json={"data": {"v": 1}, "options": {"jobId": job_id}}
    )
    assert first.status_code == 201, first.text
    assert first.json()["jobId"] == job_id and first.json()["duplicate"] is False
    again = client.post(
        "/api/queues/t-idle/jobs", json={"data": {"v": 2}, "options": {"jobId": job_id}}
    )
    assert again.status_code == 200, again.text
    answer = again.json()
    assert answer["success"] is True and answer["jobId"] == job_id and answer["message"]
    assert answer["duplicate"] is True and answer["state"] == "waiting"
    stored = client.get(f"/api/queues/t-idle/jobs/{job_id}").json()["data"]
    assert stored["data"] == {"v": 1}, "the existing job is kept as it was"


def test_duplicates_in_bulk_adds_are_reported(client):
    taken = add_job(client, "t-idle", {"v": 1}, jobId=f"b-{uuid.uuid4().hex[:8]}")
    fresh = f"b-{uuid.uuid4().hex[:8]}"
    jobs = [{"data": {"v": 2}, "options": {"jobId": taken}},
            {"data": {"v": 3}, "options": {"jobId": fresh}},
            {"data": {"v": 4}, "options": {"jobId": fresh}},
            {"data": {"v": 5}}]  # fmt: skip
    r = client.post("/api/queues/t-idle/jobs/bulk", json={"jobs": jobs})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["jobIds"][:3] == [taken, fresh, fresh]
    assert [d["jobId"] for d in answer["duplicates"]] == [taken, fresh]
    assert all(d["state"] == "waiting" for d in answer["duplicates"])
    again = client.post("/api/queues/t-idle/jobs/bulk", json={"jobs": jobs[:2]})
    assert again.status_code == 200, again.text
    assert len(again.json()["duplicates"]) == 2


def test_a_repeated_email_job_id_is_a_duplicate(client):
    job_id = f"mail-{uuid.uuid4().hex[:8]}"
    mail = {"to": "a@example.com", "subject": "Hi", "template": "notification",
            "data": {"body": "x"}, "options": {"jobId": job_id}}  # fmt: skip
    assert client.post("/api/queues/email/jobs", json=mail).status_code == 201
    wait_job(client, "email", "completed", job_id)
    again = client.post("/api/queues/email/jobs", json=mail)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True and again.json()["state"] == "completed"


# -- webhooks that can never be delivered -----------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://[::1]:9/"]
)
def test_a_webhook_to_a_private_address_is_refused_when_added(client, url):
    r = client.post("/api/queues/webhook/jobs", json={"data": {"url": url}})
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert "data.url" in body["error"] and "KK_SSRF_ALLOW" in body["error"]
    r = client.post("/api/queues/webhook/jobs/bulk", json={"jobs": [{"data": {"url": url}}]})
    assert "jobs[0].data.url" in assert_error(r, 400, "VALIDATION_ERROR")["error"]


def test_an_allowed_private_address_is_accepted(client, receiver):
    # The suite's servers allow 127.0.0.1 (KK_SSRF_ALLOW), where the receiver listens.
    job_id = add_job(
        client,
        "webhook",
        {"url": f"http://127.0.0.1:{receiver.port}/contracts", "payload": {"a": 1}},
    )
    wait_job(client, "webhook", "completed", job_id)
