"""`POST /api/cache-demo/batch` of 100 pairs is one round trip, measured by Redis itself.

The cache runs on a Redis of the test's own (KK_CACHE_REDIS_URL), so its INFO counters see
nothing but the cache. `total_reads_processed` counts the server's socket reads: a pipeline
arrives in one read (or a few, if the kernel splits it), 100 separate commands in 100.
"""

from __future__ import annotations

import json

import pytest
import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.support.cache_db import Database, cache_env
from tests.support.server import start_server

PAIRS = 100


@pytest.fixture
def cache_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "cache-redis")
    url = server.start()
    client = redis.Redis.from_url(url, decode_responses=True)
    yield url, client
    client.close()
    server.stop()


def _snapshot(client: redis.Redis) -> dict[str, int]:
    stats = client.info("stats")
    commands = client.info("commandstats")
    return {
        "reads": stats["total_reads_processed"],
        "commands": stats["total_commands_processed"],
        "set": commands.get("cmdstat_set", {}).get("calls", 0),
        "hincrby": commands.get("cmdstat_hincrby", {}).get("calls", 0),
    }


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def test_a_batch_of_100_pairs_is_one_round_trip(cache_redis, server_env, tmp_path):
    url, direct = cache_redis
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'kk.sqlite3'}")
    env = cache_env(server_env, database, KK_CACHE_REDIS_URL=url)
    prefix = env["KK_CACHE_PREFIX"]
    keys = [f"item:{i}" for i in range(PAIRS)]
    values = [{"id": i, "name": f"Item {i}", "tags": ["a", "b"]} for i in range(PAIRS)]
    with start_server(tmp_path / "srv", env) as srv, srv.client as client:
        # Warm up: the server's connection exists and is idle before we measure.
        assert client.post(
            "/api/cache-demo/batch", json={"keys": keys, "values": values}
        ).is_success

        # Calibration: two INFO snapshots back to back, nothing in between.
        idle = _delta(_snapshot(direct), _snapshot(direct))
        before = _snapshot(direct)
        response = client.post("/api/cache-demo/batch", json={"keys": keys, "values": values})
        after = _snapshot(direct)
        assert response.status_code == 200, response.text
        batch = _delta(before, after)

        # 100 SETs and the one HINCRBY of the counters, nothing else, in one read event.
        assert batch["set"] == PAIRS and batch["hincrby"] == 1
        assert batch["commands"] - idle["commands"] == PAIRS + 1
        assert batch["reads"] - idle["reads"] <= 3, batch

        # The same 100 SETs sent one by one cost one read each: the measure can tell.
        before = _snapshot(direct)
        for key, value in zip(keys, values, strict=True):
            direct.set(prefix + key, json.dumps(value))
        one_by_one = _delta(before, _snapshot(direct))
        assert one_by_one["reads"] - idle["reads"] >= PAIRS

        for key, value in zip(keys, values, strict=True):
            assert json.loads(direct.get(prefix + key)) == value
