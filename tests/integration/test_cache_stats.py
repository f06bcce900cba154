"""Cache counters: exact hitRate and totalOperations on a server of the test's own, the
same counters from every process, and a stampede split over two processes loading once."""

from __future__ import annotations

import asyncio
import random
import uuid

import httpx
import pytest

from tests.integration.helpers import assert_error
from tests.support.cache_db import DB_KINDS, Database, cache_env, make_database, user_queries
from tests.support.server import start_server, wait_for


@pytest.fixture(scope="module", params=DB_KINDS)
def database(request, tmp_path_factory):
    with make_database(request.param, tmp_path_factory.mktemp("db")) as db:
        yield db


@pytest.fixture(scope="module")
def two_servers(database: Database, redis_url, queue_prefix, server_env, tmp_path_factory):
    """Two `kk serve` on one Redis (the suite's, with its queue prefix), one cache namespace
    and one database."""
    env = cache_env(server_env, database, KK_REDIS_URL=redis_url, KK_QUEUE_PREFIX=queue_prefix)
    with (
        start_server(tmp_path_factory.mktemp("a"), env) as a,
        start_server(tmp_path_factory.mktemp("b"), env) as b,
    ):
        yield a, b


def _stats(client: httpx.Client) -> dict:
    response = client.get("/api/cache-demo/stats")
    assert response.status_code == 200, response.text
    return response.json()["data"]["cache"]


def _expected(hits: int, misses: int, sets: int, deletes: int, rate: float) -> dict:
    return {
        "hits": hits,
        "misses": misses,
        "sets": sets,
        "deletes": deletes,
        "hitRate": rate,
        "totalOperations": hits + misses + sets + deletes,
    }


def test_counters_hit_rate_and_total_are_exact(database, server_env, tmp_path, redis_client):
    env = cache_env(server_env, database)
    with start_server(tmp_path, env) as srv, srv.client as client:
        assert _stats(client) == _expected(0, 0, 0, 0, 0)  # no lookups: 0, not a division error
        for i in range(4):
            assert client.put(f"/api/cache/k{i}", json={"value": i}).status_code == 200
        for i in range(3):
            assert client.get(f"/api/cache/k{i}").status_code == 200
        for _ in range(2):
            assert_error(client.get("/api/cache/nope"), 404, "CACHE_KEY_NOT_FOUND")
        assert client.delete("/api/cache/k0").status_code == 200
        assert_error(client.delete("/api/cache/k0"), 404, "CACHE_KEY_NOT_FOUND")  # not counted
        assert _stats(client) == _expected(3, 2, 4, 1, 60.0)
        # A batch is one set per key; the basic demo one set and one hit.
        batch = {"keys": ["b1", "b2", "b3"], "values": [1, 2, 3]}
        assert client.post("/api/cache-demo/batch", json=batch).status_code == 200
        demo = client.get("/api/cache-demo/basic/x").json()["data"]["stats"]
        assert demo == _expected(4, 2, 8, 1, 66.7)  # 4 / 6 = 66.666.. -> 66.7
        # The counters are Redis' own hash, not process memory.
        raw = redis_client.hgetall(f"{env['KK_CACHE_PREFIX']}__stats")
        assert {k: int(v) for k, v in raw.items()} == {
            "hits": 4,
            "misses": 2,
            "sets": 8,
            "deletes": 1,
        }


def test_the_contract_example_150_of_175_is_85_7(database, server_env, tmp_path):
    with start_server(tmp_path, cache_env(server_env, database)) as srv:

        async def lookups() -> None:
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
                assert (await client.put("/api/cache/hot", json={"value": 1})).status_code == 200
                hits = [client.get("/api/cache/hot") for _ in range(150)]
                misses = [client.get(f"/api/cache/cold-{i}") for i in range(25)]
                answers = await asyncio.gather(*hits, *misses)
                assert [r.status_code for r in answers] == [200] * 150 + [404] * 25

        asyncio.run(lookups())
        with srv.client as client:
            assert _stats(client) == _expected(150, 25, 1, 0, 85.7)
            for i in range(135):  # 150 / 310 = 48.387.. %
                client.get(f"/api/cache/more-cold-{i}")
            assert _stats(client)["hitRate"] == round(150 / 310 * 100, 1) == 48.4
            assert _stats(client)["totalOperations"] == 150 + 160 + 1


def test_counters_agree_across_two_processes(two_servers):
    a, b = two_servers
    tag = uuid.uuid4().hex[:6]
    with a.client as ca, b.client as cb:
        before = _stats(ca)
        assert _stats(cb) == before
        assert ca.put(f"/api/cache/{tag}", json={"value": "x"}).status_code == 200  # set on A
        assert cb.get(f"/api/cache/{tag}").status_code == 200  # hit on B
        assert ca.get(f"/api/cache/{tag}").status_code == 200  # hit on A
        assert cb.get(f"/api/cache/{tag}-missing").status_code == 404  # miss on B
        assert cb.delete(f"/api/cache/{tag}").status_code == 200  # delete on B
        after_a, after_b = _stats(ca), _stats(cb)
    assert after_a == after_b
    delta = {k: after_a[k] - before[k] for k in ("hits", "misses", "sets", "deletes")}
    assert delta == {"hits": 2, "misses": 1, "sets": 1, "deletes": 1}
    assert after_a["totalOperations"] == before["totalOperations"] + 5


def test_a_stampede_split_over_two_processes_loads_once(two_servers):
    """Single flight within each process, and the Redis lock between them."""
    a, b = two_servers
    queried = user_queries(a, b)
    user_id = random.choice([i for i in range(1, 1001) if not queried[i]])

    async def stampede() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=30, limits=limits) as ca,
            httpx.AsyncClient(base_url=b.url, timeout=30, limits=limits) as cb,
        ):
            url = f"/api/cache-demo/protection/{user_id}"
            return await asyncio.gather(*(c.get(url) for c in [ca, cb] * 100))

    responses = asyncio.run(stampede())
    assert [r.status_code for r in responses] == [200] * 200
    served = {srv.url: 0 for srv in (a, b)}
    for r in responses:
        served[str(r.request.url).split("/api/")[0]] += 1
    assert all(served.values())
    wait_for(lambda: user_queries(a, b)[user_id] >= 1, what="the load in the logs")
    assert user_queries(a, b)[user_id] == 1, "one database query across both processes"
