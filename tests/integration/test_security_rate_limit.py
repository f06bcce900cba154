"""KK_RATE_LIMIT_PER_MINUTE through the HTTP API: a fixed one-minute window per key in
Redis, 429 RATE_LIMITED with Retry-After once it is used up."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import redis

from kk.config import Settings
from kk.security.session import Keyring
from tests.integration.helpers import assert_error
from tests.support.server import start_server

ADMIN, OTHER = "admin-key-rate-0123456789abcdef01234", "other-admin-key-rate-0123456789abcdef"
SECRET = "rate-limit-test-session-secret-0123456789"
LIMIT = 3


def _fresh_window(need_s: float = 20) -> int:
    """Start at a minute's beginning when less than `need_s` is left of this one, so the
    whole test runs inside one window. Returns that window's number."""
    left = 60 - time.time() % 60
    if left < need_s:
        time.sleep(left + 0.05)
    return int(time.time() // 60)


def _pause(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return http.post("/api/queues/t-idle/pause", headers=headers)


def test_changes_per_key_are_limited_per_minute(tmp_path, server_env, redis_client: redis.Redis):
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkr-{uuid.uuid4().hex[:8]}",
        "KK_API_KEYS": json.dumps([ADMIN, OTHER]),
        "KK_SESSION_SECRET": SECRET,
        "KK_RATE_LIMIT_PER_MINUTE": str(LIMIT),
    }
    with start_server(tmp_path, env) as srv, srv.client as http:
        window = _fresh_window()
        admin = {"X-API-Key": ADMIN}
        for _ in range(LIMIT):
            assert _pause(http, admin).status_code == 200
        limited = _pause(http, admin)
        body = assert_error(limited, 429, "RATE_LIMITED")
        assert str(LIMIT) in body["error"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # Reads are not limited; another key has a bucket of its own.
        assert http.get("/api/queues/t-idle/stats", headers=admin).status_code == 200
        assert _pause(http, {"Authorization": f"Bearer {OTHER}"}).status_code == 200

        # A dashboard session shares the bucket of the key it signed in with.
        login = http.post("/dashboard/login", json={"key": ADMIN})
        assert login.status_code == 200, login.text
        cookie = {"Cookie": login.headers["set-cookie"].split(";", 1)[0]}
        http.cookies.clear()
        session = {**cookie, "X-CSRF-Token": login.json()["data"]["csrfToken"]}
        assert_error(_pause(http, session), 429, "RATE_LIMITED")

        # The counter lives in Redis under kk:ratelimit:, named by a keyed hash, never the key.
        kid = Keyring(Settings(session_secret=SECRET, api_keys=[ADMIN])).key_id(ADMIN)
        counter = f"kk:ratelimit:key:{kid}:{window}"
        assert int(redis_client.get(counter)) == LIMIT + 2
        assert 0 < redis_client.ttl(counter) <= 61
        names = list(redis_client.scan_iter("kk:ratelimit:*", count=1000))
        assert names and not any(ADMIN in n or OTHER in n for n in names)


def test_anonymous_changes_are_limited_per_client_ip(tmp_path, server_env):
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkr-{uuid.uuid4().hex[:8]}",
        "KK_RATE_LIMIT_PER_MINUTE": "2",
    }
    with start_server(tmp_path, env) as srv, srv.client as http:
        _fresh_window()
        assert [_pause(http, {}).status_code for _ in range(2)] == [200, 200]
        assert_error(_pause(http, {}), 429, "RATE_LIMITED")
        assert http.get("/api/queues/stats").status_code == 200


def test_sign_in_attempts_are_limited_per_client_ip(tmp_path, server_env, redis_client):
    limit = 5
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkr-{uuid.uuid4().hex[:8]}",
        "KK_API_KEYS": json.dumps([ADMIN]),
        "KK_RATE_LIMIT_PER_MINUTE": str(limit),
    }
    with start_server(tmp_path, env) as srv, srv.client as http:
        window = _fresh_window()
        # Sign-ins of other tests in this minute count too: the bucket is the client's IP.
        used = int(redis_client.get(f"kk:ratelimit:login:127.0.0.1:{window}") or 0)
        assert used < limit
        codes = [
            http.post("/dashboard/login", json={"key": f"guess-{n}"}).status_code
            for n in range(limit + 2 - used)
        ]
        assert codes == [401] * (limit - used) + [429] * 2
        # Even the right key waits for the next window: guessing gains nothing.
        assert_error(http.post("/dashboard/login", json={"key": ADMIN}), 429, "RATE_LIMITED")
