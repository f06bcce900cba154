"""Dashboard sign-in through the HTTP API: the session cookie, its CSRF token, the Origin
check, and header keys left exactly as they were."""

from __future__ import annotations

import json
import stat
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from kk.config import Settings
from kk.security.session import Keyring
from tests.integration.helpers import assert_error
from tests.support.server import KKServer, start_server

ADMIN, READER = "admin-key-session-0123456789abcdef0", "read-key-session-0123456789abcdef01"
QUEUE = "t-idle"


@pytest.fixture(scope="module")
def locked(tmp_path_factory, server_env) -> Iterator[KKServer]:
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kks-{uuid.uuid4().hex[:8]}",
        "KK_API_KEYS": json.dumps([ADMIN]),
        "KK_READ_API_KEYS": json.dumps([READER]),
        "KK_TRUSTED_PROXIES": json.dumps(["127.0.0.1"]),  # stands in for a TLS proxy
    }
    with start_server(tmp_path_factory.mktemp("session"), env) as srv:
        yield srv


@pytest.fixture
def http(locked: KKServer) -> Iterator[httpx.Client]:
    with locked.client as client:
        yield client


def _login(http: httpx.Client, key: str) -> tuple[str, dict]:
    response = http.post("/dashboard/login", json={"key": key})
    assert response.status_code == 200, response.text
    http.cookies.clear()  # every test sends the cookie it means to, explicitly
    cookie = response.headers["set-cookie"]
    return cookie.split(";", 1)[0].split("=", 1)[1], response.json()["data"]


def _as(token: str, csrf: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Cookie": f"kk_session={token}", **extra}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    return headers


def _paused(http: httpx.Client) -> bool:
    stats = http.get(f"/api/queues/{QUEUE}/stats", headers={"X-API-Key": ADMIN})
    return stats.json()["data"]["paused"]


def _keyring(locked: KKServer) -> Keyring:
    settings = Settings(data_dir=locked.data_dir, api_keys=[ADMIN], read_api_keys=[READER])
    return Keyring(settings)


def test_login_sets_a_strict_http_only_cookie(http, locked):
    response = http.post("/dashboard/login", json={"key": ADMIN})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["role"] == "admin" and data["authEnabled"] is True and len(data["csrfToken"]) > 20
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert attributes[0].startswith("kk_session=")
    assert {"httponly", "samesite=strict", "path=/", "max-age=43200"} <= set(attributes)
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert ADMIN not in response.headers["set-cookie"]
    secret = locked.data_dir / "session.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text()) >= 32


def test_a_form_login_and_the_session_route(http):
    response = http.post("/dashboard/login", data={"key": READER})
    assert response.status_code == 200, response.text
    token = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    http.cookies.clear()
    session = http.get("/dashboard/session", headers=_as(token))
    assert session.status_code == 200, session.text
    assert session.json()["data"]["role"] == "read"
    assert session.json()["data"]["csrfToken"] == response.json()["data"]["csrfToken"]
    assert_error(http.get("/dashboard/session"), 401, "UNAUTHORIZED")


def test_wrong_or_missing_keys_are_refused(http):
    assert_error(http.post("/dashboard/login", json={"key": "nope"}), 401, "UNAUTHORIZED")
    assert_error(http.post("/dashboard/login", json={"key": ""}), 400, "VALIDATION_ERROR")
    assert_error(http.post("/dashboard/login", json=["x"]), 400, "VALIDATION_ERROR")
    assert_error(http.post("/dashboard/login", content=b"{", headers={
        "Content-Type": "application/json"}), 400, "VALIDATION_ERROR")  # fmt: skip
    plain = http.post("/dashboard/login", content=ADMIN, headers={"Content-Type": "text/plain"})
    assert_error(plain, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "set-cookie" not in plain.headers


def test_the_cookie_reads_but_changes_need_the_csrf_token(http):
    token, data = _login(http, ADMIN)
    assert http.get("/api/queues/stats", headers=_as(token)).status_code == 200
    missing = assert_error(http.post(f"/api/queues/{QUEUE}/pause", headers=_as(token)), 403,
                           "FORBIDDEN")  # fmt: skip
    assert "X-CSRF-Token" in missing["error"]
    wrong = http.post(f"/api/queues/{QUEUE}/pause", headers=_as(token, data["csrfToken"] + "x"))
    assert_error(wrong, 403, "FORBIDDEN")
    other_token, _ = _login(http, ADMIN)  # another session's token is not this one's
    crossed = http.post(f"/api/queues/{QUEUE}/pause", headers=_as(other_token, data["csrfToken"]))
    assert_error(crossed, 403, "FORBIDDEN")
    assert_error(http.delete(f"/api/queues/{QUEUE}/jobs/x1", headers=_as(token)), 403, "FORBIDDEN")
    assert_error(http.put("/api/cache/k1", json={"value": 1}, headers=_as(token)), 403,
                 "FORBIDDEN")  # fmt: skip
    assert _paused(http) is False

    ok = http.post(f"/api/queues/{QUEUE}/pause", headers=_as(token, data["csrfToken"]))
    assert ok.status_code == 200, ok.text
    assert _paused(http) is True
    http.post(f"/api/queues/{QUEUE}/resume", headers=_as(token, data["csrfToken"]))
    assert _paused(http) is False


def test_a_foreign_origin_is_refused_even_with_the_token(http, locked):
    token, data = _login(http, ADMIN)
    for origin in ("http://evil.example", "null", f"{locked.url}.evil.example"):
        headers = _as(token, data["csrfToken"], Origin=origin)
        refused = assert_error(http.post(f"/api/queues/{QUEUE}/pause", headers=headers), 403,
                               "FORBIDDEN")  # fmt: skip
        assert "Cross-site" in refused["error"]
    assert _paused(http) is False
    same = http.post(f"/api/queues/{QUEUE}/pause", headers=_as(token, data["csrfToken"],
                                                                 Origin=locked.url))  # fmt: skip
    assert same.status_code == 200, same.text
    http.post(f"/api/queues/{QUEUE}/resume", headers={"X-API-Key": ADMIN})
    evil = {"Origin": "http://evil.example"}
    login = http.post("/dashboard/login", json={"key": ADMIN}, headers=evil)
    assert_error(login, 403, "FORBIDDEN")


def test_a_read_session_may_not_change_anything(http):
    token, data = _login(http, READER)
    assert http.get(f"/api/queues/{QUEUE}/jobs", headers=_as(token)).status_code == 200
    refused = http.post(f"/api/queues/{QUEUE}/pause", headers=_as(token, data["csrfToken"]))
    assert_error(refused, 403, "FORBIDDEN")
    assert _paused(http) is False


def test_header_keys_need_no_csrf_token_and_no_origin_check(http):
    headers = {"X-API-Key": ADMIN, "Origin": "http://evil.example"}
    assert http.post(f"/api/queues/{QUEUE}/pause", headers=headers).status_code == 200
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    assert http.post(f"/api/queues/{QUEUE}/resume", headers=bearer).status_code == 200
    token, data = _login(http, ADMIN)
    # A wrong header key is not rescued by a valid cookie.
    wrong = http.get("/api/queues/stats", headers=_as(token, data["csrfToken"], **{
        "X-API-Key": "nope"}))  # fmt: skip
    assert_error(wrong, 401, "UNAUTHORIZED")


def test_forged_expired_and_orphaned_sessions_are_refused(http, locked):
    ring = _keyring(locked)
    good, _ = ring.issue("admin", ADMIN, 60)
    assert http.get("/dashboard/session", headers=_as(good)).status_code == 200
    read_token, _ = ring.issue("read", READER, 60)
    forged = read_token.replace("v1.read.", "v1.admin.", 1)  # role changed, signature kept
    expired, _ = ring.issue("admin", ADMIN, -1)
    orphan, _ = ring.issue("admin", "a-key-that-is-not-configured", 60)
    foreign, _ = Keyring(Settings(data_dir=locked.data_dir, session_secret="x" * 32,
                                  api_keys=[ADMIN])).issue("admin", ADMIN, 60)  # fmt: skip
    for token in (forged, expired, orphan, foreign, "garbage", good + "x"):
        assert_error(http.get("/dashboard/session", headers=_as(token)), 401, "UNAUTHORIZED")
        assert_error(http.get("/api/queues/stats", headers=_as(token)), 401, "UNAUTHORIZED")


def test_logout_clears_the_cookie(http):
    token, _ = _login(http, ADMIN)
    response = http.post("/dashboard/logout", headers=_as(token))
    assert response.status_code == 200 and response.json()["success"] is True
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert attributes[0] in ('kk_session=""', "kk_session=")
    assert "max-age=0" in attributes and "httponly" in attributes


def test_without_keys_the_dashboard_needs_no_sign_in(server: KKServer):
    with server.client as http:
        session = http.get("/dashboard/session")
        assert session.status_code == 200, session.text
        expected = {"role": "admin", "csrfToken": None, "authEnabled": False, "expiresAt": None}
        assert session.json()["data"] == expected
        # Still, a browser on another site may not drive the open service.
        cross = http.post(f"/api/queues/{QUEUE}/pause", headers={"Origin": "http://evil.example"})
        assert_error(cross, 403, "FORBIDDEN")
        assert http.get(f"/api/queues/{QUEUE}/stats").json()["data"]["paused"] is False


def test_over_https_the_cookie_is_secure(http):
    # X-Forwarded-Proto from a trusted proxy (KK_TRUSTED_PROXIES), as from a TLS one.
    response = http.post(
        "/dashboard/login", json={"key": ADMIN}, headers={"X-Forwarded-Proto": "https"}
    )
    assert response.status_code == 200, response.text
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert "secure" in attributes and "httponly" in attributes


def test_an_event_stream_opened_with_a_session_ends_at_logout(locked):
    with httpx.Client(base_url=locked.url, timeout=30) as http:
        token, data = _login(http, READER)
        header_stream = httpx.Client(base_url=locked.url, timeout=30)
        with (
            http.stream("GET", f"/api/queues/{QUEUE}/events", headers=_as(token)) as stream,
            header_stream.stream(
                "GET", f"/api/queues/{QUEUE}/events", headers={"X-API-Key": READER}
            ) as by_key,
        ):
            assert stream.status_code == 200 and by_key.status_code == 200
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            signed_out = http.post(
                "/dashboard/logout", headers=_as(token, data["csrfToken"], Origin=locked.url)
            )
            assert signed_out.status_code == 200, signed_out.text
            started = time.monotonic()
            for _ in lines:  # keep-alives until the server ends the stream
                assert time.monotonic() - started < 15, "the stream outlived the session"
            assert time.monotonic() - started < 12
            # A stream opened with a header key is not a session's: it goes on.
            key_lines = by_key.iter_lines()
            assert next(key_lines) == ": connected"
        header_stream.close()
