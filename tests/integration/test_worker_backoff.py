"""A worker against a full Redis backs off: it asks for a job a few times a second at most
(bullmq alone asks ten times a second per concurrency slot), and says so in /metrics."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from bullmq import Queue

from tests.support.full_redis import fill, private_redis, scrape, script_calls, total
from tests.support.server import free_port, start_worker, wait_for

QUEUES = {"full": {"processor": "tests.support.processors:nap", "concurrency": 5,
                   "attempts": 30, "backoff_type": "fixed", "backoff_delay_ms": 500}}  # fmt: skip
# A job taken just before a refusal can be left active: the stalled check soon frees it.
LOCKS = {"KK_LOCK_DURATION_MS": "2000", "KK_STALLED_INTERVAL_MS": "3000"}
WINDOW_S = 10
MAX_CALLS_PER_S = 2


async def _add(url: str, prefix: str, count: int) -> None:
    queue = Queue("full", {"connection": url, "prefix": prefix})
    try:
        for value in range(count):
            await queue.add("job", {"seconds": 0.01, "n": value})
    finally:
        await queue.close()


def test_a_worker_backs_off_against_a_full_redis_and_counts_it(tmp_path):
    prefix = f"bo-{uuid.uuid4().hex[:6]}"
    env = {"KK_QUEUES": json.dumps(QUEUES), "KK_QUEUE_PREFIX": prefix, "KK_SCHEDULES": "{}",
           **LOCKS}  # fmt: skip
    port = free_port()
    args = ["--queues", "full", "--metrics-port", str(port)]
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    with private_redis(tmp_path / "redis") as (url, direct):
        # Jobs waiting before Redis fills up: each slot of the worker wants one at once.
        asyncio.run(_add(url, prefix, 20))
        fill(direct)
        try:
            with start_worker(tmp_path / "w", {**env, "KK_REDIS_URL": url}, args) as worker:
                time.sleep(2)  # past the first refusals, into the steady state
                direct.config_resetstat()
                time.sleep(WINDOW_S)
                calls = script_calls(direct)
                print(f"{calls} script calls in {WINDOW_S}s")
                assert calls <= MAX_CALLS_PER_S * WINDOW_S, (
                    f"{calls} script calls in {WINDOW_S}s from one worker process"
                )
                found = scrape(metrics_url)
                kind = {"kind": "out_of_memory", "queue": "full"}
                assert total(found, "kk_worker_redis_errors_total", **kind) >= 1, worker.log()
                assert total(found, "kk_worker_redis_backoff_seconds") > 0
                assert "workers back off" in worker.log()

                direct.config_set("maxmemory", 0)
                done = f"{prefix}:full:completed"
                wait_for(lambda: direct.zcard(done) == 20, timeout=30, what="the jobs to run")
                assert total(scrape(metrics_url), "kk_worker_redis_backoff_seconds") == 0
                assert "Redis accepts writes again" in worker.log()
        finally:
            direct.config_set("maxmemory", 0)
