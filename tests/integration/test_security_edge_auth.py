"""Key guessing, weak keys, sign-out and hostile input through the real HTTP API and CLI:
wrong keys are limited per client IP (X-Forwarded-For believed only from trusted proxies),
short keys stop `kk serve`, a signed-out session is dead server-side, and neither a lone
surrogate nor a control character in a path gets past the edge."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.helpers import assert_error
from tests.support.server import ROOT, KKServer, start_server

ADMIN = "edge-auth-admin-key-0123456789abcdef"
READER = "edge-auth-read-key-0123456789abcdefg"
LIMIT = 20  # the default of KK_AUTH_FAILURES_PER_MINUTE


def _fresh_window(need_s: float = 15) -> None:
    """Wait for the next minute when less than `need_s` is left of this one: the counts
    live in one-minute windows and each test must run inside one."""
    left = 60 - time.time() % 60
    if left < need_s:
        time.sleep(left + 0.05)


def _env(server_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkg-{uuid.uuid4().hex[:8]}",  # its own counters and queues
        "KK_API_KEYS": json.dumps([ADMIN]),
        "KK_READ_API_KEYS": json.dumps([READER]),
        **extra,
    }


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory, server_env) -> Iterator[KKServer]:
    env = _env(server_env, KK_TRUSTED_PROXIES=json.dumps(["127.0.0.1"]))
    with start_server(tmp_path_factory.mktemp("proxied"), env) as srv:
        yield srv


@pytest.fixture(scope="module")
def direct(tmp_path_factory, server_env) -> Iterator[KKServer]:
    with start_server(tmp_path_factory.mktemp("direct"), _env(server_env)) as srv:
        yield srv


def _stats(http: httpx.Client, key: str, client: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key}
    if client:
        headers["X-Forwarded-For"] = client
    return http.get("/api/queues/stats", headers=headers)


def test_a_burst_of_wrong_keys_is_cut_off_but_other_clients_are_not(behind_proxy):
    _fresh_window()
    with behind_proxy.client as http:
        guesser, bystander = "203.0.113.7", "198.51.100.9"
        codes = [_stats(http, f"guess-{n:040d}", guesser).status_code for n in range(120)]
        assert codes == [401] * LIMIT + [429] * (120 - LIMIT)
        limited = _stats(http, "guess-again-" + "x" * 40, guesser)
        body = assert_error(limited, 429, "RATE_LIMITED")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60 and "wrong API keys" in body["error"]
        # Another client with the right key is never locked out, for reads and changes.
        assert _stats(http, ADMIN, bystander).status_code == 200
        add = http.post(
            "/api/queues/t-idle/jobs",
            json={"data": {"n": 1}},
            headers={"X-API-Key": ADMIN, "X-Forwarded-For": bystander},
        )
        assert add.status_code == 201, add.text
        # The guesser is refused even with the right key: else 200 would reveal a hit.
        assert_error(_stats(http, ADMIN, guesser), 429, "RATE_LIMITED")
        assert_error(_stats(http, READER, f"10.9.9.9, {guesser}"), 429, "RATE_LIMITED")
        # ... and the right-most untrusted address is the client: a spoofed left part of the
        # chain is ignored, a trusted hop on the right is skipped.
        assert_error(_stats(http, ADMIN, f"{bystander}, {guesser}"), 429, "RATE_LIMITED")
        assert _stats(http, ADMIN, f"{guesser}, {bystander}").status_code == 200
        assert _stats(http, ADMIN, f"{bystander}, 127.0.0.1").status_code == 200
        # Sign-in is closed to the guesser too.
        login = http.post(
            "/dashboard/login", json={"key": ADMIN}, headers={"X-Forwarded-For": guesser}
        )
        assert_error(login, 429, "RATE_LIMITED")


def test_wrong_sign_ins_count_as_guesses(behind_proxy):
    _fresh_window()
    with behind_proxy.client as http:
        client = {"X-Forwarded-For": f"192.0.2.{uuid.uuid4().int % 200 + 1}"}
        codes = [
            http.post("/dashboard/login", json={"key": f"no-{n:040d}"}, headers=client).status_code
            for n in range(LIMIT + 3)
        ]
        assert codes == [401] * LIMIT + [429] * 3
        assert_error(_stats(http, ADMIN, client["X-Forwarded-For"]), 429, "RATE_LIMITED")


def test_forwarded_proto_is_ignored_without_trusted_proxies(direct):
    with direct.client as http:
        http.headers["X-Forwarded-For"] = "198.51.100.200"  # ignored as well
        login = http.post(
            "/dashboard/login", json={"key": READER}, headers={"X-Forwarded-Proto": "https"}
        )
        assert login.status_code == 200, login.text
        attributes = [a.strip().lower() for a in login.headers["set-cookie"].split(";")]
        assert "secure" not in attributes


def test_a_signed_out_session_is_refused(behind_proxy):
    client = {"X-Forwarded-For": "192.0.2.250"}
    with behind_proxy.client as http:
        login = http.post("/dashboard/login", json={"key": ADMIN}, headers=client)
        assert login.status_code == 200, login.text
        http.cookies.clear()
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        session = {**client, "Cookie": cookie, "X-CSRF-Token": login.json()["data"]["csrfToken"]}
        assert http.get("/api/queues/stats", headers=session).status_code == 200
        assert http.post("/api/queues/t-idle/resume", headers=session).status_code == 200
        out = http.post("/dashboard/logout", headers=session)
        assert out.status_code == 200, out.text
        # The browser drops the cookie; a copy of it (and its CSRF token) is dead too.
        assert_error(http.get("/api/queues/stats", headers=session), 401, "UNAUTHORIZED")
        assert_error(http.post("/api/queues/t-idle/pause", headers=session), 401, "UNAUTHORIZED")
        assert_error(http.get("/dashboard/session", headers=session), 401, "UNAUTHORIZED")
        paused = http.get("/api/queues/t-idle/stats", headers={**client, "X-API-Key": ADMIN})
        assert paused.json()["data"]["paused"] is False
        # Another sign-in is a new session and works.
        again = http.post("/dashboard/login", json={"key": ADMIN}, headers=client)
        fresh = {**client, "Cookie": again.headers["set-cookie"].split(";", 1)[0]}
        assert http.get("/api/queues/stats", headers=fresh).status_code == 200


def test_a_lone_surrogate_key_is_a_client_error(direct):
    with direct.client as http:
        body = b'{"key": "\\ud800"}'
        answer = http.post(
            "/dashboard/login", content=body, headers={"Content-Type": "application/json"}
        )
        assert_error(answer, 400, "VALIDATION_ERROR")
    time.sleep(0.2)
    assert "Traceback" not in direct.log()


def test_control_characters_in_a_path_cannot_forge_a_log_line(direct):
    forged = "2030-01-01 00:00:00,000 WARNING kk.security: admin signed in from 10.0.0.1"
    with direct.client as http:
        http.get("/api/queues/x%0A" + forged.replace(" ", "%20") + "%0D%1B[31m/stats")
    time.sleep(0.3)
    lines = direct.log().splitlines()
    assert not any(line.startswith("2030-01-01") for line in lines), "a forged line was written"
    logged = [line for line in lines if "kk.http" in line and "\\x0a2030-01-01" in line]
    assert logged and "\\x0d\\x1b[31m" in logged[0], lines[-5:]


def _kk(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
    return subprocess.run(
        [sys.executable, "-m", "kk", *args],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("variable", ["KK_API_KEY", "KK_API_KEYS", "KK_READ_API_KEYS"])
def test_kk_serve_refuses_a_short_key(tmp_path, variable):
    weak = "short-but-secret-key-123"  # 24 characters
    value = weak if variable == "KK_API_KEY" else json.dumps([ADMIN, weak])
    result = _kk("serve", KK_DATA_DIR=str(tmp_path), KK_PORT="1", **{variable: value})
    assert result.returncode != 0
    assert "kk keygen" in result.stderr and "at least 32" in result.stderr, result.stderr
    assert weak not in result.stderr + result.stdout, "the key itself is never printed"
    assert "Traceback" not in result.stderr


def test_kk_keygen_prints_a_strong_key_that_serve_accepts(tmp_path, server_env):
    first, second = _kk("keygen"), _kk("keygen")
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 32 and key != second.stdout.strip()
    assert key.replace("-", "").replace("_", "").isalnum()
    env = {**server_env, "KK_QUEUE_PREFIX": f"kkg-{uuid.uuid4().hex[:8]}", "KK_API_KEY": key}
    with start_server(tmp_path, env) as srv, srv.client as http:
        assert http.get("/api/queues/stats", headers={"X-API-Key": key}).status_code == 200


# Last in this module: it locks 127.0.0.1 out of `direct` for the rest of the minute.
def test_without_trusted_proxies_a_rotated_forwarded_for_does_not_escape(direct):
    _fresh_window()
    with direct.client as http:
        codes = [
            _stats(http, f"guess-{n:040d}", f"203.0.113.{n % 250 + 1}").status_code
            for n in range(LIMIT + 10)
        ]
        assert codes == [401] * LIMIT + [429] * 10
        assert_error(_stats(http, ADMIN, "198.51.100.77"), 429, "RATE_LIMITED")
