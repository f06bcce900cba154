"""Processor throughput: kk's webhook, email and image workers against a bare loop doing the
same outbound work, side by side in one run.

Everything is local: a private Redis, and peers on 127.0.0.1 in processes of their own (a
minimal keep-alive HTTP/1.1 receiver on uvloop, an aiosmtpd SMTP server), plus a JPEG
written to a temporary storage root. Per kind and concurrency, each run starts:
- `kk`: a process running kk's worker pool with the built-in processor (as `kk worker`
  does: uvloop, gc.freeze). It drains a warm-up batch, pauses; the timed batch is added
  while it is paused, Redis's counters are read, and the clock runs from `resume()` to the
  last job's `completed` event.
- `bare`: a process running a plain loop at the same concurrency, no Redis: a shared
  `httpx.AsyncClient` POSTing the same signed body, `aiosmtplib.send` of the same message,
  Pillow thumbnailing the same file. Warm-up first, then the timed batch.
- `aiohttp` (webhooks only): the same loop on a shared `aiohttp.ClientSession`, the library
  kk's deliveries run on.
It prints the median of the runs: jobs/s, the CPU of the engine's process, of the peer
(receiver / SMTP server) and of Redis over the timed window (% of one core), and Redis
commands per job (INFO commandstats, those inside Lua scripts included).

Run: `.venv/bin/python -m bench.webhook_throughput [--kinds webhook email image]
[--concurrency 1 50] [--runs R] [--jobs N] [--warmup N] [--kk-src DIR]`. `--kk-src` runs
the kk side on another tree of the package (e.g. an older checkout's `src`), to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import ServerCounters, median, private_redis, process_cpu_s
from bench.worker_throughput import Completions, expect, read_phase, say, stdin_lines, tell

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "bench"
TIMEOUT_S = 300  # per run: a slow engine is killed, not waited for
SECRET = "bench-secret"
# Timed jobs and warm-up jobs per run, by kind (image jobs cost ~100x a delivery's CPU).
DEFAULTS = {"webhook": (5000, 1000), "email": (1000, 200), "image": (400, 50)}
QUEUES = {"webhook": "webhook", "email": "email", "image": "image-processing"}
PAYLOAD = {"orderId": 42, "total": 19.9, "items": [{"sku": "A-1", "qty": 2}]}
MAIL = {"to": "ada@example.com", "subject": "Welcome", "template": "welcome",
        "data": {"username": "Ada", "activationLink": "https://example.com/a?t=1"}}  # fmt: skip
# What a plain loop sends: the body's signature and ids are made up, the sizes are kk's.
BARE_HEADERS = {"Content-Type": "application/json", "X-KK-Event": "order.created",
                "X-KK-Signature": "sha256=" + "0" * 64, "Idempotency-Key": "webhook-1"}  # fmt: skip
SOURCE = "in.jpg"
IMAGE = {"source": SOURCE, "operation": "thumbnail", "width": 160, "height": 160,
         "format": "webp"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Peers:
    http_port: int
    smtp_port: int
    storage: str

    def job_data(self, kind: str, n: int) -> dict[str, Any]:
        if kind == "webhook":
            url = f"http://127.0.0.1:{self.http_port}/hook"
            return {"url": url, "payload": {**PAYLOAD, "n": n}, "event": "order.created"}
        if kind == "email":
            return MAIL
        return {**IMAGE, "output": f"out/{n % 64}.webp"}


# --- peers, each in a process of its own (`--serve http|smtp`)


class _HttpReceiver(asyncio.Protocol):
    """Keep-alive HTTP/1.1, Content-Length bodies only: answers 200 "ok" to anything."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


async def serve_http() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_HttpReceiver, "127.0.0.1", 0, backlog=1024)
    say(port=server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


def serve_smtp() -> None:
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 Message accepted"

    with socket.socket() as probe:  # the controller checks its port, so 0 will not do
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    say(port=port)
    threading.Event().wait()


def start_peer(
    which: str, started: list[subprocess.Popen[str]]
) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.webhook_throughput", "--serve", which],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        cwd=ROOT,
    )  # fmt: skip
    started.append(proc)  # killed by the caller, whatever happens next
    assert proc.stdout is not None
    return proc, int(json.loads(proc.stdout.readline())["port"])


# --- one engine, in its own process (`--one kk|bare`)


def kk_settings(url: str, kind: str, peers: Peers, conc: int, data_dir: str) -> Any:
    from kk.config import QueueConfig, Settings

    return Settings(
        data_dir=Path(data_dir), redis_url=url, queue_prefix=PREFIX,
        queues={QUEUES[kind]: QueueConfig(concurrency=conc)}, ssrf_allow=["127.0.0.1"],
        webhook_secret=SECRET, smtp_url=f"smtp://127.0.0.1:{peers.smtp_port}",
        storage_root=Path(peers.storage),
    )  # fmt: skip


async def run_kk(args: argparse.Namespace, peers: Peers, reader: asyncio.StreamReader) -> None:
    from kk.processors.base import JobContext
    from kk.processors.registry import BUILTIN_PROCESSORS
    from kk.workers.pool import WorkerPool

    queue = QUEUES[args.kind]
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as data_dir:
        settings = kk_settings(args.url, args.kind, peers, args.concurrency[0], data_dir)
        context = JobContext(settings, None, None)  # type: ignore[arg-type,unused-ignore]
        pool = WorkerPool(settings, args.url, {queue: BUILTIN_PROCESSORS[queue]}, context)
        pool.start()
        gc.collect()
        gc.freeze()  # as `kk worker` does after start-up
        worker = pool.workers[queue]
        completions = Completions(worker)
        await completions.reach(args.warmup)
        await worker.pause()
        say(phase="paused", warmup=completions.count)
        await expect(reader, "go")
        completions.reset()
        started = time.perf_counter()
        worker.resume()
        seconds = await completions.reach(args.jobs) - started
        say(phase="done", seconds=seconds)
        await expect(reader, "close")
        await pool.close()


async def bare_job(kind: str, peers: Peers, engine: str = "bare") -> Any:
    """One job's outbound work done the plain way, reusing what a plain loop would reuse.
    For webhooks, `bare` is a shared httpx client, `aiohttp` a shared aiohttp session (the
    library kk's deliveries run on)."""
    import aiosmtplib
    import httpx
    from PIL import Image

    if kind == "webhook" and engine == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(trust_env=False)
        url = f"http://127.0.0.1:{peers.http_port}/hook"
        body = json.dumps(PAYLOAD, separators=(",", ":"), sort_keys=True).encode()
        headers = BARE_HEADERS

        async def post_aiohttp() -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                response.raise_for_status()

        return post_aiohttp
    if kind == "webhook":
        client = httpx.AsyncClient(trust_env=False)
        url = f"http://127.0.0.1:{peers.http_port}/hook"
        body = json.dumps(PAYLOAD, separators=(",", ":"), sort_keys=True).encode()
        headers = BARE_HEADERS

        async def post() -> None:
            response = await client.post(url, content=body, headers=headers)
            response.raise_for_status()

        return post
    if kind == "email":
        from email.message import EmailMessage

        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "bench@localhost", MAIL["to"], MAIL["subject"]
        msg.set_content("Hello Ada")
        msg.add_alternative("<p>Hello Ada</p>", subtype="html")

        async def send() -> None:
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=peers.smtp_port)

        return send
    source = Path(peers.storage) / SOURCE

    def thumbnail(n: int) -> None:
        with Image.open(source) as image:
            image.thumbnail((160, 160), Image.Resampling.LANCZOS)
            image.save(Path(peers.storage) / "bare" / f"{n % 64}.webp", "WEBP", quality=85)

    async def resize() -> None:
        await asyncio.to_thread(thumbnail, int(time.perf_counter_ns()))

    return resize


async def run_bare(args: argparse.Namespace, peers: Peers, reader: asyncio.StreamReader) -> None:
    (Path(peers.storage) / "bare").mkdir(exist_ok=True)
    one = await bare_job(args.kind, peers, args.one)

    async def batch(count: int) -> None:
        left = iter(range(count))

        async def lane() -> None:
            for _ in left:
                await one()

        await asyncio.gather(*(lane() for _ in range(args.concurrency[0])))

    await batch(args.warmup)
    say(phase="paused", warmup=args.warmup)
    await expect(reader, "go")
    started = time.perf_counter()
    await batch(args.jobs)
    say(phase="done", seconds=time.perf_counter() - started)
    await expect(reader, "close")


def one(args: argparse.Namespace) -> None:
    import uvloop  # as `kk worker` runs (its CLI sets uvloop); the bare loop gets it too

    peers = Peers(**json.loads(args.peers))

    async def run() -> None:
        reader = await stdin_lines()
        await (run_kk if args.one == "kk" else run_bare)(args, peers, reader)

    uvloop.run(run())


# --- the parent


@dataclasses.dataclass(frozen=True)
class Run:
    jobs_per_s: float
    engine_cpu_pct: float
    peer_cpu_pct: float
    redis_cpu_pct: float
    commands_per_job: float


async def fill(url: str, kind: str, peers: Peers, jobs: int, offset: int) -> None:
    from bullmq import Queue

    from kk.infra.redis_client import worker_client

    client = worker_client(url)
    q = Queue(QUEUES[kind], {"connection": client, "prefix": PREFIX})
    for start in range(offset, offset + jobs, 1000):
        batch = [
            {"name": kind, "data": peers.job_data(kind, i), "opts": {"removeOnComplete": True}}
            for i in range(start, min(offset + jobs, start + 1000))
        ]
        await q.addBulk(batch)
    await q.close()
    await client.aclose()


def run_engine(
    engine: str, kind: str, url: str, peers: Peers, peer_pid: int, args: argparse.Namespace,
    conc: int, jobs: int, warmup: int,
) -> Run:  # fmt: skip
    env = dict(os.environ)
    if engine == "kk" and args.kk_src:
        env["PYTHONPATH"] = os.pathsep.join([args.kk_src, str(ROOT)])
    command = [sys.executable, "-m", "bench.webhook_throughput", "--one", engine, "--kind", kind,
               "--url", url, "--peers", json.dumps(dataclasses.asdict(peers)), "--jobs",
               str(jobs), "--warmup", str(warmup), "--concurrency", str(conc)]  # fmt: skip
    if engine == "kk":
        asyncio.run(fill(url, kind, peers, warmup, 0))
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
            cwd=ROOT, env=env,
        )  # fmt: skip
        killer = threading.Timer(TIMEOUT_S, proc.kill)
        killer.start()
        try:
            read_phase(proc, "paused", stderr)
            if engine == "kk":
                asyncio.run(fill(url, kind, peers, jobs, warmup))
            engine_before, peer_before = process_cpu_s(proc.pid), process_cpu_s(peer_pid)
            before = ServerCounters.read(url)
            tell(proc, "go")
            done = read_phase(proc, "done", stderr)
            after = ServerCounters.read(url)
            engine_after, peer_after = process_cpu_s(proc.pid), process_cpu_s(peer_pid)
            tell(proc, "close")
            proc.wait()
        finally:
            killer.cancel()
            if proc.poll() is None:
                proc.kill()
    wall = after.at - before.at
    return Run(
        jobs_per_s=jobs / float(done["seconds"]),
        engine_cpu_pct=100 * (engine_after - engine_before) / wall,
        peer_cpu_pct=100 * (peer_after - peer_before) / wall,
        redis_cpu_pct=100 * (after.cpu_s - before.cpu_s) / wall,
        commands_per_job=(after.commands - before.commands) / jobs,
    )


def summary(runs: list[Run]) -> Run:
    return Run(*(median([getattr(r, f.name) for r in runs]) for f in dataclasses.fields(Run)))


def print_rows(kind: str, conc: int, results: dict[str, list[Run]]) -> None:
    for engine, runs in results.items():
        s = summary(runs)
        each = " ".join(f"{r.jobs_per_s:,.0f}" for r in runs)
        redis = f"{s.redis_cpu_pct:>6.0f} {s.commands_per_job:>9.1f}" if engine == "kk" else (
            f"{'-':>6} {'-':>9}")  # fmt: skip
        print(f"{kind:<8} {conc:>4} {engine:<7} {s.jobs_per_s:>8,.0f} {s.engine_cpu_pct:>7.0f} "
              f"{s.peer_cpu_pct:>6.0f} {redis}   {each}")  # fmt: skip
    kk = summary(results["kk"]).jobs_per_s
    ratios = [f"kk/{e} {kk / summary(results[e]).jobs_per_s:.2f}" for e in results if e != "kk"]
    print(f"{kind:<8} {conc:>4} {', '.join(ratios)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kinds", nargs="+", choices=list(DEFAULTS), default=list(DEFAULTS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="timed jobs per run (default: by kind)")
    parser.add_argument("--warmup", type=int, help="untimed jobs first (default: by kind)")
    parser.add_argument("--kk-src", help="a directory holding the `kk` package to measure")
    parser.add_argument("--one", choices=["kk", "bare", "aiohttp"], help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=["http", "smtp"], help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--peers", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "http":
        import uvloop

        uvloop.run(serve_http())
        return
    if args.serve == "smtp":
        serve_smtp()
        return
    if args.one:
        one(args)
        return
    with (
        private_redis() as url,
        tempfile.TemporaryDirectory(prefix="kk-bench-storage-") as storage,
    ):
        make_image(Path(storage) / SOURCE)
        peers_procs: list[subprocess.Popen[str]] = []
        try:
            http, http_port = start_peer("http", peers_procs)
            smtp, smtp_port = start_peer("smtp", peers_procs)
            peers = Peers(http_port, smtp_port, storage)
            print(f"median of {args.runs} runs; engine%, peer%, redis%: CPU over the timed "
                  f"window in % of one core ({os.cpu_count()} on this machine); cmds/job: "
                  "Redis commands, those inside scripts included")  # fmt: skip
            print(f"{'kind':<8} {'conc':>4} {'side':<5} {'jobs/s':>8} {'engine%':>7} "
                  f"{'peer%':>6} {'redis%':>6} {'cmds/job':>9}   jobs/s of each run")  # fmt: skip
            for kind in args.kinds:
                jobs, warmup = args.jobs or DEFAULTS[kind][0], args.warmup or DEFAULTS[kind][1]
                peer_pid = smtp.pid if kind == "email" else http.pid
                for conc in args.concurrency:
                    engines = ["kk", "bare", "aiohttp"] if kind == "webhook" else ["kk", "bare"]
                    results: dict[str, list[Run]] = {engine: [] for engine in engines}
                    for _ in range(args.runs):
                        for engine in results:
                            results[engine].append(run_engine(
                                engine, kind, url, peers, peer_pid, args, conc, jobs, warmup
                            ))  # fmt: skip
                    print_rows(kind, conc, results)
        finally:
            for proc in peers_procs:
                proc.kill()
                proc.wait()


def make_image(path: Path) -> None:
    """A 1024x768 photo-like JPEG (gradients and noise, ~100 kB)."""
    from PIL import Image

    noise = Image.effect_noise((1024, 768), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((1024, 768)).convert("RGB")
    Image.blend(noise, gradient, 0.5).save(path, "JPEG", quality=90)


if __name__ == "__main__":
    main()
