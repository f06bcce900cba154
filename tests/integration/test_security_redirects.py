"""The trailing-slash redirects name no host: with keys and no KK_ALLOWED_HOSTS every
`Host` is served, and one echoed into `Location` would send a client (or a shared cache)
wherever the request said."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import start_server

ADMIN = "admin-key-0123456789abcdef0123456789"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/queues/stats/"),  # FastAPI's routing
     ("POST", "/api/queues/t-idle/jobs/")],  # the add lane's fallback
)  # fmt: skip
def test_redirects_do_not_echo_the_host(tmp_path, server_env, method, path):
    env = {**server_env, "KK_API_KEYS": ADMIN}
    with start_server(tmp_path, env) as srv:
        answer = httpx.request(
            method,
            srv.url + path,
            headers={"Host": "evil.example", "Authorization": f"Bearer {ADMIN}"},
            json={"data": {}} if method == "POST" else None,
            follow_redirects=False,
        )
    assert answer.status_code == 307, answer.text
    assert "evil.example" not in answer.headers["location"]
    assert answer.headers["location"] == path.rstrip("/")
