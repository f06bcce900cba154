"""Worker throughput: `kk worker`'s pool vs the stock `bullmq` Worker vs Node's BullMQ.

Same private Redis, same number of no-op jobs, several concurrencies; prints jobs/s and
the ratio to Node. Run: `.venv/bin/python bench/worker_throughput.py [--jobs N] [--runs R]`
(Node's side needs `npm install --prefix bench/node`; it is skipped without node).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bullmq import Queue, Worker

from bench._common import median, private_redis
from kk.infra.redis_client import worker_client
from kk.processors.base import JobContext, ProcessorSpec
from kk.queues.workers import WorkerPool
from kk.settings import QueueConfig, Settings

NODE_DIR = Path(__file__).parent / "node"
ROOT = Path(__file__).resolve().parents[1]
PREFIX = "bench"


async def noop(*_: Any) -> None:
    return None


async def fill(url: str, queue: str, jobs: int) -> None:
    client = worker_client(url)
    q = Queue(queue, {"connection": client, "prefix": PREFIX})
    for start in range(0, jobs, 1000):
        batch = [
            {"name": "noop", "data": {"i": i}, "opts": {"removeOnComplete": True}}
            for i in range(start, min(jobs, start + 1000))
        ]
        await q.addBulk(batch)
    await client.aclose()


async def timed(worker: Worker, jobs: int) -> float:
    done = asyncio.Event()
    count = 0
    first = 0.0

    def on_completed(*_: Any) -> None:
        nonlocal count, first
        if not first:
            first = time.perf_counter()
        count += 1
        if count == jobs:
            done.set()

    worker.on("completed", on_completed)
    start = time.perf_counter()
    await asyncio.wait_for(done.wait(), timeout=300)
    return time.perf_counter() - start


async def run_stock(url: str, jobs: int, concurrency: int) -> float:
    queue = f"stock-{uuid.uuid4().hex[:6]}"
    await fill(url, queue, jobs)
    # What a user of the package writes: a URL, the package's own connection handling.
    worker = Worker(queue, noop, {"connection": url, "prefix": PREFIX, "concurrency": concurrency})
    seconds = await timed(worker, jobs)
    await worker.close()
    return jobs / seconds


async def run_kk(url: str, jobs: int, concurrency: int) -> float:
    queue = f"kk-{uuid.uuid4().hex[:6]}"
    await fill(url, queue, jobs)
    settings = Settings(
        redis_url=url, queue_prefix=PREFIX, queues={queue: QueueConfig(concurrency=concurrency)}
    )
    spec = ProcessorSpec(process=noop)
    pool = WorkerPool(settings, url, {queue: spec}, JobContext(settings, None, None))  # type: ignore[arg-type]
    pool.start()
    gc.collect()
    gc.freeze()  # as `kk worker` does after start-up
    seconds = await timed(pool.workers[queue], jobs)
    await pool.close()
    return jobs / seconds


async def run_node(url: str, jobs: int, concurrency: int) -> float | None:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "bullmq").is_dir():
        return None
    queue = f"node-{uuid.uuid4().hex[:6]}"
    await fill(url, queue, jobs)
    out = subprocess.run(
        [node, str(NODE_DIR / "worker-bench.mjs"), url, PREFIX, queue, str(jobs), str(concurrency)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["jobsPerSecond"]


def run_apart(impl: str, url: str, jobs: int, concurrency: int) -> float:
    """Each Python worker in a process of its own, on the event loop it ships with:
    uvloop for `kk worker` (as its CLI sets), asyncio's default for the stock package."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.worker_throughput", "--one", impl, "--url", url,
         "--jobs", str(jobs), "--concurrency", str(concurrency)],
        capture_output=True, text=True, timeout=300, check=True, cwd=ROOT,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def one(impl: str, url: str, jobs: int, concurrency: int) -> None:
    if impl == "kk":
        import uvloop

        print(uvloop.run(run_kk(url, jobs, concurrency)))
    else:
        print(asyncio.run(run_stock(url, jobs, concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--one", choices=["kk", "stock"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.url, args.jobs, args.concurrency[0])
        return
    with private_redis() as url:
        print(f"{args.jobs} no-op jobs, median of {args.runs} runs, one process each, jobs/s")
        print(f"{'concurrency':>11} {'node bullmq':>12} {'stock python':>13} {'kk worker':>10} "
              f"{'kk/node':>8} {'kk/stock':>9}")  # fmt: skip
        for concurrency in args.concurrency:
            figures: dict[str, list[float]] = {"node": [], "stock": [], "kk": []}
            for _ in range(args.runs):
                node = asyncio.run(run_node(url, args.jobs, concurrency))
                if node is not None:
                    figures["node"].append(node)
                figures["stock"].append(run_apart("stock", url, args.jobs, concurrency))
                figures["kk"].append(run_apart("kk", url, args.jobs, concurrency))
            node, stock, kk = (median(figures[k]) for k in ("node", "stock", "kk"))
            print(f"{concurrency:>11} {node:>12.0f} {stock:>13.0f} {kk:>10.0f} "
                  f"{kk / node:>8.2f} {kk / stock:>9.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
