"""`POST /api/queues/{q}/jobs` is served by two paths: the fast lane (`kk.queues.hot_add`,
for `application/json`) and FastAPI's route (any other JSON type, e.g. `+json`, which the
lane declines). Both must enforce the same edge and auth rules."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.helpers import assert_error
from tests.support.server import KKServer, start_server

ADMIN = "add-paths-admin-key-0123456789abcdef"
READER = "add-paths-read-key-0123456789abcdefg"
QUEUE = "t-idle"
# The lane takes application/json (parameters allowed); FastAPI parses any +json type.
PATHS = {"lane": "application/json; charset=utf-8", "fastapi": "application/vnd.kk+json"}
AUTH_LIMIT = 5
RATE_LIMIT = 4


def _fresh_window(need_s: float = 15) -> None:
    left = 60 - time.time() % 60
    if left < need_s:
        time.sleep(left + 0.05)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, server_env) -> Iterator[KKServer]:
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkp-{uuid.uuid4().hex[:8]}",
        "KK_API_KEYS": json.dumps([ADMIN]),
        "KK_READ_API_KEYS": json.dumps([READER]),
        "KK_ALLOWED_HOSTS": json.dumps(["kk.example.com"]),
        "KK_TRUSTED_PROXIES": json.dumps(["127.0.0.1"]),  # lets each test be its own client
        "KK_AUTH_FAILURES_PER_MINUTE": str(AUTH_LIMIT),
        "KK_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
    }
    with start_server(tmp_path_factory.mktemp("add-paths"), env) as server:
        yield server


def _add(http: httpx.Client, path: str, client: str, **headers: str) -> httpx.Response:
    body = json.dumps({"data": {"n": 1}}).encode()
    sent = {"Content-Type": PATHS[path], "X-Forwarded-For": client, **headers}
    return http.post(f"/api/queues/{QUEUE}/jobs", content=body, headers=sent)


def _waiting(http: httpx.Client) -> int:
    stats = http.get(f"/api/queues/{QUEUE}/stats", headers={"X-API-Key": ADMIN})
    return stats.json()["data"]["waiting"]


def _client() -> str:
    return f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def test_both_paths_add_with_the_admin_key(srv):
    # The lane answers without routing, so the metrics label alone cannot tell them apart;
    # both must work the same for a valid add.
    with srv.client as http:
        for path in PATHS:
            added = _add(http, path, _client(), **{"X-API-Key": ADMIN})
            assert added.status_code == 201, (path, added.text)


@pytest.mark.parametrize("path", PATHS)
def test_no_wrong_or_read_key_is_refused(srv, path):
    with srv.client as http:
        before = _waiting(http)
        assert_error(_add(http, path, _client()), 401, "UNAUTHORIZED")
        assert_error(_add(http, path, _client(), **{"X-API-Key": "w" * 40}), 401, "UNAUTHORIZED")
        assert_error(_add(http, path, _client(), **{"X-API-Key": READER}), 403, "FORBIDDEN")
        assert_error(
            _add(http, path, _client(), Authorization=f"Bearer {READER}"), 403, "FORBIDDEN"
        )
        assert _waiting(http) == before


@pytest.mark.parametrize("path", PATHS)
def test_the_host_check_covers_the_path(srv, path):
    with srv.client as http:
        before = _waiting(http)
        refused = _add(
            http, path, _client(), Host="rebind.attacker.example", **{"X-API-Key": ADMIN}
        )
        assert_error(refused, 421, "MISDIRECTED_REQUEST")
        assert _waiting(http) == before
        listed = _add(http, path, _client(), Host="kk.example.com", **{"X-API-Key": ADMIN})
        assert listed.status_code == 201, listed.text


@pytest.mark.parametrize("path", PATHS)
def test_wrong_keys_lock_the_client_out_of_the_path(srv, path):
    _fresh_window()
    client = _client()
    with srv.client as http:
        codes = [
            _add(http, path, client, **{"X-API-Key": f"guess-{n:040d}"}).status_code
            for n in range(AUTH_LIMIT + 2)
        ]
        assert codes == [401] * AUTH_LIMIT + [429] * 2
        locked = _add(http, path, client, **{"X-API-Key": ADMIN})
        assert_error(locked, 429, "RATE_LIMITED")
        assert 1 <= int(locked.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("path", PATHS)
def test_the_rate_limit_covers_the_path(tmp_path, server_env, path):
    # A server of its own: the admin key's bucket is shared by every add of the module.
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkp-{uuid.uuid4().hex[:8]}",
        "KK_API_KEYS": json.dumps([ADMIN]),
        "KK_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
    }
    with start_server(tmp_path, env) as server, server.client as http:
        _fresh_window()
        codes = [
            _add(http, path, "", **{"X-API-Key": ADMIN}).status_code for _ in range(RATE_LIMIT + 1)
        ]
        assert codes == [201] * RATE_LIMIT + [429]
        limited = _add(http, path, "", **{"X-API-Key": ADMIN})
        assert_error(limited, 429, "RATE_LIMITED")
        assert "Retry-After" in limited.headers
