"""Single adds through `POST /api/queues/{name}/jobs`: the fast lane in front of FastAPI and
the batching of concurrent adds into one pipeline, on a Redis of the test's own (its INFO
counters then see nothing but this server, which runs no workers)."""

from __future__ import annotations

import json
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.integration.helpers import assert_error
from tests.support.server import KKServer, start_server

QUEUE = "t-idle"
ADDS = 240
CONCURRENCY = 40


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("add-redis"))
    url = server.start()
    # Admin credentials: the service's user may not run CONFIG SET (used below).
    client = redis.Redis.from_url(server.admin_url, decode_responses=True)
    yield url, client
    client.close()
    server.stop()


@pytest.fixture(scope="module")
def srv(own_redis, tmp_path_factory: pytest.TempPathFactory):
    url, _ = own_redis
    env = {
        "KK_REDIS_URL": url,
        "KK_QUEUE_PREFIX": f"kkb-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps({QUEUE: {"attempts": 1}}),
        "KK_RUN_WORKERS": "false",
    }
    with start_server(tmp_path_factory.mktemp("add-kk"), env) as server:
        yield server


def _burst(base_url: str, bodies: list[dict]) -> list[tuple[int, dict, dict]]:
    """Send every request at once, each on its own connection, then read the answers: the
    server sees them arrive together, as under load (an HTTP client library in this
    process would send them one by one)."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    sockets = [socket.create_connection((host, port)) for _ in bodies]
    for sock, body in zip(sockets, bodies, strict=True):
        payload = json.dumps(body).encode()
        head = (
            f"POST /api/queues/{QUEUE}/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + payload)
    answers = []
    for sock in sockets:
        with sock, sock.makefile("rb") as stream:
            status = int(stream.readline().split()[1])
            headers = {}
            while (line := stream.readline().strip()) != b"":
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            answers.append((status, headers, json.loads(stream.read())))
    return answers


def _add_concurrently(base_url: str, count: int) -> list[tuple[int, dict, dict]]:
    answers = []
    for start in range(0, count, CONCURRENCY):
        bodies = [{"data": {"i": i}} for i in range(start, min(count, start + CONCURRENCY))]
        answers += _burst(base_url, bodies)
    return answers


@pytest.fixture
def prefix(srv: KKServer) -> str:
    return srv.env["KK_QUEUE_PREFIX"]


def test_concurrent_adds_share_round_trips_and_every_job_lands(srv, own_redis, prefix):
    _, direct = own_redis
    _add_concurrently(srv.url, 10)  # warm up: connections open, scripts loaded
    waiting_before = direct.llen(f"{prefix}:{QUEUE}:wait")
    before = direct.info("stats")["total_reads_processed"]
    responses = _add_concurrently(srv.url, ADDS)
    reads = direct.info("stats")["total_reads_processed"] - before

    assert [status for status, _, _ in responses] == [201] * ADDS
    ids = [body["jobId"] for _, _, body in responses]
    assert len(set(ids)) == ADDS
    assert all(body["message"] == f"Job added to queue '{QUEUE}'" for _, _, body in responses)
    assert all(headers.get("x-request-id") for _, headers, _ in responses)
    # Every acknowledged add is in Redis with the data it was sent.
    assert direct.llen(f"{prefix}:{QUEUE}:wait") - waiting_before == ADDS
    datas = {json.loads(direct.hget(f"{prefix}:{QUEUE}:{i}", "data"))["i"] for i in ids}
    assert datas == set(range(ADDS))
    # One socket read per add would be ADDS; batched adds share them (plus the INFO call).
    assert reads < ADDS * 0.8, f"{reads} Redis reads for {ADDS} concurrent adds"


def test_adds_recover_when_redis_forgets_its_scripts(srv, own_redis, prefix):
    _, direct = own_redis
    direct.script_flush()
    responses = _add_concurrently(srv.url, 30)
    assert [status for status, _, _ in responses] == [201] * 30
    for _, _, body in responses:
        assert direct.exists(f"{prefix}:{QUEUE}:{body['jobId']}")


def test_an_add_redis_refuses_is_answered_and_not_acknowledged(srv, own_redis, prefix):
    _, direct = own_redis
    waiting_before = direct.llen(f"{prefix}:{QUEUE}:wait")
    direct.config_set("maxmemory", 1)  # under noeviction, every write is refused (OOM)
    try:
        responses = _add_concurrently(srv.url, 20)
    finally:
        direct.config_set("maxmemory", 0)
    for status, _, body in responses:
        assert (status, body["code"], body["success"]) == (507, "REDIS_OUT_OF_MEMORY", False)
    assert direct.llen(f"{prefix}:{QUEUE}:wait") == waiting_before
    responses = _add_concurrently(srv.url, 20)  # and the service goes on once Redis can
    assert [status for status, _, _ in responses] == [201] * 20


def test_the_fast_lane_leaves_unusual_requests_to_the_route(srv):
    with srv.client as client:
        url = f"/api/queues/{QUEUE}/jobs"
        # Bodies the route refuses keep their precise errors.
        assert_error(client.post(url, json={"data": 1}), 400, "VALIDATION_ERROR")
        assert_error(client.post(url, json={"data": {}, "extra": 1}), 400, "VALIDATION_ERROR")
        assert_error(
            client.post(url, content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "VALIDATION_ERROR",
        )
        deep = b'{"data": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
        json_body = {"content-type": "application/json"}
        assert_error(client.post(url, content=deep, headers=json_body), 400, "VALIDATION_ERROR")
        job_id = {"options": {"jobId": "123"}}
        assert_error(client.post(url, json={"data": {}, **job_id}), 400, "VALIDATION_ERROR")
        # Another content type and a trailing slash go through FastAPI as before.
        plain = client.post(url, content=b'{"data": {}}', headers={"content-type": "text/plain"})
        assert_error(plain, 415, "UNSUPPORTED_MEDIA_TYPE")
        slash = client.post(f"{url}/", json={"data": {}})
        assert slash.status_code == 307 and slash.headers["location"].endswith(url)
        # Well-formed adds with every option are answered by the lane, as the route would.
        body = {
            "name": "resize",
            "data": {"a": [1, "é"]},
            "options": {"delay": 60_000, "attempts": 3, "jobId": "lane-1", "priority": 2},
        }
        first = client.post(url, json=body)
        assert first.status_code == 201, first.text
        assert first.json() == {
            "success": True,
            "jobId": "lane-1",
            "message": f"Job added to queue '{QUEUE}'",
            "duplicate": False,
            "state": None,
        }
        again = client.post(url, json=body)  # idempotent: the existing job, answered 200
        assert again.status_code == 200 and again.json()["jobId"] == "lane-1"
        assert again.json()["duplicate"] is True and again.json()["state"] == "delayed"
        job = client.get(f"{url}/lane-1").json()["data"]
        assert job["name"] == "resize" and job["data"] == {"a": [1, "é"]}
        assert job["status"] == "delayed" and job["opts"]["attempts"] == 3
