"""Webhook deliveries share one client per worker process: kept-alive connections, no new
pool or SSL context per job, closed when the workers stop. Real `kk serve`, real Redis,
real HTTP receiver; the SSRF checks per connection are covered in
tests/unit/test_net_guard_shared.py."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from bullmq import Queue

from kk.config import QueueConfig, Settings
from kk.infra.redis_client import worker_client
from kk.processors.base import JobContext
from kk.processors.registry import BUILTIN_PROCESSORS
from kk.workers.pool import WorkerPool
from tests.integration.helpers import wait_job
from tests.support.receivers import HttpReceiver
from tests.support.server import start_server, wait_for

DELIVERIES = 30
CONCURRENCY = 5  # the webhook queue's default


def test_deliveries_through_the_api_reuse_the_workers_connections(server_env, tmp_path):
    env = {**server_env, "KK_QUEUE_PREFIX": f"kkw-{uuid.uuid4().hex[:8]}"}
    with (
        HttpReceiver(keep_alive=True) as receiver,
        start_server(tmp_path, env) as srv,
        srv.client as http,
    ):
        ids = []
        for n in range(DELIVERIES):
            body = {"data": {"url": f"{receiver.url}/hooks/{n}", "payload": {"n": n}}}
            response = http.post("/api/queues/webhook/jobs", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["jobId"])
        for job_id in ids:
            wait_job(http, "webhook", "completed", job_id)
    assert sorted(r.json()["n"] for r in receiver.requests) == list(range(DELIVERIES))
    # A client per delivery opens a connection per delivery; one per process keeps at most
    # one per job slot open.
    assert receiver.connections <= CONCURRENCY, receiver.connections


async def test_the_worker_pool_builds_one_client_and_closes_it(redis_url, tmp_path, monkeypatch):
    built = {"ssl": 0, "client": 0}
    real_ssl, real_init = ssl.create_default_context, aiohttp.ClientSession.__init__

    def counting_ssl(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built["ssl"] += 1
        return real_ssl(*args, **kwargs)

    def counting_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        built["client"] += 1
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting_ssl)
    monkeypatch.setattr(aiohttp.ClientSession, "__init__", counting_init)
    prefix = f"kkw-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=Path(tmp_path), redis_url=redis_url, queue_prefix=prefix,
        ssrf_allow=["127.0.0.1"], webhook_secret="s",
        queues={"webhook": QueueConfig(concurrency=CONCURRENCY)},
    )  # fmt: skip
    context = JobContext(settings, None, None)  # type: ignore[arg-type]
    pool = WorkerPool(settings, redis_url, {"webhook": BUILTIN_PROCESSORS["webhook"]}, context)
    client = worker_client(redis_url)
    queue = Queue("webhook", {"connection": client, "prefix": prefix})
    with HttpReceiver(keep_alive=True) as receiver:
        pool.start()
        try:
            jobs = [{"name": "deliver", "data": {"url": f"{receiver.url}/h", "payload": {"n": n}}}
                    for n in range(DELIVERIES)]  # fmt: skip
            await queue.addBulk(jobs)
            await asyncio.to_thread(
                wait_for, lambda: len(receiver.requests) == DELIVERIES, 20, 0.05, "deliveries"
            )
            used = context.http
        finally:
            await pool.close()
            await queue.close()
            await client.aclose()
    assert built["client"] == 1, built
    assert built["ssl"] <= 1, built  # none if an earlier test of this process built it
    assert used.closed, "the pool's close() closed the shared client"
    assert receiver.connections <= CONCURRENCY
