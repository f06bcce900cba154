"""Soak: minutes of mixed load (adds, listings, stats, cache reads) against one `kk serve`
and two `kk worker` processes on a private Redis. Prints requests/s, errors (must be 0),
p50/p99 latency, jobs added vs completed (must match) and peak memory per process.

Run: `.venv/bin/python -m bench.soak [--minutes 1] [--rate 300]` (loopback only; bounded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench._common import percentile, private_redis

ROOT = Path(__file__).resolve().parents[1]
QUEUES = {
    "soak": {"processor": "bench.processors:noop", "attempts": 3, "concurrency": 20,
             "keep_completed": 10_000_000},  # keep them all, to count them
}  # fmt: skip


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "kk", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="kk-soak-") as tmp:
        port = 19000 + os.getpid() % 1000
        env = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
        env.update({"KK_REDIS_URL": url, "KK_PORT": str(port), "KK_QUEUES": json.dumps(QUEUES),
                    "KK_LOG_LEVEL": "warning", "KK_DATA_DIR": tmp, "PYTHONPATH": str(ROOT),
                    "KK_DEMO_USERS": "100"})  # fmt: skip
        procs = {"server": spawn(["serve", "--no-workers"], env)}
        procs.update({f"worker{i}": spawn(["worker", "--queues", "soak"], env) for i in (1, 2)})
        peak = dict.fromkeys(procs, 0)
        base = f"http://127.0.0.1:{port}"
        client = httpx.AsyncClient(base_url=base, timeout=30)
        for _ in range(300):
            try:
                if (await client.get("/api/queues/stats")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        await client.put("/api/cache/soak", json={"value": {"hello": "soak"}})
        latencies: list[float] = []
        by_kind: dict[str, list[float]] = {}
        errors: list[str] = []
        added = 0
        deadline = time.perf_counter() + args.minutes * 60

        async def one(kind: str) -> None:
            nonlocal added
            started = time.perf_counter()
            try:
                if kind == "add":
                    r = await client.post("/api/queues/soak/jobs", json={"data": {"n": 1}})
                    added += r.status_code == 201
                elif kind == "list":
                    r = await client.get("/api/queues/soak/jobs?status=completed&end=49")
                elif kind == "stats":
                    r = await client.get("/api/queues/stats")
                else:
                    r = await client.get("/api/cache/soak")
                if r.status_code >= 400:
                    errors.append(f"{kind}: {r.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"{kind}: {exc!r}")
            latency = (time.perf_counter() - started) * 1000
            latencies.append(latency)
            by_kind.setdefault(kind, []).append(latency)

        async def sample_memory() -> None:
            while time.perf_counter() < deadline:
                for name, proc in procs.items():
                    peak[name] = max(peak[name], psutil.Process(proc.pid).memory_info().rss)
                await asyncio.sleep(1)

        sampler = asyncio.create_task(sample_memory())
        pending: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        interval = 1 / args.rate
        next_at = started
        while time.perf_counter() < deadline:
            kind = random.choices(["add", "list", "stats", "cache"], [4, 2, 2, 2])[0]
            task = asyncio.create_task(one(kind))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += interval
            await asyncio.sleep(max(0, next_at - time.perf_counter()))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
        await sampler
        completed = 0
        for _ in range(600):
            completed = (await client.get("/api/queues/soak/stats")).json()["data"]["completed"]
            if completed >= added:
                break
            await asyncio.sleep(0.1)
        await client.aclose()
        for proc in procs.values():
            proc.terminate()
            proc.wait()
        print(f"duration {elapsed:.0f}s, offered {args.rate}/s")
        print(
            f"requests/s {len(latencies) / elapsed:.0f}, errors {len(errors)}, "
            f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms"
        )
        for kind, values in sorted(by_kind.items()):
            print(
                f"  {kind:<6} n={len(values):<6} p50 {percentile(values, 50):.2f} ms, "
                f"p99 {percentile(values, 99):.2f} ms"
            )
        print(f"jobs added {added}, completed {completed}")
        print("peak RSS " + ", ".join(f"{n} {b / 2**20:.0f} MiB" for n, b in peak.items()))
        if errors:
            print("first errors:", errors[:5])
        return 0 if not errors and completed == added else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--rate", type=int, default=300, help="requests offered per second")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
