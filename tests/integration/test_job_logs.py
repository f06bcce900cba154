"""Each built-in processor says what it did in its job's log and reports its progress,
read back through the HTTP API."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.integration.helpers import add_job, wait_job
from tests.support.server import KKServer


@pytest.fixture
def client(server: KKServer):
    with server.client as c:
        yield c


def logs_of(client: httpx.Client, queue: str, job_id: str) -> list[str]:
    response = client.get(f"/api/queues/{queue}/jobs/{job_id}/logs")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["count"] == len(data["logs"])
    return data["logs"]


def completed(client: httpx.Client, queue: str, job_id: str) -> dict[str, Any]:
    wait_job(client, queue, "completed", job_id)
    response = client.get(f"/api/queues/{queue}/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_email_job_logs_render_and_smtp_answer(client, smtp):
    body = {"to": "logs@example.com", "subject": "Logged mail", "template": "welcome",
            "data": {"username": "Ada", "activationLink": "https://example.com/a/1"}}  # fmt: skip
    response = client.post("/api/queues/email/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id = response.json()["jobId"]
    job = completed(client, "email", job_id)
    logs = logs_of(client, "email", job_id)
    assert logs[0] == "template 'welcome' rendered for logs@example.com"
    message_id = job["returnValue"]["messageId"]
    # The SMTP server's own answer (aiosmtpd's) follows the message id.
    assert logs[1] == f"SMTP accepted message {message_id}: Message accepted for delivery"
    assert len(logs) == 2
    assert job["progress"] == 100


def test_image_job_logs_source_and_output_with_progress(client, server):
    storage = server.data_dir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (300, 120), "teal").save(storage / "logged.png")
    job_id = add_job(
        client, "image-processing",
        {"source": "logged.png", "output": "out/logged.webp", "width": 150, "format": "webp"},
    )  # fmt: skip
    job = completed(client, "image-processing", job_id)
    logs = logs_of(client, "image-processing", job_id)
    assert logs[0].startswith("image opened: 300x120 PNG ("), logs
    assert logs[1].startswith("output 1/1 written: out/logged.webp 150x60 webp ("), logs
    assert len(logs) == 2
    assert job["progress"] == 100


def test_webhook_job_logs_every_attempt(client, receiver):
    path = "/hooks/logged?token=s3cret"
    receiver.statuses[path] = [503]  # the receiver keys statuses by path and query
    job_id = add_job(
        client, "webhook", {"url": f"{receiver.url}{path}", "payload": {"n": 1}},
        backoff={"type": "fixed", "delay": 100},
    )  # fmt: skip
    job = completed(client, "webhook", job_id)
    logs = logs_of(client, "webhook", job_id)
    url = f"{receiver.url}/hooks/logged"
    assert len(logs) == 2, logs
    assert logs[0].startswith(f"attempt 1: POST {url} answered 503 in ") and logs[0].endswith(" ms")
    assert logs[1].startswith(f"attempt 2: POST {url} answered 200 in ")
    assert not any("s3cret" in line for line in logs), "no query string in the log"
    assert job["progress"] == 100


def test_cleanup_job_logs_sweep_and_trim_per_queue(client, server):
    tmp = server.data_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    old = tmp / "logged-old.bin"
    old.write_bytes(b"x" * 7)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    # A long age: other tests' finished jobs stay; only the log lines matter here.
    job_id = add_job(client, "cleanup", {"olderThanSeconds": 600,
                                         "finishedOlderThanSeconds": 86400})  # fmt: skip
    job = completed(client, "cleanup", job_id)
    logs = logs_of(client, "cleanup", job_id)
    assert logs[0].startswith("temp files older than 600s: scanned "), logs
    swept = re.search(r"removed (\d+) \((\d+) bytes\)", logs[0])
    assert swept and int(swept[1]) >= 1 and int(swept[2]) >= 7, logs[0]
    queues = client.get("/api/queues/stats").json()["data"]
    names = [q["name"] for q in queues]
    trims = logs[1:]
    assert [line.split("'")[1] for line in trims] == names
    assert all(line.endswith("finished jobs") for line in trims)
    assert job["progress"] == 100
    assert not old.exists()
