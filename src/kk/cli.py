"""`kk serve` runs the API (with workers by default); `kk worker` runs workers alone."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys

from kk.settings import LOOPBACK_HOSTS, Settings, get_settings

log = logging.getLogger("kk.cli")


def _check_exposure(settings: Settings) -> None:
    if settings.host not in LOOPBACK_HOSTS and not settings.auth_enabled:
        sys.exit(
            f"Refusing to listen on {settings.host} without an API key: anyone who can reach "
            "it could pause, clean or read your queues. Set KK_API_KEY (or KK_API_KEYS), or "
            "listen on 127.0.0.1."
        )


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.host:
        os.environ["KK_HOST"] = args.host
    if args.port is not None:
        os.environ["KK_PORT"] = str(args.port)
    if args.no_workers:
        os.environ["KK_RUN_WORKERS"] = "false"
    get_settings.cache_clear()
    settings = get_settings()
    _check_exposure(settings)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"KK Backend on http://{shown}:{settings.port}  (docs: /docs)", flush=True)
    uvicorn.run(
        "kk.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )


async def _run_workers(queues: list[str] | None, concurrency: int | None) -> None:
    from kk.logs import configure_logging
    from kk.runtime import Runtime

    settings = get_settings()
    configure_logging(settings)
    runtime = await Runtime.start(
        settings, with_workers=True, worker_queues=queues, concurrency=concurrency
    )
    gc.collect()
    gc.freeze()  # as in the app: keep full collections short on the job path
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    names = ", ".join(runtime.workers.workers) if runtime.workers else ""
    print(f"KK worker running for: {names}", flush=True)
    await stop.wait()
    log.info("Stopping: finishing active jobs (grace %.1fs)", settings.shutdown_grace_s)
    await runtime.stop()


def worker(args: argparse.Namespace) -> None:
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(_run_workers(queues, args.concurrency))
    except ValueError as exc:
        sys.exit(str(exc))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the HTTP API (and workers, unless --no-workers)")
    p_serve.add_argument("--host")
    p_serve.add_argument("--port", type=int)
    p_serve.add_argument("--no-workers", action="store_true", help="API only (stateless tier)")
    p_serve.set_defaults(func=serve)
    p_worker = sub.add_parser("worker", help="run workers without the HTTP API")
    p_worker.add_argument("--queues", help="comma-separated queue names (default: all)")
    p_worker.add_argument("--concurrency", type=int, help="override each queue's concurrency")
    p_worker.set_defaults(func=worker)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
