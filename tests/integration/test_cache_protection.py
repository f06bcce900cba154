"""Penetration and stampede protection of /api/cache-demo/protection, counted at the
database: the server logs every SQL statement it sends (KK_LOG_LEVEL=debug, `kk.db.sql`,
emitted by SQLAlchemy's before_cursor_execute), and the tests count the user queries there."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from tests.integration.helpers import assert_error
from tests.support.cache_db import DB_KINDS, Database, cache_env, make_database, user_queries
from tests.support.private_redis import proxied_redis
from tests.support.server import KKServer, start_server, wait_for

MISSING_BASE = 5_000_000  # far above the 1000 demo users


@pytest.fixture(scope="module", params=DB_KINDS)
def database(request, tmp_path_factory):
    with make_database(request.param, tmp_path_factory.mktemp("db")) as db:
        yield db


@pytest.fixture(scope="module")
def with_bloom(database: Database, server_env, tmp_path_factory):
    with start_server(tmp_path_factory.mktemp("bloom"), cache_env(server_env, database)) as srv:
        yield srv


@pytest.fixture(scope="module")
def without_bloom(database: Database, server_env, tmp_path_factory):
    # Negative caching and single flight alone (a Bloom filter would hide them).
    env = cache_env(server_env, database, KK_CACHE_BLOOM_CAPACITY="0")
    with start_server(tmp_path_factory.mktemp("nobloom"), env) as srv:
        yield srv


async def _flood(srv: KKServer, ids: list[int]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(ids), max_keepalive_connections=len(ids))
    async with httpx.AsyncClient(base_url=srv.url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.get(f"/api/cache-demo/protection/{i}") for i in ids))


def _missing_ids(distinct: int, each: int) -> list[int]:
    start = MISSING_BASE + random.randrange(10**8)
    ids = [start + n for n in range(distinct)] * each
    random.shuffle(ids)
    return ids


def _stable_queries(*servers: KKServer):
    """The counts once the logs stop growing (a line may land just after its answer)."""
    seen = [None]

    def settled():
        now = user_queries(*servers)
        done, seen[0] = now == seen[0], now
        return done

    wait_for(settled, timeout=10, interval=0.3, what="the server logs to settle")
    return seen[0]


async def test_the_counting_sees_real_queries(without_bloom):
    """The measure itself: one cold lookup of an existing user is one logged query."""
    user_id = random.randrange(1, 1001)
    (response,) = await _flood(without_bloom, [user_id])
    assert response.status_code == 200 and response.json()["data"]["fromCache"] is False
    assert _stable_queries(without_bloom)[user_id] == 1


async def test_a_flood_of_missing_ids_never_reaches_the_database_with_the_bloom_filter(with_bloom):
    ids = _missing_ids(distinct=100, each=10)
    responses = await _flood(with_bloom, ids)
    for response in responses:
        assert_error(response, 404, "USER_NOT_FOUND")
    queries = _stable_queries(with_bloom)
    assert sum(queries[i] for i in set(ids)) == 0, "the Bloom filter answers them all"


async def test_a_flood_of_missing_ids_reaches_the_database_at_most_once_per_id(without_bloom):
    ids = _missing_ids(distinct=100, each=10)  # 1,000 concurrent lookups
    responses = await _flood(without_bloom, ids)
    for response in responses:
        assert_error(response, 404, "USER_NOT_FOUND")
    queries = _stable_queries(without_bloom)
    per_id = {i: queries[i] for i in set(ids)}
    assert max(per_id.values()) == 1 and min(per_id.values()) == 1, per_id
    # Remembered: the same flood again costs the database nothing.
    for response in await _flood(without_bloom, ids):
        assert_error(response, 404, "USER_NOT_FOUND")
    again = _stable_queries(without_bloom)
    assert {i: again[i] for i in set(ids)} == per_id


async def _cold_user_loaded_once(srv: KKServer) -> None:
    queried = _stable_queries(srv)
    user_id = random.choice([i for i in range(1, 1001) if not queried[i]])  # cold
    responses = await _flood(srv, [user_id] * 200)
    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses), bodies[:3]
    assert {b["data"]["user"]["email"] for b in bodies} == {f"user{user_id}@example.com"}
    assert _stable_queries(srv)[user_id] == 1


async def test_a_cold_user_looked_up_200_times_at_once_is_loaded_once(with_bloom):
    await _cold_user_loaded_once(with_bloom)


async def test_single_flight_holds_without_the_bloom_filter_too(without_bloom):
    await _cold_user_loaded_once(without_bloom)


def test_a_database_failure_is_a_503_and_nothing_is_cached(without_bloom, database, redis_client):
    prefix = without_bloom.env["KK_CACHE_PREFIX"]
    cold = random.randrange(1, 1001)
    while redis_client.exists(f"{prefix}user:{cold}"):
        cold = random.randrange(1, 1001)
    missing = MISSING_BASE + random.randrange(10**8)
    database.query("ALTER TABLE users RENAME TO users_offline")
    try:
        with without_bloom.client as client:
            for user_id in (cold, missing):
                response = client.get(f"/api/cache-demo/protection/{user_id}")
                body = assert_error(response, 503, "DATABASE_CONNECTION_ERROR")
                assert "users_offline" not in body["error"] and "SELECT" not in body["error"]
    finally:
        database.query("ALTER TABLE users_offline RENAME TO users")
    assert redis_client.exists(f"{prefix}user:{cold}", f"{prefix}user:{missing}") == 0
    with without_bloom.client as client:

        def answered(user_id: int, status: int):
            response = client.get(f"/api/cache-demo/protection/{user_id}")
            return response if response.status_code == status else None

        # The first query after the outage may still see a stale prepared statement.
        found = wait_for(lambda: answered(cold, 200), timeout=10, what="the user again")
        assert found.json()["data"]["fromCache"] is False
        wait_for(lambda: answered(missing, 404), timeout=10, what="the missing id")
    assert _stable_queries(without_bloom)[missing] >= 2, "asked again: no negative entry was kept"


def test_a_cache_outage_falls_back_to_the_database(database, server_env, tmp_path):
    with proxied_redis(tmp_path / "cache-redis") as cache_redis:
        env = cache_env(server_env, database, KK_CACHE_REDIS_URL=cache_redis.url)
        with start_server(tmp_path / "srv", env) as srv, srv.client as client:
            user_id = random.randrange(1, 1001)
            url = f"/api/cache-demo/protection/{user_id}"
            assert client.get(url).json()["data"]["fromCache"] is False
            assert client.get(url).json()["data"]["fromCache"] is True
            cache_redis.proxy.stop()
            try:
                response = client.get(url)
                assert response.status_code == 200, response.text
                assert response.json()["data"]["fromCache"] is False
                assert response.json()["data"]["user"]["id"] == str(user_id)
                assert_error(client.get("/api/cache-demo/protection/1001"), 404, "USER_NOT_FOUND")
                assert "Cache unavailable, reading the database" in srv.log()
                # The routes that are the cache itself say so.
                assert_error(client.get("/api/cache/anything"), 503, "REDIS_CONNECTION_ERROR")
                assert_error(client.get("/api/cache-demo/stats"), 503, "REDIS_CONNECTION_ERROR")
            finally:
                cache_redis.proxy.start()
            wait_for(
                lambda: client.get(url).json()["data"]["fromCache"],
                timeout=15,
                what="the cache to serve again",
            )
