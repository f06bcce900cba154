"""Fault bench: mixed load against `kk serve` and one `kk worker` on a private Redis that is
frozen (SIGSTOP: alive, not answering) in the middle of the run, then thawed.

Prints requests by status, 503s, the longest answer (overall and while frozen), and adds
acknowledged (201) vs jobs stored vs jobs completed, with adds stored twice (must be 0)
and acknowledged adds missing (must be 0). Every add carries a unique marker in its data
and no jobId, so a re-sent add would show up as a second job with the same marker.

Run: `.venv/bin/python -m bench.redis_freeze [--clients 8] [--freeze 8]` (about 45 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import redis

from kk.infra.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "freeze"
QUEUES = {
    "freeze": {"processor": "bench.processors:noop", "attempts": 3, "concurrency": 10,
               "keep_completed": 10_000_000},  # keep them all, to count them
}  # fmt: skip


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "kk", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


class Load:
    def __init__(self) -> None:
        self.answers: list[tuple[str, int, float, float]] = []  # kind, status, start, secs
        self.acknowledged: set[str] = set()
        self.stop = False

    async def client(self, http: httpx.AsyncClient, index: int) -> None:
        kinds = ("add", "add", "add", "stats", "list")
        i = index
        while not self.stop:
            kind = kinds[i % len(kinds)]
            i += 1
            marker = uuid.uuid4().hex
            started = time.monotonic()
            try:
                if kind == "add":
                    body = {"data": {"m": marker}}
                    response = await http.post("/api/queues/freeze/jobs", json=body)
                elif kind == "stats":
                    response = await http.get("/api/queues/stats")
                else:
                    params = {"status": "completed", "end": 9}
                    response = await http.get("/api/queues/freeze/jobs", params=params)
                status = response.status_code
            except httpx.HTTPError:
                status = 0  # no answer at all
            self.answers.append((kind, status, started, time.monotonic() - started))
            if kind == "add" and status == 201:
                self.acknowledged.add(marker)
            await asyncio.sleep(0.01)


def stored_markers(url: str) -> list[str]:
    with redis.Redis.from_url(url, decode_responses=True) as direct:
        last = int(direct.get(f"{PREFIX}:freeze:id") or 0)
        pipe = direct.pipeline(transaction=False)
        for job_id in range(1, last + 1):
            pipe.hget(f"{PREFIX}:freeze:{job_id}", "data")
        return [json.loads(d)["m"] for d in pipe.execute() if d]


def completed(url: str) -> int:
    with redis.Redis.from_url(url, decode_responses=True) as direct:
        return int(direct.zcard(f"{PREFIX}:freeze:completed"))


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="kk-freeze-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis-data")
        url = server.start()
        assert server.pid is not None
        port = 19000 + os.getpid() % 1000
        env = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
        env.update({"KK_REDIS_URL": url, "KK_PORT": str(port), "KK_QUEUES": json.dumps(QUEUES),
                    "KK_QUEUE_PREFIX": PREFIX, "KK_LOG_LEVEL": "warning", "KK_DATA_DIR": tmp,
                    "PYTHONPATH": str(ROOT), "KK_DEMO_USERS": "10"})  # fmt: skip
        procs = [spawn(["serve", "--no-workers"], env)]
        procs.append(spawn(["worker", "--queues", "freeze"], env))
        load = Load()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/api/queues/stats")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
                clients = [asyncio.create_task(load.client(http, i)) for i in range(args.clients)]
                await asyncio.sleep(args.before)
                os.kill(server.pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
                await asyncio.sleep(args.freeze)
                os.kill(server.pid, signal.SIGCONT)
                thawed_at = time.monotonic()
                await asyncio.sleep(args.after)
                load.stop = True
                await asyncio.gather(*clients)
            stored = stored_markers(url)
            deadline = time.monotonic() + 30
            while completed(url) < len(stored) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            done = completed(url)
        finally:
            os.kill(server.pid, signal.SIGCONT)
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
            server.stop()

    statuses = Counter(status for _, status, _, _ in load.answers)
    during = [s for _, _, start, s in load.answers if frozen_at - 5 <= start <= thawed_at]
    counts = Counter(stored)
    twice = sum(1 for n in counts.values() if n > 1)
    missing = len(load.acknowledged - counts.keys())
    print(f"clients {args.clients}, Redis frozen {args.freeze:g} s after {args.before:g} s")
    print(f"requests        {len(load.answers)}  by status {dict(sorted(statuses.items()))}")
    print(f"503s            {statuses.get(503, 0)}")
    print(f"max answer      {max(s for *_, s in load.answers):.2f} s overall, "
          f"{max(during, default=0):.2f} s around the freeze")  # fmt: skip
    print(f"adds acked      {len(load.acknowledged)}")
    print(f"jobs stored     {len(stored)} ({len(counts)} distinct adds; "
          f"{len(counts) - len(load.acknowledged)} of them answered 503)")  # fmt: skip
    print(f"jobs completed  {done}")
    print(f"stored twice    {twice}   acked but missing {missing}")
    return 0 if twice == 0 and missing == 0 and statuses.get(0, 0) == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=8, help="seconds of load before")
    parser.add_argument("--freeze", type=float, default=8, help="seconds Redis is frozen")
    parser.add_argument("--after", type=float, default=8, help="seconds of load after")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
