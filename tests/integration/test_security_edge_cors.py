"""CORS with an allow-list (KK_CORS_ORIGINS) through the real HTTP API: preflights for the
methods a path has, no wildcard, no credentials; a cookie session stays same-origin."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.helpers import assert_error
from tests.support.server import KKServer, start_server

KEY = "cors-admin-key-0123456789abcdef012345"
LISTED, UNLISTED = "http://localhost:5173", "http://127.0.0.1:5174"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_env) -> Iterator[KKServer]:
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkc-{uuid.uuid4().hex[:8]}",
        "KK_API_KEY": KEY,
        "KK_CORS_ORIGINS": json.dumps([LISTED, "https://app.example.com"]),
    }
    with start_server(tmp_path_factory.mktemp("cors"), env) as server:
        yield server


@pytest.fixture(scope="module")
def open_srv(tmp_path_factory, server_env) -> Iterator[KKServer]:
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkc-{uuid.uuid4().hex[:8]}",
        "KK_CORS_ORIGINS": json.dumps([LISTED]),
    }
    with start_server(tmp_path_factory.mktemp("cors-open"), env) as server:
        yield server


def _preflight(srv: KKServer, path: str, method: str, origin: str = LISTED) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    return httpx.options(srv.url + path, headers=headers)


@pytest.mark.parametrize(
    ("path", "method", "methods"),
    [
        ("/api/queues/stats", "GET", "GET"),
        ("/api/queues/t-idle/jobs", "POST", "GET, POST"),
        ("/api/queues/t-idle/pause", "POST", "POST"),
        ("/api/cache/some/key", "PUT", "DELETE, GET, PUT"),
    ],
)
def test_a_listed_origin_gets_a_preflight_for_the_paths_methods(srv, path, method, methods):
    answer = _preflight(srv, path, method)
    assert answer.status_code == 204, answer.text
    h = answer.headers
    assert h["access-control-allow-origin"] == LISTED
    assert h["access-control-allow-methods"] == methods
    allowed = {x.strip().lower() for x in h["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-api-key", "content-type", "x-request-id"} <= allowed
    assert "x-csrf-token" not in allowed, "a cookie session is not for other origins"
    assert int(h["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in h
    assert "origin" in h["vary"].lower()


@pytest.mark.parametrize(
    ("path", "method", "origin"),
    [
        ("/api/queues/stats", "DELETE", LISTED),  # a method the path does not have
        ("/api/queues/t-idle/pause", "GET", LISTED),
        ("/api/queues/stats", "GET", UNLISTED),
        ("/api/queues/stats", "GET", "null"),
        ("/api/queues/stats", "GET", "http://localhost:5173.evil.example"),
        ("/dashboard/login", "POST", LISTED),  # outside /api
    ],
)
def test_other_preflights_are_refused(srv, path, method, origin):
    answer = _preflight(srv, path, method, origin)
    assert_error(answer, 403, "FORBIDDEN")
    assert not any(h.startswith("access-control-") for h in answer.headers)


def test_answers_to_a_listed_origin_carry_cors_headers(srv):
    with srv.client as http:
        key = {"X-API-Key": KEY}
        ok = http.get("/api/queues/stats", headers={**key, "Origin": LISTED})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == LISTED
        exposed = {
            x.strip().lower() for x in ok.headers["access-control-expose-headers"].split(",")
        }
        assert exposed == {"retry-after", "x-request-id"}
        assert "origin" in ok.headers["vary"].lower()
        assert "access-control-allow-credentials" not in ok.headers
        # Errors too, so the page can read why.
        denied = http.get("/api/queues/stats", headers={"Origin": LISTED})
        assert_error(denied, 401, "UNAUTHORIZED")
        assert denied.headers["access-control-allow-origin"] == LISTED
        added = http.post(
            "/api/queues/t-idle/jobs", json={"data": {}}, headers={**key, "Origin": LISTED}
        )
        assert added.status_code == 201 and added.headers["access-control-allow-origin"] == LISTED
        # An unlisted origin gets no CORS headers: its page cannot read the answer.
        other = http.get("/api/queues/stats", headers={**key, "Origin": UNLISTED})
        assert "access-control-allow-origin" not in other.headers
        assert "origin" in other.headers["vary"].lower()


def test_a_cookie_session_from_a_listed_origin_cannot_change_anything(srv):
    with srv.client as http:
        login = http.post("/dashboard/login", json={"key": KEY})
        assert login.status_code == 200, login.text
        http.cookies.clear()
        session = {
            "Cookie": login.headers["set-cookie"].split(";", 1)[0],
            "X-CSRF-Token": login.json()["data"]["csrfToken"],
        }
        refused = http.post("/api/queues/t-idle/pause", headers={**session, "Origin": LISTED})
        assert_error(refused, 403, "FORBIDDEN")
        stats = http.get("/api/queues/t-idle/stats", headers={"X-API-Key": KEY})
        assert stats.json()["data"]["paused"] is False
        # Its reads carry no Allow-Credentials, so a browser keeps them from the page.
        read = http.get("/api/queues/stats", headers={**session, "Origin": LISTED})
        assert "access-control-allow-credentials" not in read.headers


def test_open_mode_lets_a_listed_origin_change_and_nobody_else(open_srv):
    with open_srv.client as http:
        refused = http.post("/api/queues/t-idle/pause", headers={"Origin": UNLISTED})
        assert_error(refused, 403, "FORBIDDEN")
        assert http.get("/api/queues/t-idle/stats").json()["data"]["paused"] is False
        allowed = http.post("/api/queues/t-idle/pause", headers={"Origin": LISTED})
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == LISTED
        assert http.post("/api/queues/t-idle/resume").status_code == 200
