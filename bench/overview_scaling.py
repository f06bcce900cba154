"""Does the dashboard overview stay flat from 6 to 200 registered queues?

For each size it starts a private Redis and a `kk serve` (no workers, so the only Redis
traffic is the requests'), puts a few waiting jobs in every queue, then measures
`GET /api/queue-dashboard/overview` (and `/health` for comparison): Redis round trips per
request, counted by a small TCP proxy between the server and Redis (a round trip is a burst
of bytes from the client after Redis last answered on that connection), Redis commands per
request (INFO's total_commands_processed) and answer time p50/p99.

Run: `.venv/bin/python bench/overview_scaling.py [--requests 300]` (about 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` and `kk` importable

import httpx  # noqa: E402
import redis  # noqa: E402
from bullmq import Queue  # noqa: E402

from bench._common import percentile, private_redis  # noqa: E402

PREFIX = "bench-overview"
BUILTINS = 4  # email, image-processing, cleanup, webhook are always registered
JOBS_PER_QUEUE = 5


class CountingProxy:
    """Forwards a Unix socket to Redis's and counts request bursts (round trips) per
    connection."""

    def __init__(self, target: str, listen: str) -> None:
        self.target = target
        self.path = listen
        self.round_trips = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_unix_server(self._handle, self.path))
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_r, client_w) -> None:
        redis_r, redis_w = await asyncio.open_unix_connection(self.target)
        waiting_reply = False

        async def upstream() -> None:
            nonlocal waiting_reply
            while data := await client_r.read(65536):
                if not waiting_reply:
                    self.round_trips += 1
                    waiting_reply = True
                redis_w.write(data)
                await redis_w.drain()
            redis_w.close()

        async def downstream() -> None:
            nonlocal waiting_reply
            while data := await redis_r.read(65536):
                waiting_reply = False
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        with contextlib.suppress(Exception):
            await asyncio.gather(upstream(), downstream())


async def seed(url: str, names: list[str]) -> None:
    for name in names:
        queue = Queue(name, {"connection": url, "prefix": PREFIX})
        await queue.addBulk([{"name": "job", "data": {"n": i}} for i in range(JOBS_PER_QUEUE)])
        await queue.close()


@contextlib.contextmanager
def kk_serve(redis_url: str, queues: dict) -> Iterator[str]:
    port = 19000 + os.getpid() % 1000
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
        env.update(
            {
                "KK_REDIS_URL": redis_url,
                "KK_PORT": str(port),
                "KK_QUEUE_PREFIX": PREFIX,
                "KK_QUEUES": json.dumps(queues),
                "KK_SCHEDULES": "{}",
                "KK_RUN_WORKERS": "false",
                "KK_LOG_LEVEL": "warning",
                "KK_DATA_DIR": tmp,
            }
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "kk", "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/api/queues/stats", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            else:
                raise RuntimeError("kk serve did not start")
            yield base
        finally:
            proc.terminate()
            proc.wait()


def measure(client: httpx.Client, path: str, requests: int, proxy, info) -> dict[str, float]:
    for _ in range(20):  # warm-up: connections, scripts, imports
        client.get(path).raise_for_status()
    idle_before = proxy.round_trips
    time.sleep(0.5)
    background = proxy.round_trips - idle_before
    trips_before, commands_before = proxy.round_trips, info()
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    trips = proxy.round_trips - trips_before
    commands = info() - commands_before - 1  # the second INFO itself
    return {
        "round_trips": trips / requests,
        "commands": commands / requests,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "background": background,
    }


def run(size: int, requests: int) -> dict[str, dict[str, float]]:
    names = [f"bq{i:03d}" for i in range(size - BUILTINS)]
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="kk-proxy-") as tmp:
        direct = redis.Redis.from_url(url)
        socket_path = direct.connection_pool.connection_kwargs["path"]
        proxy = CountingProxy(socket_path, f"{tmp}/proxy.sock")

        def info() -> int:
            return int(direct.info("stats")["total_commands_processed"])

        asyncio.run(seed(url, names))
        queues = {n: {"attempts": 1} for n in names}
        with (
            kk_serve(f"unix://{proxy.path}", queues) as base,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            total = client.get("/api/queue-dashboard/overview").json()["data"]["metrics"]
            assert total["total"]["totalQueues"] == size, total
            out = {
                path.rsplit("/", 1)[-1]: measure(client, path, requests, proxy, info)
                for path in ("/api/queue-dashboard/overview", "/api/queue-dashboard/health")
            }
        direct.close()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--sizes", default="6,200")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for route, m in run(size, args.requests).items():
            rows.append((size, route, m))
    print(f"{'queues':>6} {'route':<9} {'round trips':>11} {'commands':>9} {'p50 ms':>7} "
          f"{'p99 ms':>7}")  # fmt: skip
    for size, route, m in rows:
        print(
            f"{size:>6} {route:<9} {m['round_trips']:>11.2f} {m['commands']:>9.1f} "
            f"{m['p50']:>7.2f} {m['p99']:>7.2f}"
        )
        if m["background"]:
            print(f"       ({m['background']} round trips seen while idle for 0.5 s)")
    print(f"({args.requests} sequential requests per row, after 20 warm-up requests)")


if __name__ == "__main__":
    main()
