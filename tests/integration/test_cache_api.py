"""Every cache route and error through the HTTP API of a real `kk serve`, against the real
Redis and database (SQLite, and PostgreSQL when KK_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.integration.helpers import add_job, assert_error
from tests.support.cache_db import DB_KINDS, Database, cache_env, make_database
from tests.support.server import KKServer, start_server

MAX_VALUE = 4096


@pytest.fixture(scope="module", params=DB_KINDS)
def database(request, tmp_path_factory):
    with make_database(request.param, tmp_path_factory.mktemp("db")) as db:
        yield db


@pytest.fixture(scope="module")
def srv(database: Database, server_env, tmp_path_factory):
    # A queue prefix of its own too: the job it adds must not show in the suite's queues.
    env = cache_env(
        server_env,
        database,
        KK_CACHE_MAX_VALUE_BYTES=str(MAX_VALUE),
        KK_QUEUE_PREFIX=f"kkq-{uuid.uuid4().hex[:8]}",
    )
    with start_server(tmp_path_factory.mktemp("cache-api"), env) as server:
        yield server


@pytest.fixture
def client(srv: KKServer):
    with srv.client as c:
        yield c


@pytest.fixture
def prefix(srv: KKServer) -> str:
    return srv.env["KK_CACHE_PREFIX"]


def _ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


# -- /api/cache-demo ----------------------------------------------------------------------------


def test_basic_demo_writes_reads_back_and_counts(client, prefix, redis_client):
    key = f"greeting-{uuid.uuid4().hex[:6]}"
    data = _ok(client.get(f"/api/cache-demo/basic/{key}"))
    assert set(data) >= {"original", "cached", "exists", "ttl", "stats"}
    original = data["original"]
    assert original["message"] == "Hello from cache!"
    assert original["timestamp"].endswith("Z") and 0 <= original["random"] < 1
    assert data["cached"] == original and data["exists"] is True
    assert 270 <= data["ttl"] <= 330  # 300 s +- 10 % jitter
    stats = data["stats"]
    assert set(stats) >= {"hits", "misses", "sets", "deletes", "hitRate"}
    assert stats["hits"] >= 1 and stats["sets"] >= 1
    # Really in Redis, as JSON, under the cache prefix (the demo's own "demo:" space).
    raw = redis_client.get(f"{prefix}demo:{key}")
    assert json.loads(raw) == original
    assert 269_000 <= redis_client.pttl(f"{prefix}demo:{key}") <= 330_000


def test_basic_demo_refuses_bad_keys(client):
    assert_error(client.get("/api/cache-demo/basic/__stats"), 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/cache-demo/basic/a%01b"), 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/cache-demo/basic/" + "k" * 257), 400, "VALIDATION_ERROR")


def test_protection_reads_the_database_row_then_the_cache(client, database, prefix, redis_client):
    name, email, created = database.query(
        "SELECT name, email, created_at FROM users WHERE id = 123"
    )[0]
    first = _ok(client.get("/api/cache-demo/protection/123"))
    assert first["fromCache"] is False
    user = first["user"]
    assert user == {
        "id": "123",
        "name": "User 123",
        "email": "user123@example.com",
        "createdAt": user["createdAt"],
    }
    assert (name, email) == ("User 123", "user123@example.com")
    if isinstance(created, str):  # SQLite keeps the text SQLAlchemy wrote (UTC)
        created = datetime.fromisoformat(created)
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
    assert datetime.fromisoformat(user["createdAt"].replace("Z", "+00:00")) == created.replace(
        microsecond=created.microsecond // 1000 * 1000
    )
    assert first["duration"].endswith("ms") and first["duration"][:-2].isdigit()
    second = _ok(client.get("/api/cache-demo/protection/123"))
    assert second["fromCache"] is True and second["user"] == user
    assert json.loads(redis_client.get(f"{prefix}user:123")) == user


def test_protection_errors(client):
    for bad in ("abc", "0", "-5", "007", "1.5", "2147483648", "99999999999", "%20"):
        assert_error(client.get(f"/api/cache-demo/protection/{bad}"), 400, "VALIDATION_ERROR")
    for missing in ("2147483647", "1001"):
        assert_error(client.get(f"/api/cache-demo/protection/{missing}"), 404, "USER_NOT_FOUND")


def test_batch_stores_every_pair_in_redis(client, prefix, redis_client):
    tag = uuid.uuid4().hex[:6]
    keys = [f"product:{tag}:{i}" for i in (1, 2, 3)]
    values = [
        {"id": "1", "name": "Laptop", "price": 999.99},
        {"id": "2", "name": "Mouse", "price": 29.99},
        {"id": "3", "name": "Keyboard", "price": 79.99},
    ]
    body = client.post("/api/cache-demo/batch", json={"keys": keys, "values": values})
    data = _ok(body)
    assert data == {"count": 3, "keys": keys, "ttl": 300}
    assert body.json()["message"]
    for key, value in zip(keys, values, strict=True):
        assert json.loads(redis_client.get(prefix + key)) == value
        assert 269_000 <= redis_client.pttl(prefix + key) <= 330_000
        assert _ok(client.get(f"/api/cache/{key}"))["value"] == value
    # TTLs carry jitter: 3 keys written together rarely share one (exactly equal ms).
    with_ttl = _ok(
        client.post("/api/cache-demo/batch", json={"keys": keys, "values": [1, 2, 3], "ttl": 1000})
    )
    assert with_ttl["ttl"] == 1000
    ttls = {redis_client.pttl(prefix + key) for key in keys}
    assert all(899_000 <= t <= 1_100_000 for t in ttls)


def test_batch_validation_stores_nothing(client, prefix, redis_client):
    tag = uuid.uuid4().hex[:6]
    bad_bodies = [
        {"keys": [f"b:{tag}:1", f"b:{tag}:2"], "values": [1]},  # unequal lengths
        {"keys": [], "values": []},  # empty
        {"keys": [f"b:{tag}:{i}" for i in range(1001)], "values": [0] * 1001},  # > max 1000
        {"keys": [f"b:{tag}:1", f"b:{tag}:1"], "values": [1, 2]},  # duplicate key
        {"keys": [f"b:{tag}:1", "__stats"], "values": [1, 2]},  # reserved name
        {"keys": [f"b:{tag}:1", f"b:{tag}:2"], "values": [1, "x" * MAX_VALUE]},  # value too big
        {"keys": [f"b:{tag}:1"], "values": [1], "ttl": 0},
        {"keys": [f"b:{tag}:1"], "values": [1], "extra": True},
        {"keys": f"b:{tag}:1", "values": [1]},
    ]
    for body in bad_bodies:
        assert_error(client.post("/api/cache-demo/batch", json=body), 400, "VALIDATION_ERROR")
    # Lone surrogates: valid JSON text, not Unicode (in a key, in a value).
    for raw in (
        f'{{"keys": ["b:{tag}:1", "b:\\ud800"], "values": [1, 2]}}',
        f'{{"keys": ["b:{tag}:1"], "values": ["\\udc00"]}}',
    ):
        response = client.post(
            "/api/cache-demo/batch", content=raw, headers={"content-type": "application/json"}
        )
        assert_error(response, 400, "VALIDATION_ERROR")
    assert redis_client.exists(f"{prefix}b:{tag}:1", f"{prefix}b:{tag}:2") == 0
    ok = client.post(
        "/api/cache-demo/batch",
        json={"keys": [f"b:{tag}:{i}" for i in range(1000)], "values": [0] * 1000},
    )
    assert _ok(ok)["count"] == 1000


def test_stats_report_counters_and_the_redis_server(client, redis_client):
    data = _ok(client.get("/api/cache-demo/stats"))
    cache, redis = data["cache"], data["redis"]
    assert set(cache) == {"hits", "misses", "sets", "deletes", "hitRate", "totalOperations"}
    assert (
        cache["totalOperations"]
        == cache["hits"] + cache["misses"] + cache["sets"] + cache["deletes"]
    )
    info = redis_client.info()
    assert redis["version"] == info["redis_version"]
    assert 0 <= info["uptime_in_seconds"] - redis["uptime"] <= 5
    assert redis["memory"].endswith("MB") and float(redis["memory"][:-2]) > 0
    assert f"{float(redis['memory'][:-2]):.2f}MB" == redis["memory"]  # "2.50MB" style
    assert redis["clients"] >= 1
    later = _ok(client.get("/api/cache-demo/stats"))["redis"]["operations"]
    assert 0 < redis["operations"] < later <= redis_client.info()["total_commands_processed"]


# -- /api/cache ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [None, 0, 1.5, "text", True, [], [1, "a", None], {"a": {"b": [1]}}]
)
def test_put_get_delete_any_json_value(client, prefix, redis_client, value):
    key = f"crud:{uuid.uuid4().hex[:8]}/with slash"
    stored = client.put(f"/api/cache/{key}", json={"value": value})
    data = _ok(stored)
    assert data["key"] == key and 270 <= data["ttl"] <= 330
    assert json.loads(redis_client.get(prefix + key)) == value
    got = _ok(client.get(f"/api/cache/{key}"))
    assert got["key"] == key and got["value"] == value and 0 < got["ttl"] <= 330
    deleted = client.delete(f"/api/cache/{key}")
    assert _ok(deleted) == {"key": key, "deleted": True}
    assert redis_client.exists(prefix + key) == 0
    assert_error(client.get(f"/api/cache/{key}"), 404, "CACHE_KEY_NOT_FOUND")
    assert_error(client.delete(f"/api/cache/{key}"), 404, "CACHE_KEY_NOT_FOUND")


def test_an_explicit_ttl_is_kept_exactly(client, prefix, redis_client):
    key = f"ttl:{uuid.uuid4().hex[:8]}"
    assert _ok(client.put(f"/api/cache/{key}", json={"value": 1, "ttl": 60}))["ttl"] == 60
    assert 55_000 < redis_client.pttl(prefix + key) <= 60_000
    assert 55 <= _ok(client.get(f"/api/cache/{key}"))["ttl"] <= 60


def test_put_validation(client, prefix, redis_client):
    key = f"bad:{uuid.uuid4().hex[:8]}"
    for body in (
        {},
        {"value": 1, "ttl": 0},
        {"value": 1, "ttl": -3},
        {"value": 1, "ttl": "x"},
        {"value": 1, "ttl": 31 * 86_400},
        {"value": 1, "other": 2},
        {"value": "x" * MAX_VALUE},
    ):
        assert_error(client.put(f"/api/cache/{key}", json=body), 400, "VALIDATION_ERROR")
    json_type = {"content-type": "application/json"}
    bad = (
        b"{not json",
        b'{"value": NaN}',
        b'{"value": {"a": [Infinity]}}',
        b'{"value": "\\ud800"}',
    )
    for raw in bad:
        response = client.put(f"/api/cache/{key}", content=raw, headers=json_type)
        assert_error(response, 400, "VALIDATION_ERROR")
    assert redis_client.exists(prefix + key) == 0
    assert client.get(f"/api/cache/{key}").status_code == 404  # a miss: the counters exist
    for bad_key in ("k" * 257, "a%00b", "a%1Fb", "__stats", "__lock:user:1"):
        assert_error(
            client.put(f"/api/cache/{bad_key}", json={"value": 1}), 400, "VALIDATION_ERROR"
        )
        assert_error(client.get(f"/api/cache/{bad_key}"), 400, "VALIDATION_ERROR")
        assert_error(client.delete(f"/api/cache/{bad_key}"), 400, "VALIDATION_ERROR")
    assert redis_client.type(f"{prefix}__stats") == "hash"  # the counters were not touched


def test_listing_pages_through_matching_keys_only(client, redis_client):
    tag = uuid.uuid4().hex[:8]
    keys = {f"list:{tag}:{i}" for i in range(25)}
    _ok(client.post("/api/cache-demo/batch", json={"keys": sorted(keys), "values": [1] * 25}))
    _ok(client.put(f"/api/cache/other:{tag}", json={"value": 1}))
    seen: list[str] = []
    cursor, pages = "0", 0
    max_pages = redis_client.dbsize() // 5 + 100
    while True:
        page = _ok(
            client.get(
                "/api/cache", params={"pattern": f"list:{tag}:*", "cursor": cursor, "count": 5}
            )
        )
        seen.extend(page["keys"])
        cursor, pages = page["cursor"], pages + 1
        assert page["done"] is (cursor == "0")
        if page["done"]:
            break
        # SCAN walks the whole keyspace (a shared server may hold many other keys), a few
        # keys per page: the walk must still end.
        assert pages <= max_pages
    assert set(seen) == keys and pages > 1


def test_listing_hides_internal_keys_and_bounds_its_input(client):
    every: list[str] = []
    cursor = "0"
    while True:
        page = _ok(client.get("/api/cache", params={"cursor": cursor, "count": 100_000}))
        every.extend(page["keys"])
        cursor = page["cursor"]
        if page["done"]:
            break
    assert every and not [k for k in every if k.startswith("__")]
    assert _ok(client.get("/api/cache", params={"pattern": "__*"}))["keys"] == []
    for params in (
        {"cursor": "abc"},
        {"cursor": "-1"},
        {"count": 0},
        {"pattern": "p" * 257},
        {"cursor": "1" * 21},
        {"cursor": str(2**64)},
    ):
        assert_error(client.get("/api/cache", params=params), 400, "VALIDATION_ERROR")


def test_cache_keys_never_touch_queue_keys(client, srv, prefix, redis_client):
    queue_prefix = srv.env["KK_QUEUE_PREFIX"]
    job_id = add_job(client, "t-idle", {"n": 1})
    queue_key = f"{queue_prefix}:t-idle:{job_id}"
    before = redis_client.hgetall(queue_key)
    assert before, "the job hash exists"
    for name in (queue_key, "bull:email:1", f"{queue_prefix}:t-idle:wait"):
        _ok(client.put(f"/api/cache/{name}", json={"value": "cache, not queue"}))
        assert json.loads(redis_client.get(prefix + name)) == "cache, not queue"
        assert _ok(client.get(f"/api/cache/{name}"))["value"] == "cache, not queue"
    assert redis_client.type(queue_key) == "hash" and redis_client.hgetall(queue_key) == before
    assert redis_client.type(f"{queue_prefix}:t-idle:wait") == "list"
    assert job_id in redis_client.lrange(f"{queue_prefix}:t-idle:wait", 0, -1)
    listed = _ok(client.get("/api/cache", params={"pattern": f"{queue_prefix}:*", "count": 500}))
    # Only the cache's own entries (a SCAN step may return a partial page; page fully).
    keys = set(listed["keys"])
    cursor = listed["cursor"]
    while cursor != "0":
        page = _ok(
            client.get(
                "/api/cache",
                params={"pattern": f"{queue_prefix}:*", "cursor": cursor, "count": 500},
            )
        )
        keys.update(page["keys"])
        cursor = page["cursor"]
    assert keys == {queue_key, f"{queue_prefix}:t-idle:wait"}
    for name in (queue_key, "bull:email:1", f"{queue_prefix}:t-idle:wait"):
        _ok(client.delete(f"/api/cache/{name}"))
    assert redis_client.hgetall(queue_key) == before
    job = _ok(client.get(f"/api/queues/t-idle/jobs/{job_id}"))
    assert job["id"] == job_id and job["data"] == {"n": 1} and job["status"] == "waiting"
    assert client.post("/api/queues/t-idle/clean", params={"status": "waiting"}).is_success
