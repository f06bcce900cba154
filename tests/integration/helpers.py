"""Small helpers for tests that drive the HTTP API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.server import wait_for


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error envelope, with the expected status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert body["timestamp"].endswith("Z")
    assert body["path"] == response.request.url.path
    assert "Traceback" not in response.text
    return body


def add_job(client: httpx.Client, queue: str, data: dict[str, Any], **options: Any) -> str:
    body: dict[str, Any] = {"data": data}
    if options:
        body["options"] = options
    response = client.post(f"/api/queues/{queue}/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["jobId"]


def job_in(client: httpx.Client, queue: str, status: str, job_id: str) -> dict[str, Any] | None:
    response = client.get(f"/api/queues/{queue}/jobs", params={"status": status, "end": 999})
    assert response.status_code == 200, response.text
    return next((j for j in response.json()["data"] if j["id"] == job_id), None)


def wait_job(
    client: httpx.Client, queue: str, status: str, job_id: str, timeout: float = 20
) -> dict[str, Any]:
    return wait_for(
        lambda: job_in(client, queue, status, job_id),
        timeout=timeout,
        what=f"job {job_id} of {queue} to be {status}",
    )
