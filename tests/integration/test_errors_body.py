"""Errors about the body itself: broken JSON says where it breaks, another content type
says to send JSON, and the add route's fast lane answers exactly as the route does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import assert_error

ADD = "/api/queues/t-basic/jobs"
# The fast lane takes application/json; another JSON media type goes straight to the
# route, so each body below is answered once by each path.
LANE = {"content-type": "application/json"}
ROUTE = {"content-type": "application/vnd.kk+json"}


@pytest.fixture
def client(server):
    with server.client as c:
        yield c


def _without_time(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "timestamp"}


def test_broken_json_names_the_line_and_column(client):
    raw = b'{\n  "data": {"value": 1}\n  "name": "x"\n}'
    for headers in (LANE, ROUTE):
        body = assert_error(client.post(ADD, content=raw, headers=headers), 400,
                            "VALIDATION_ERROR")  # fmt: skip
        assert body["error"] == (
            "Invalid request: the body is not valid JSON (line 3, column 3): "
            "Expecting ',' delimiter"
        )
        assert body["details"] == [
            {"field": "", "message": body["error"].removeprefix("Invalid request: "),
             "type": "json_invalid"}
        ]  # fmt: skip
    one_line = client.post(ADD, content=b'{"data": {"value": 1},}', headers=LANE)
    assert "(line 1, column 23)" in assert_error(one_line, 400, "VALIDATION_ERROR")["error"]
    bulk = client.post(f"{ADD}/bulk", content=b'{"jobs": [}', headers=LANE)
    assert "(line 1, column 11)" in assert_error(bulk, 400, "VALIDATION_ERROR")["error"]


def test_a_body_that_is_not_json_is_refused_with_415(client):
    sent = (
        {"data": {"data": "1"}},  # httpx sends a form: application/x-www-form-urlencoded
        {"content": b'{"data": {}}', "headers": {"content-type": "text/plain"}},
        {"content": b'{"data": {}}', "headers": {"content-type": "multipart/form-data; b=x"}},
        {"content": b'{"data": {}}'},  # no content type at all
    )
    for path in (ADD, f"{ADD}/bulk", "/api/queues/email/jobs", "/api/cache/k1"):
        for kwargs in sent:
            method = client.put if path.startswith("/api/cache") else client.post
            body = assert_error(method(path, **kwargs), 415, "UNSUPPORTED_MEDIA_TYPE")
            assert body["error"].startswith("Send the body as application/json (got ")
    form = client.post(ADD, data={"data": "1"}).json()
    assert form["error"] == (
        "Send the body as application/json (got application/x-www-form-urlencoded)"
    )
    # A JSON body with a charset parameter is JSON.
    ok = client.post(ADD, content=b'{"data": {"value": 1}}',
                     headers={"content-type": "application/json; charset=utf-8"})  # fmt: skip
    assert ok.status_code == 201, ok.text


def test_the_fast_lane_and_the_route_give_the_same_answers(client):
    bodies = (
        b'{"data": {"value": 1}, "options": {"delay": -1}}',  # the request model
        b'{"data": {"value": "x"}}',  # the queue's payload model
        b'{"data": {"value": 1}',  # broken JSON
        b"[]",
        b"",
    )
    for raw in bodies:
        lane = client.post(ADD, content=raw, headers=LANE)
        route = client.post(ADD, content=raw, headers=ROUTE)
        assert lane.status_code == route.status_code == 400, (lane.text, route.text)
        assert _without_time(lane.json()) == _without_time(route.json())
        assert lane.json()["details"], lane.text
    data = assert_error(client.post(ADD, content=bodies[1], headers=LANE), 400,
                        "VALIDATION_ERROR")  # fmt: skip
    assert data["details"] == [
        {"field": "data.value", "type": "int_parsing",
         "message": "Input should be a valid integer, unable to parse string as an integer"}
    ]  # fmt: skip
