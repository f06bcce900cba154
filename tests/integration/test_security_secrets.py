"""No configured secret ever reaches a client or the log: Redis password, API keys, webhook
and session secrets, SMTP password. A `kk serve` of its own against a Redis that demands a
password, with every secret set, is read through every kind of answer it gives."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import add_job, assert_error, wait_job
from tests.support.redis_topologies import redis_with_password, server_binary
from tests.support.server import KKServer, start_server

pytestmark = pytest.mark.skipif(server_binary() is None, reason="needs a redis/valkey server")


def _secret(label: str) -> str:
    return f"{label}-{secrets.token_hex(16)}"  # API keys need 32+ characters


SECRETS = {
    "redis password": _secret("redispw"),
    "admin key": _secret("adminkey"),
    "read key": _secret("readkey"),
    "webhook secret": _secret("webhooksecret"),
    "smtp password": _secret("smtppw"),
    "session secret": _secret("sessionsecret"),
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KKServer]:
    workdir: Path = tmp_path_factory.mktemp("secrets")
    with redis_with_password(workdir / "redis", SECRETS["redis password"]) as port:
        env = {
            "KK_REDIS_URL": f"redis://:{SECRETS['redis password']}@127.0.0.1:{port}/0",
            "KK_QUEUE_PREFIX": f"kkp-{uuid.uuid4().hex[:8]}",
            "KK_API_KEYS": json.dumps([SECRETS["admin key"]]),
            "KK_READ_API_KEYS": json.dumps([SECRETS["read key"]]),
            "KK_WEBHOOK_SECRET": SECRETS["webhook secret"],
            "KK_SESSION_SECRET": SECRETS["session secret"],
            "KK_SMTP_URL": f"smtp://user:{SECRETS['smtp password']}@127.0.0.1:1",
            "KK_LOG_LEVEL": "debug",
            "KK_SHUTDOWN_GRACE_S": "5",
        }
        with start_server(workdir / "data", env) as server:
            yield server


def assert_clean(where: str, text: str) -> None:
    leaked = [name for name, value in SECRETS.items() if value in text]
    assert not leaked, f"{where} shows the {', '.join(leaked)}"


def _check(response: httpx.Response) -> httpx.Response:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    assert_clean(f"{response.request.method} {response.request.url.path}", headers + response.text)
    return response


def test_no_answer_and_no_log_line_shows_a_secret(srv: KKServer):
    admin = {"X-API-Key": SECRETS["admin key"]}
    with httpx.Client(base_url=srv.url, timeout=30, headers=admin) as http:
        for path in ("/health", "/health/redis", "/health/ready", "/metrics",
                     "/api/queues/stats", "/api/queue-dashboard/overview",
                     "/api/queue-dashboard/health", "/api/queue-dashboard/scheduled-jobs",
                     "/api/cache-demo/stats", "/openapi.json"):  # fmt: skip
            response = _check(http.get(path))
            assert response.status_code == 200, (path, response.text)
        assert http.get("/health/redis").json()["status"] == "up"  # the password works

        page = _check(http.get("/dashboard"))
        assert page.status_code == 200
        for name in ("app.js", "style.css", "index.html"):
            assert _check(http.get(f"/dashboard/static/{name}")).status_code == 200

        # Errors: unknown route, bad queue name, validation, wrong key, sign-in.
        assert_error(_check(http.get("/api/no-such-route")), 404, "NOT_FOUND")
        assert_error(_check(http.get("/api/queues/BAD!/stats")), 400, "INVALID_QUEUE_NAME")
        bad = http.post("/api/queues/email/jobs", json={"to": SECRETS["admin key"]})
        assert_error(_check(bad), 400, "VALIDATION_ERROR")
        wrong = http.get("/api/queues/stats", headers={"X-API-Key": SECRETS["read key"] + "x"})
        assert_error(_check(wrong), 401, "UNAUTHORIZED")
        login = _check(http.post("/dashboard/login", json={"key": SECRETS["admin key"]}))
        assert login.status_code == 200
        _check(http.get("/dashboard/session", headers={"Cookie": login.headers["set-cookie"]}))

        # A failing email job: the SMTP connection is refused, the reason must not say how
        # the service would have logged in.
        body = {"to": "a@example.com", "subject": "Hi", "template": "welcome",
                "data": {"username": "a", "activationLink": "https://example.com/a"},
                "options": {"attempts": 1}}  # fmt: skip
        added = http.post("/api/queues/email/jobs", json=body)
        assert added.status_code == 201, added.text
        job = wait_job(http, "email", "failed", added.json()["jobId"], timeout=30)
        assert job["failedReason"]
        assert_clean("failedReason", job["failedReason"])
        _check(http.get(f"/api/queues/email/jobs/{job['id']}"))
        _check(http.get("/api/queues/email/jobs", params={"status": "failed"}))

        # A webhook job that fails: its signature header is derived from the secret.
        hook = add_job(http, "webhook", {"url": "http://localhost:1/hook", "payload": {}},
                       attempts=1)  # fmt: skip
        _check(
            http.get(f"/api/queues/webhook/jobs/{wait_job(http, 'webhook', 'failed', hook)['id']}")
        )

    log = srv.log()
    assert "POST /api/queues/email/jobs 201" in log  # the log was written at all
    assert_clean("the server log", log)
