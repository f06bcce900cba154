"""DNS rebinding through the real HTTP API: only loopback names and KK_ALLOWED_HOSTS are
served (421 MISDIRECTED_REQUEST otherwise), on every route, the add route's fast lane
included; health probes also answer to an IP-literal Host."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.integration.helpers import assert_error
from tests.support.server import KKServer, start_server

KEY = "host-check-admin-key-0123456789abcdef"
REBIND = "rebind.attacker.example"
# One of each kind of route: API change, fast add lane, its bulk route, dashboard, docs,
# health (detailed and probes), metrics, OpenAPI document.
ROUTES = [
    ("POST", "/api/queues/t-idle/pause", None),
    ("POST", "/api/queues/t-idle/jobs", {"data": {"n": 1}}),
    ("POST", "/api/queues/t-idle/jobs/bulk", {"jobs": [{"data": {"n": 1}}]}),
    ("GET", "/api/queues/stats", None),
    ("GET", "/dashboard/", None),
    ("POST", "/dashboard/login", {"key": "x"}),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
    ("GET", "/health", None),
    ("GET", "/health/live", None),
    ("GET", "/health/ready", None),
    ("GET", "/metrics", None),
]


def _env(server_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**server_env, "KK_QUEUE_PREFIX": f"kkh-{uuid.uuid4().hex[:8]}", **extra}


@pytest.fixture(scope="module")
def open_server(tmp_path_factory, server_env):
    env = _env(server_env, KK_ALLOWED_HOSTS=json.dumps(["api.example.com", "*.corp.example"]))
    with start_server(tmp_path_factory.mktemp("host-open"), env) as srv:
        yield srv


def _send(srv: KKServer, method: str, path: str, body, host: str, **headers: str):
    with srv.client as http:
        return http.request(method, path, json=body, headers={"Host": host, **headers})


def _waiting(srv: KKServer) -> int:
    with srv.client as http:
        return http.get("/api/queues/t-idle/stats").json()["data"]["waiting"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_open_mode_refuses_a_rebound_host_on_every_route(open_server, method, path, body):
    before = _waiting(open_server)
    origin = f"http://{REBIND}:8000"
    response = _send(open_server, method, path, body, f"{REBIND}:8000", Origin=origin)
    error = assert_error(response, 421, "MISDIRECTED_REQUEST")
    assert REBIND in error["error"] and "KK_ALLOWED_HOSTS" in error["error"]
    assert _waiting(open_server) == before, "nothing was added"
    with open_server.client as http:
        assert http.get("/api/queues/t-idle/stats").json()["data"]["paused"] is False


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:1234", "localhost", "LOCALHOST:80", "[::1]:9", "api.example.com",
     "a.corp.example:8443", "b.a.corp.example"],
)  # fmt: skip
def test_loopback_and_listed_names_are_served(open_server, host):
    response = _send(open_server, "GET", "/api/queues/stats", None, host)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host",
    ["corp.example", "api.example.com.attacker.example", "10.0.0.7:8000", "127.0.0.2", "",
     "localhost.attacker.example"],
)  # fmt: skip
def test_other_names_are_refused(open_server, host):
    response = _send(open_server, "GET", "/api/queues/stats", None, host)
    assert_error(response, 421, "MISDIRECTED_REQUEST")


def test_probes_answer_to_an_ip_host_but_nothing_else_does(open_server):
    for path in ("/health/live", "/health/ready"):
        for host in ("10.1.2.3:8000", "[fd00::5]:8000"):
            assert _send(open_server, "GET", path, None, host).status_code == 200, (path, host)
    assert_error(_send(open_server, "GET", "/health", None, "10.1.2.3"), 421, "MISDIRECTED_REQUEST")
    assert_error(
        _send(open_server, "POST", "/api/queues/t-idle/pause", None, "10.1.2.3"),
        421,
        "MISDIRECTED_REQUEST",
    )
    assert_error(
        _send(open_server, "GET", "/health/live", None, "probe.attacker.example"),
        421,
        "MISDIRECTED_REQUEST",
    )


def test_keyed_mode_checks_hosts_only_once_a_list_is_set(tmp_path, server_env):
    key = {"X-API-Key": KEY}
    with start_server(tmp_path / "free", _env(server_env, KK_API_KEY=KEY)) as srv:
        # A key is what a rebound page lacks: any Host may carry it (e.g. 0.0.0.0 in a pod).
        answer = _send(srv, "GET", "/api/queues/stats", None, "kk.internal:8000", **key)
        assert answer.status_code == 200, answer.text
    env = _env(server_env, KK_API_KEY=KEY, KK_ALLOWED_HOSTS='["kk.example.com"]')
    with start_server(tmp_path / "listed", env) as srv:
        for host in ("kk.example.com", "127.0.0.1:1"):
            answer = _send(srv, "GET", "/api/queues/stats", None, host, **key)
            assert answer.status_code == 200, (host, answer.text)
        refused = _send(srv, "POST", "/api/queues/t-idle/jobs", {"data": {}}, "kk.internal", **key)
        assert_error(refused, 421, "MISDIRECTED_REQUEST")


def test_a_cors_origin_does_not_make_its_host_acceptable(tmp_path, server_env):
    env = _env(server_env, KK_CORS_ORIGINS=json.dumps([f"http://{REBIND}:8000"]))
    with start_server(tmp_path, env) as srv:
        origin = f"http://{REBIND}:8000"
        for method, path in (("POST", "/api/queues/t-idle/pause"), ("GET", "/api/queues/stats")):
            response = _send(srv, method, path, None, f"{REBIND}:8000", Origin=origin)
            assert_error(response, 421, "MISDIRECTED_REQUEST")
            assert "access-control-allow-origin" not in response.headers
        preflight = httpx.options(
            f"{srv.url}/api/queues/stats",
            headers={"Host": REBIND, "Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert_error(preflight, 421, "MISDIRECTED_REQUEST")
