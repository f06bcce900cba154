"""An image job's paths are judged when it is added: a `..`, an absolute path or a control
character is a 400 naming the field, not a job that fails when it runs."""

from __future__ import annotations

import pytest

from tests.integration.helpers import assert_error

GOOD = {"source": "uploads/photo.jpg", "output": "thumbs/photo.webp", "width": 320}


@pytest.fixture
def client(server):
    with server.client as c:
        yield c


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("output", "../escape.webp", "'..' component"),
        ("output", "/etc/passwd.png", "absolute"),
        ("output", "thumbs/a\nb.webp", "control character"),
        ("source", "uploads/../../secret.jpg", "'..' component"),
        ("source", "uploads/photo.jpg\n2026-01-01 INFO forged", "control character"),
        ("source", "http://example.com/a.jpg\r\nX: 1", "control character"),
    ],
)
def test_bad_paths_are_refused_when_added(client, field, value, why):
    answer = client.post("/api/queues/image-processing/jobs", json={"data": {**GOOD, field: value}})
    body = assert_error(answer, 400, "VALIDATION_ERROR")
    assert f"data.{field}" in body["error"] and why in body["error"], body["error"]


def test_a_good_image_job_is_still_added(client):
    answer = client.post("/api/queues/image-processing/jobs", json={"data": GOOD})
    assert answer.status_code == 201, answer.text
