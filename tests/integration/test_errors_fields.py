"""Validation errors a form can show: `details` names each invalid field as a path
(`options.delay`, `jobs[2].data.value`), and the one-line `error` names the first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.helpers import assert_error

BULK = "/api/queues/t-basic/jobs/bulk"


@pytest.fixture
def client(server):
    with server.client as c:
        yield c


def _fields(body: dict[str, Any]) -> dict[str, str]:
    assert all(set(d) == {"field", "message", "type"} for d in body["details"]), body
    return {d["field"]: d["type"] for d in body["details"]}


def _invalid(response: httpx.Response) -> dict[str, Any]:
    return assert_error(response, 400, "VALIDATION_ERROR")


def test_each_invalid_field_is_named_as_a_path(client):
    body = _invalid(client.post("/api/queues/t-idle/jobs", json={"data": {}, "options": {
        "delay": -1, "attempts": 0, "backoff": {"type": "linear"}}}))  # fmt: skip
    assert _fields(body) == {
        "options.delay": "greater_than_equal",
        "options.attempts": "greater_than_equal",
        "options.backoff.type": "literal_error",
    }
    assert body["error"].startswith("Invalid request: options.delay: ")
    assert body["error"].endswith("(and 2 more)")

    email = _invalid(client.post("/api/queues/email/jobs", json={"to": "nope", "subject": ""}))
    assert _fields(email) == {"to": "value_error", "subject": "string_too_short",
                              "template": "missing"}  # fmt: skip
    assert email["error"].startswith("Invalid request: to: value is not a valid email address")

    query = _invalid(client.get("/api/queues/t-idle/jobs", params={"start": -1, "end": "x"}))
    assert _fields(query) == {"start": "greater_than_equal", "end": "int_parsing"}


def test_a_bulk_add_names_the_job_in_a_list_index(client):
    jobs: list[dict[str, Any]] = [{"data": {"value": 1}}, {"data": {"value": 2}}]
    # The queue's own payload model refuses the third job's data.
    bad_data = _invalid(client.post(BULK,
                                    json={"jobs": [*jobs, {"data": {"value": "x"}}]}))  # fmt: skip
    assert _fields(bad_data) == {"jobs[2].data.value": "int_parsing"}
    assert bad_data["error"].startswith("Invalid job data: jobs[2].data.value: ")
    # The request model refuses its options.
    third = {"options": {"delay": "x"}}
    bad_option = _invalid(client.post(BULK, json={"jobs": [*jobs, third]}))
    assert _fields(bad_option) == {"jobs[2].options.delay": "int_parsing"}
    assert bad_option["error"].startswith("Invalid request: jobs[2].options.delay: ")
    # Nothing of a refused bulk was added.
    listed = client.get("/api/queues/t-basic/jobs", params={"status": "waiting", "end": 999})
    assert all(job["data"].get("value") != 2 for job in listed.json()["data"])


def test_a_single_add_names_the_data_field(client):
    body = _invalid(client.post("/api/queues/t-basic/jobs", json={"data": {"value": -3}}))
    assert _fields(body) == {"data.value": "greater_than_equal"}
    assert body["error"].startswith("Invalid job data: data.value: ")
