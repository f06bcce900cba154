"""HTTP figures: enqueue throughput (single adds, bulk route, direct `bullmq` adds) and
latency/throughput of the read routes with the Redis round trips each costs, next to the
raw floor of the same Redis calls made from a bare script.

Run: `.venv/bin/python -m bench.http_bench [--seconds 5] [--listing-jobs 100000]
[--enqueue-only]`.
Everything runs on loopback against a private Redis and `kk serve` processes it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from bullmq import Queue

from bench._common import percentile, private_redis
from kk.infra.redis_client import worker_client
from kk.queues.snapshot import _SNAPSHOT

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "bench"
QUEUES = {f"q{i}": {"attempts": 1} for i in range(6)}  # no processors: jobs stay put


def reads_and_commands(info: dict) -> tuple[int, int]:
    # total_reads_processed counts socket read events: a pipeline sent at once is one read,
    # so its delta per request approximates round trips; commands are counted separately.
    return int(info["total_reads_processed"]), int(info["total_commands_processed"])


@contextlib.contextmanager
def servers(url: str, count: int) -> Iterator[list[str]]:
    procs, urls = [], []
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
        for i in range(count):
            port = 18000 + i + (os.getpid() % 1000) * 3
            env = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
            env.update({"KK_REDIS_URL": url, "KK_PORT": str(port), "KK_QUEUE_PREFIX": PREFIX,
                        "KK_QUEUES": json.dumps(QUEUES), "KK_RUN_WORKERS": "false",
                        "KK_LOG_LEVEL": "warning", "KK_DATA_DIR": f"{tmp}/{i}",
                        "KK_MAX_JOB_DATA_BYTES": "65536"})  # fmt: skip
            procs.append(subprocess.Popen([sys.executable, "-m", "kk", "serve"], env=env,
                                          cwd=ROOT, stdout=subprocess.DEVNULL))  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        try:
            for base in urls:
                for _ in range(200):
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(f"{base}/api/queues/stats", timeout=1).status_code == 200:
                            break
                    time.sleep(0.1)
            yield urls
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()


async def load(
    call: Callable[[int], Awaitable[None]], seconds: float, concurrency: int
) -> tuple[int, list[float], float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = 0

    async def loop() -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            started = time.perf_counter()
            await call(counter)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return len(latencies), latencies, time.perf_counter() - started


WRK = shutil.which("wrk")


def _ms(text: str) -> float:
    value = float(text.rstrip("usm"))
    return (
        value / 1000
        if text.endswith("us")
        else value * 1000
        if text.endswith("s") and not text.endswith("ms")
        else value
    )


def wrk(
    url: str, seconds: float, concurrency: int, body: str | None
) -> tuple[int, float, float, float]:
    """Load from wrk (C, its own process): a Python client would be the bottleneck."""
    args = [WRK, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if body is not None:
            script.write(f"wrk.method = 'POST'\nwrk.body = [[{body}]]\n"
                         "wrk.headers['Content-Type'] = 'application/json'\n")  # fmt: skip
            script.flush()
            args[1:1] = ["-s", script.name]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    if "Non-2xx" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    return requests, rate, p50, p99


async def measure_wrk(name: str, urls: list[str], seconds: float, concurrency: int, rclient,
                      body: str | None = None, per_item: int = 1) -> None:  # fmt: skip
    """One wrk per server URL, all at once; rates add up, percentiles are the worst."""
    before = reads_and_commands(await rclient.info("stats"))
    results = await asyncio.gather(
        *(asyncio.to_thread(wrk, url, seconds, concurrency, body) for url in urls)
    )
    after = reads_and_commands(await rclient.info("stats"))
    count = sum(r[0] for r in results)
    rate = sum(r[1] for r in results)
    p50, p99 = max(r[2] for r in results), max(r[3] for r in results)
    reads = (after[0] - before[0]) / max(count, 1)
    commands = (after[1] - before[1]) / max(count, 1)
    print(f"{name:<44} {rate * per_item:>9.0f}/s {p50:>8.2f} {p99:>8.2f} {reads:>7.1f} "
          f"{commands:>9.1f}", flush=True)  # fmt: skip


async def measure(name: str, call, seconds: float, concurrency: int, rclient,
                  per_item: int = 1) -> None:  # fmt: skip
    before = reads_and_commands(await rclient.info("stats"))
    count, latencies, elapsed = await load(call, seconds, concurrency)
    after = reads_and_commands(await rclient.info("stats"))
    reads = (after[0] - before[0]) / max(count, 1)
    commands = (after[1] - before[1]) / max(count, 1)
    print(f"{name:<44} {count * per_item / elapsed:>9.0f}/s {percentile(latencies, 50):>8.2f} "
          f"{percentile(latencies, 99):>8.2f} {reads:>7.1f} {commands:>9.1f}",
          flush=True)  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    with private_redis() as url:
        rclient = aioredis.from_url(url, decode_responses=True)
        bull = worker_client(url)
        queue = Queue("q0", {"connection": bull, "prefix": PREFIX})
        # The raw library as a producer would use it: bullmq on redis-py's own pooled client.
        stock_queue = Queue("q0", {"connection": rclient, "prefix": PREFIX})
        data = {"to": "user@example.com", "n": 1}
        print(f"{'what':<44} {'rate':>11} {'p50 ms':>8} {'p99 ms':>8} {'reads':>7} {'commands':>9}")
        print("-- enqueue (rate = jobs/s; reads, commands per request) --")

        async def stock_add(_: int) -> None:
            await stock_queue.add("job", data, {"attempts": 1})

        async def direct_add(_: int) -> None:
            await queue.add("job", data, {"attempts": 1})

        await measure("bullmq Queue.add, stock redis-py (raw floor)", stock_add, args.seconds,
                      32, rclient)  # fmt: skip
        await measure("bullmq Queue.add, one at a time", stock_add, args.seconds, 1, rclient)
        await measure("bullmq Queue.add on kk's tuned client", direct_add, args.seconds, 32,
                      rclient)  # fmt: skip
        # And as bullmq's README shows it: a URL, the package's own (single) connection.
        own_queue = Queue("q0", {"connection": url, "prefix": PREFIX})

        async def own_add(_: int) -> None:
            await own_queue.add("job", data, {"attempts": 1})

        await measure("bullmq Queue.add, its own connection", own_add, args.seconds, 32, rclient)
        await own_queue.close()

        async def direct_bulk(_: int) -> None:
            await queue.addBulk([{"name": "job", "data": data}] * 500)

        await measure("bullmq Queue.addBulk x500 (raw floor)", direct_bulk, args.seconds, 4,
                      rclient, per_item=500)  # fmt: skip
        for count in (1, 2):
            with servers(url, count) as bases:
                if WRK is None:
                    print("wrk not found (apt-get install wrk): HTTP figures skipped")
                    break
                one = json.dumps({"data": data})
                bulk = json.dumps({"jobs": [{"data": data}] * 500})
                await measure_wrk(f"POST /api/queues/q1/jobs, {count} server(s)",
                                  [f"{b}/api/queues/q1/jobs" for b in bases], args.seconds, 32,
                                  rclient, one)  # fmt: skip
                if count == 1:
                    await measure_wrk("POST /api/queues/q1/jobs, one at a time",
                                      [f"{bases[0]}/api/queues/q1/jobs"], args.seconds, 1,
                                      rclient, one)  # fmt: skip
                await measure_wrk(f"POST .../jobs/bulk x500, {count} server(s)",
                                  [f"{b}/api/queues/q2/jobs/bulk" for b in bases], args.seconds,
                                  4, rclient, bulk, per_item=500)  # fmt: skip

        if args.enqueue_only:
            await rclient.aclose()
            await bull.aclose()
            return
        # A state with many jobs, to show listing cost follows the page, not the state.
        filled = await rclient.llen(f"{PREFIX}:q3:wait")
        while filled < args.listing_jobs:
            await queue.__class__("q3", {"connection": bull, "prefix": PREFIX}).addBulk(
                [{"name": "job", "data": data}] * 1000
            )
            filled += 1000
        print(f"-- reads (rate = requests/s; q3 holds {filled} waiting jobs) --")
        with servers(url, 1) as (base,):
            client = httpx.AsyncClient(base_url=base, timeout=30)
            routes = [("GET /api/queues/stats", "/api/queues/stats"),
                      ("GET /api/queue-dashboard/overview", "/api/queue-dashboard/overview"),
                      ("GET /api/queues/q3/jobs (page of 50)", "/api/queues/q3/jobs?end=49"),
                      ("GET /api/cache/bench-key", "/api/cache/bench-key")]  # fmt: skip
            await client.put("/api/cache/bench-key", json={"value": {"hello": "world"}})
            for label, path in routes:
                probe = await client.get(path)
                if probe.status_code != 200 or WRK is None:
                    print(f"{label:<44} skipped ({probe.status_code}, wrk={WRK})")
                    continue
                await measure_wrk(label, [f"{base}{path}"], args.seconds, 16, rclient)
            await client.aclose()

        print("-- raw floor: the same Redis calls from a bare script --")

        # The service's own counting script, called from a bare client.
        counts = rclient.register_script(_SNAPSHOT)
        prefixes = [f"{PREFIX}:{n}:" for n in [*QUEUES, "email", "image-processing", "cleanup",
                                               "webhook"]]  # fmt: skip

        async def raw_stats(_: int) -> None:
            await counts(keys=prefixes, args=[int(time.time() * 1000)] + [60] * len(prefixes))

        await measure("counts script, 10 queues", raw_stats, args.seconds, 16, rclient)
        q3 = Queue("q3", {"connection": bull, "prefix": PREFIX})

        async def raw_page(_: int) -> None:
            await q3.getJobs(["waiting"], 0, 49, True)

        await measure("bullmq getJobs page of 50", raw_page, args.seconds, 16, rclient)
        await rclient.aclose()
        await bull.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--listing-jobs", type=int, default=100_000)
    parser.add_argument("--enqueue-only", action="store_true", help="skip the read routes")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
