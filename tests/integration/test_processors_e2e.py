"""The built-in processors doing real work, driven through the HTTP API."""

from __future__ import annotations

import os
import time

import pytest
from PIL import Image

from kk.processors.webhook import verify
from tests.integration.helpers import add_job, assert_error, wait_job
from tests.support.server import KKServer, wait_for


@pytest.fixture
def client(server: KKServer):
    with server.client as c:
        yield c


def test_email_is_rendered_and_delivered_over_smtp(client, smtp):
    body = {
        "type": "send-email",
        "to": "user@example.com",
        "subject": "Welcome to our platform",
        "template": "welcome",
        "data": {"username": "John <b>Doe</b>", "activationLink": "https://example.com/a/123"},
    }
    response = client.post("/api/queues/email/jobs", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["success"] is True and answer["jobId"] and answer["message"]
    job = wait_job(client, "email", "completed", answer["jobId"])
    assert job["name"] == "send-email"

    message = wait_for(
        lambda: next((m for m in smtp.messages if m["Subject"] == body["subject"]), None),
        what="the email at the SMTP server",
    )
    assert message["To"] == "user@example.com"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in message.walk()
             if not p.is_multipart()}  # fmt: skip
    assert "https://example.com/a/123" in parts["text/html"]
    assert "John &lt;b&gt;Doe&lt;/b&gt;" in parts["text/html"], "HTML is autoescaped"
    assert "John <b>Doe</b>" in parts["text/plain"]


def test_email_bodies_are_validated(client):
    good = {"to": "a@example.com", "subject": "Hi", "template": "welcome", "data": {}}
    for change in ({"to": "not-an-address"}, {"template": "no-such-template"},
                   {"subject": "a\r\nBcc: evil@example.com"}, {"type": "other"},
                   {"subject": ""}):  # fmt: skip
        response = client.post("/api/queues/email/jobs", json={**good, **change})
        assert_error(response, 400, "VALIDATION_ERROR")


def test_image_is_really_resized(client, server):
    storage = server.data_dir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 200), "orange").save(storage / "photo.png")
    job_id = add_job(
        client,
        "image-processing",
        {"source": "photo.png", "output": "thumbs/photo-100.png", "operation": "resize",
         "width": 100},
    )  # fmt: skip
    job = wait_job(client, "image-processing", "completed", job_id)
    assert job["returnValue"]["width"] == 100
    with Image.open(storage / "thumbs" / "photo-100.png") as out:
        assert out.size == (100, 50)


def test_image_paths_stay_inside_storage(client):
    # Refused when added (a symlink out of the root is refused when the job runs: unit tests).
    answer = client.post(
        "/api/queues/image-processing/jobs",
        json={"data": {"source": "../../etc/passwd", "output": "x.png", "width": 10}},
    )
    assert answer.status_code == 400 and "data.source" in answer.json()["error"]


def test_webhook_is_delivered_with_a_signature_that_verifies(client, receiver):
    payload = {"order": 42, "status": "paid"}
    job_id = add_job(
        client, "webhook", {"url": f"{receiver.url}/hooks/orders", "payload": payload,
                            "event": "order.paid"}
    )  # fmt: skip
    wait_job(client, "webhook", "completed", job_id)
    request = receiver.received("/hooks/orders")[-1]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert request.json() == payload
    assert headers["x-kk-event"] == "order.paid"
    assert headers["idempotency-key"] == f"webhook-{job_id}"
    assert verify(
        "test-webhook-secret", headers["x-kk-timestamp"], request.body, headers["x-kk-signature"]
    )
    assert not verify("wrong", headers["x-kk-timestamp"], request.body, headers["x-kk-signature"])


def test_webhook_retries_on_server_errors(client, receiver):
    receiver.statuses["/hooks/flaky"] = [503]
    job_id = add_job(
        client, "webhook", {"url": f"{receiver.url}/hooks/flaky", "payload": {"n": 1}},
        backoff={"type": "fixed", "delay": 100},
    )  # fmt: skip
    job = wait_job(client, "webhook", "completed", job_id)
    assert job["attempts"] == 2
    assert len(receiver.received("/hooks/flaky")) == 2


def test_cleanup_removes_old_temp_files_and_keeps_new_ones(client, server):
    tmp = server.data_dir / "tmp"
    (tmp / "sub").mkdir(parents=True, exist_ok=True)
    old, new = tmp / "sub" / "old.bin", tmp / "new.bin"
    old.write_bytes(b"o" * 10)
    new.write_bytes(b"n" * 10)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    job_id = add_job(client, "cleanup", {"olderThanSeconds": 3600, "trimFinishedJobs": False})
    job = wait_job(client, "cleanup", "completed", job_id)
    assert job["returnValue"]["removedFiles"] == 1
    assert not old.exists()
    assert new.exists()
