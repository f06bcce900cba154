"""Worker throughput: `kk worker`'s pool vs the stock `bullmq` Worker vs Node's BullMQ.

One private Redis; each run of each engine is a process of its own that first drains a
warm-up batch (Node's JIT, Python's caches and every connection warm up), then pauses. Every
engine runs with BullMQ's per-minute metrics on, as kk's pool does: the same Redis work per
job (the metrics are two commands inside `moveToFinished`). The
timed batch is added while it is paused (the same no-op jobs, added the same way, for every
engine), Redis's counters are read, and the clock runs from `resume()` to the last job's
`completed` event. Per engine and concurrency it prints the median of the runs: jobs/s, the
Redis server's CPU over the timed window (INFO cpu user + sys, in % of one core), Redis
commands per job (INFO commandstats: the commands run inside Lua scripts count too) and
script calls per job (EVALSHA/EVAL/FCALL: one client round trip each).

Run: `.venv/bin/python -m bench.worker_throughput [--jobs N] [--warmup N] [--runs R]
[--concurrency 1 50] [--engines node stock kk] [--kk-log off|text|json]` (Node's side needs
`npm ci --prefix bench/node`; it is skipped without node).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bullmq import Queue, Worker

from bench._common import (
    ServerCounters,
    machine_busy_s,
    median,
    private_redis,
    process_cpu_s,
)
from kk.config import QueueConfig, Settings
from kk.infra.redis_client import worker_client
from kk.logs import configure_logging
from kk.processors.base import JobContext, ProcessorSpec
from kk.workers.pool import METRICS_MINUTES, WorkerPool

NODE_DIR = Path(__file__).parent / "node"
ROOT = Path(__file__).resolve().parents[1]
PREFIX = "bench"
ENGINES = {"node": "node bullmq", "stock": "stock python", "kk": "kk worker"}
TIMEOUT_S = 600
LEGEND = """\
worker%, redis%, other%: CPU over the timed window in % of one core ({cores} on this machine)
  of the engine's process, of the Redis server (INFO cpu, user+sys) and of everything else
cmds/job: INFO commandstats calls, commands run inside Lua scripts included
scripts/job: EVALSHA/EVAL/FCALL calls (client round trips carrying a script)"""
HEADER = (
    f"{'conc':>4} {'engine':<13} {'jobs/s':>8} {'worker%':>7} {'redis%':>6} {'other%':>6} "
    f"{'cmds/job':>9} {'scripts/job':>12}   jobs/s of each run"
)


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
    await q.close()
    await client.aclose()


# --- one engine, in its own process (`--one kk|stock`); Node's is bench/node/worker-bench.mjs


class Completions:
    """Counts a worker's `completed` events; `reach(n)` returns when n have been seen."""

    def __init__(self, worker: Worker) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()
        self.at = 0.0
        worker.on("completed", self)

    def __call__(self, *_: Any) -> None:
        self.count += 1
        if self.count == self.target:
            self.at = time.perf_counter()
            self.reached.set()

    async def reach(self, target: int) -> float:
        self.target = target
        if self.count < target:
            await asyncio.wait_for(self.reached.wait(), timeout=TIMEOUT_S)
        self.reached.clear()
        return self.at

    def reset(self) -> None:
        self.count = 0


async def start_stock(url: str, queue: str, concurrency: int) -> tuple[Worker, Callable]:
    # What a user of the package writes: a URL, the package's own connection handling; the
    # metrics on, as kk's pool has them (the same Redis work per job for every engine).
    opts = {"connection": url, "prefix": PREFIX, "concurrency": concurrency,
            "metrics": {"maxDataPoints": METRICS_MINUTES}}  # fmt: skip
    worker = Worker(queue, noop, opts)
    return worker, worker.close


async def start_kk(url: str, queue: str, concurrency: int) -> tuple[Worker, Callable]:
    settings = Settings(
        redis_url=url, queue_prefix=PREFIX, queues={queue: QueueConfig(concurrency=concurrency)}
    )
    spec = ProcessorSpec(process=noop)
    pool = WorkerPool(settings, url, {queue: spec}, JobContext(settings, None, None))  # type: ignore[arg-type]
    pool.start()
    gc.collect()
    gc.freeze()  # as `kk worker` does after start-up
    return pool.workers[queue], pool.close


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def expect(reader: asyncio.StreamReader, word: str) -> None:
    line = (await reader.readline()).decode().strip()
    if line != word:
        raise RuntimeError(f"expected {word!r} from the parent, got {line!r}")


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def run_one(
    impl: str, url: str, queue: str, warmup: int, jobs: int, conc: int, kk_log: str
) -> None:
    starter = start_kk if impl == "kk" else start_stock
    if impl == "kk" and kk_log != "off":
        # As `kk worker` logs (two INFO lines per job) to its stderr, a file here.
        configure_logging(Settings(log_json=kk_log == "json"))
    reader = await stdin_lines()
    worker, close = await starter(url, queue, conc)
    completions = Completions(worker)
    await completions.reach(warmup)
    await worker.pause()
    say(phase="paused", warmup=completions.count)
    await expect(reader, "go")
    completions.reset()
    started = time.perf_counter()
    worker.resume()
    seconds = await completions.reach(jobs) - started
    say(phase="done", jobs=jobs, seconds=seconds, jobsPerSecond=jobs / seconds)
    await expect(reader, "close")
    await close()


def one(args: argparse.Namespace) -> None:
    run = run_one(
        args.one, args.url, args.queue, args.warmup, args.jobs, args.concurrency[0], args.kk_log
    )
    if args.one == "kk":
        import uvloop  # as `kk worker` runs (its CLI sets uvloop)

        uvloop.run(run)
    else:
        asyncio.run(run)  # the package on asyncio's default loop


# --- the parent: fills the queues, reads Redis's counters, drives each engine's process


@dataclasses.dataclass(frozen=True)
class Run:
    jobs_per_s: float
    worker_cpu_pct: float  # the engine's process, % of one core over the timed window
    redis_cpu_pct: float  # the Redis server, likewise
    other_cpu_pct: float  # the rest of the machine (other users' processes), likewise
    commands_per_job: float  # INFO commandstats, script-internal commands included
    scripts_per_job: float  # EVALSHA/EVAL/FCALL calls: client round trips carrying a script


def engine_command(engine: str, url: str, queue: str, args: argparse.Namespace, conc: int):
    if engine == "node":
        node = shutil.which("node")
        assert node is not None
        script = str(NODE_DIR / "worker-bench.mjs")
        return [node, script, url, PREFIX, queue, str(args.warmup), str(args.jobs), str(conc),
                str(METRICS_MINUTES)]  # fmt: skip
    return [sys.executable, "-m", "bench.worker_throughput", "--one", engine, "--url", url,
            "--queue", queue, "--warmup", str(args.warmup), "--jobs", str(args.jobs),
            "--concurrency", str(conc), "--kk-log", args.kk_log]  # fmt: skip


def read_phase(proc: subprocess.Popen[str], phase: str, stderr: IO[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            message = json.loads(line)
            if message.get("phase") == phase:
                return message
    proc.wait()
    stderr.seek(0)
    raise RuntimeError(f"engine exited ({proc.returncode}) before {phase!r}:\n{stderr.read()}")


def tell(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(word + "\n")
    proc.stdin.flush()


def run_engine(engine: str, url: str, args: argparse.Namespace, conc: int) -> Run:
    queue = f"{engine}-{uuid.uuid4().hex[:6]}"
    asyncio.run(fill(url, queue, args.warmup))
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            engine_command(engine, url, queue, args, conc),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT,
        )  # fmt: skip
        killer = threading.Timer(TIMEOUT_S, proc.kill)
        killer.start()
        try:
            read_phase(proc, "paused", stderr)
            asyncio.run(fill(url, queue, args.jobs))
            wait_quiet(args.quiet_wait)
            busy_before, worker_before = machine_busy_s(), process_cpu_s(proc.pid)
            before = ServerCounters.read(url)
            tell(proc, "go")
            done = read_phase(proc, "done", stderr)
            after = ServerCounters.read(url)
            busy_after, worker_after = machine_busy_s(), process_cpu_s(proc.pid)
            tell(proc, "close")
            proc.wait()
        finally:
            killer.cancel()
            if proc.poll() is None:
                proc.kill()
    jobs = args.jobs
    wall = after.at - before.at
    worker_cpu = worker_after - worker_before
    redis_cpu = after.cpu_s - before.cpu_s
    return Run(
        jobs_per_s=float(done["jobsPerSecond"]),
        worker_cpu_pct=100 * worker_cpu / wall,
        redis_cpu_pct=100 * redis_cpu / wall,
        other_cpu_pct=100 * (busy_after - busy_before - worker_cpu - redis_cpu) / wall,
        commands_per_job=(after.commands - before.commands) / jobs,
        scripts_per_job=(after.scripts - before.scripts) / jobs,
    )


def wait_quiet(max_s: float, threshold_cores: float = 0.2) -> None:
    """Wait (up to `max_s`) until the rest of the machine is idle: on a small machine
    another process's CPU would be taken from the worker or from Redis."""
    deadline = time.monotonic() + max_s
    while True:
        busy = machine_busy_s()
        time.sleep(1)
        if machine_busy_s() - busy < threshold_cores or time.monotonic() > deadline:
            return


def summary(runs: list[Run]) -> Run:
    return Run(*(median([getattr(r, f.name) for r in runs]) for f in dataclasses.fields(Run)))


def print_table(conc: int, results: dict[str, list[Run]]) -> None:
    for engine, runs in results.items():
        s = summary(runs)
        each = " ".join(f"{r.jobs_per_s:,.0f}" for r in runs)
        print(f"{conc:>4} {ENGINES[engine]:<13} {s.jobs_per_s:>8,.0f} {s.worker_cpu_pct:>7.0f} "
              f"{s.redis_cpu_pct:>6.0f} {s.other_cpu_pct:>6.0f} {s.commands_per_job:>9.2f} "
              f"{s.scripts_per_job:>12.2f}   {each}")  # fmt: skip
    medians = {e: summary(r).jobs_per_s for e, r in results.items()}
    ratios = [
        f"kk/{other} {medians['kk'] / medians[other]:.2f} ({paired(results, other)})"
        for other in ("node", "stock")
        if "kk" in medians and other in medians
    ]
    if ratios:
        print(f"{conc:>4} {'  '.join(ratios)}")
    print(flush=True)


def paired(results: dict[str, list[Run]], other: str) -> str:
    """The engines take turns within each run, so a run's two figures share the machine's
    state of that minute: the ratio of each pair is steadier than a ratio of medians when
    the machine's speed drifts between runs."""
    pairs = [
        k.jobs_per_s / o.jobs_per_s for k, o in zip(results["kk"], results[other], strict=True)
    ]
    ahead = sum(ratio > 1 for ratio in pairs)
    geomean = math.exp(sum(math.log(ratio) for ratio in pairs) / len(pairs))
    return f"per run: geometric mean {geomean:.2f}, kk ahead in {ahead} of {len(pairs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=30000, help="timed jobs per run")
    parser.add_argument("--warmup", type=int, default=5000, help="untimed jobs first, per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--quiet-wait", type=float, default=120, help="seconds to wait for an idle machine"
    )
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    parser.add_argument(
        "--kk-log",
        choices=["off", "text", "json"],
        default="off",
        help="kk's job logs as `kk worker` writes them (INFO, two lines per job); off by default",
    )
    parser.add_argument("--one", choices=["kk", "stock"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args)
        return
    engines = list(args.engines)
    if "node" in engines and (
        shutil.which("node") is None or not (NODE_DIR / "node_modules" / "bullmq").is_dir()
    ):
        print("node or bench/node/node_modules missing: Node's BullMQ skipped", file=sys.stderr)
        engines.remove("node")
    with private_redis() as url:
        print(f"{args.jobs} no-op jobs timed after {args.warmup} warm-up jobs in the same "
              f"process; median of {args.runs} runs, one process each")  # fmt: skip
        print(LEGEND.format(cores=os.cpu_count()))
        print(HEADER)
        for conc in args.concurrency:
            results: dict[str, list[Run]] = {e: [] for e in engines}
            for _ in range(args.runs):
                for engine in engines:
                    results[engine].append(run_engine(engine, url, args, conc))
            print_table(conc, results)


if __name__ == "__main__":
    main()
