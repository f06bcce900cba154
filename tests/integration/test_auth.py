"""API keys and roles, checked on every route the OpenAPI document lists."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.integration.helpers import assert_error
from tests.support.server import start_server

ADMIN, READER = "admin-key-0123456789abcdef0123456789", "read-key-0123456789abcdef0123456789"
OPEN_PATHS = {"/health/live", "/health/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect",
              "/redoc", "/dashboard", "/dashboard/", "/dashboard/login", "/dashboard/logout",
              "/dashboard/session"}  # fmt: skip


@pytest.fixture(scope="module")
def locked(tmp_path_factory, server_env):
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kka-{uuid.uuid4().hex[:8]}",  # its adds stay out of other tests
        "KK_API_KEYS": json.dumps([ADMIN]),
        "KK_READ_API_KEYS": json.dumps([READER]),
        # A wrong key is tried on every route: more than the key-guessing limit allows.
        "KK_AUTH_FAILURES_PER_MINUTE": "0",
    }
    with start_server(tmp_path_factory.mktemp("locked"), env) as srv, srv.client as client:
        yield client


def _routes(client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    routes = []
    for path, methods in spec["paths"].items():
        if path in OPEN_PATHS or path.startswith("/dashboard/static"):
            continue
        concrete = re.sub(r"\{queueName\}", "t-idle", path)
        concrete = re.sub(r"\{[^}]+\}", "x1", concrete)
        routes.extend((method.upper(), concrete) for method in methods)
    return routes


def _call(client, method: str, path: str, **kwargs):
    """The answer's status and headers, its body read only when finite: the events stream
    answers 200 and then never ends."""
    with client.stream(method, path, **kwargs) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
        return response


def test_every_route_needs_a_key(locked):
    routes = _routes(locked)
    assert len(routes) >= 10
    for method, path in routes:
        response = locked.request(method, path)
        assert_error(response, 401, "UNAUTHORIZED")
        wrong = locked.request(method, path, headers={"X-API-Key": "nope"})
        assert_error(wrong, 401, "UNAUTHORIZED")


def test_read_keys_read_but_never_write(locked):
    for method, path in _routes(locked):
        response = _call(locked, method, path, headers={"Authorization": f"Bearer {READER}"})
        if method == "GET":
            assert response.status_code not in (401, 403), (method, path, response.text)
        else:
            assert_error(response, 403, "FORBIDDEN")


def test_admin_keys_do_everything(locked):
    headers = {"X-API-Key": ADMIN}
    for method, path in _routes(locked):
        response = _call(locked, method, path, headers=headers)
        assert response.status_code not in (401, 403), (method, path)
    added = locked.post("/api/queues/t-idle/jobs", json={"data": {}}, headers=headers)
    assert added.status_code == 201
    paused = locked.post("/api/queues/t-idle/pause", headers={"Authorization": f"Bearer {ADMIN}"})
    assert paused.status_code == 200
    locked.post("/api/queues/t-idle/resume", headers=headers)


def test_probes_stay_open(locked):
    for path in ("/health/live", "/health/ready"):
        response = locked.get(path)
        assert response.status_code == 200, response.text
