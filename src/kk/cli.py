"""`kk serve` runs the API (with workers by default); `kk worker` runs workers alone;
`kk keygen` prints a new API key."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
import sys
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from kk.config import LOOPBACK_HOSTS, Settings, get_settings
from kk.errors import field_path

log = logging.getLogger("kk.cli")


def _check_exposure(settings: Settings) -> None:
    if settings.host not in LOOPBACK_HOSTS and not settings.auth_enabled:
        sys.exit(
            f"Refusing to listen on {settings.host} without an API key: anyone who can reach "
            "it could pause, clean or read your queues. Set KK_API_KEY (or KK_API_KEYS), or "
            "listen on 127.0.0.1."
        )


def _load_settings() -> Settings:
    """The settings, or exit with what is wrong (never the value: it may be a key)."""
    get_settings.cache_clear()
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "\n".join(
            f"  {field_path(err['loc']) or 'settings'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
            # A default computed from an invalid field: noise next to that field's error.
            if err["type"] != "default_factory_not_called"
        )
        sys.exit(f"Invalid configuration:\n{problems}")
    except SettingsError as exc:  # a variable that is not valid JSON where JSON is needed
        sys.exit(f"Invalid configuration: {exc}")


def keygen(args: argparse.Namespace) -> None:
    # 32 random bytes: 43 URL-safe characters, for KK_API_KEY / KK_API_KEYS / KK_READ_API_KEYS.
    print(secrets.token_urlsafe(32))


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from kk.compat.bounded_http import bounded_head_protocol

    if args.host:
        os.environ["KK_HOST"] = args.host
    if args.port is not None:
        os.environ["KK_PORT"] = str(args.port)
    if args.no_workers:
        os.environ["KK_RUN_WORKERS"] = "false"
    settings = _load_settings()
    _check_exposure(settings)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{shown}:{settings.port}"
    print(f"KK Backend on {base}  (dashboard: {base}/dashboard, API docs: {base}/docs)", flush=True)
    uvicorn.run(
        "kk.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        # X-Forwarded-* are read by our edge, and only from KK_TRUSTED_PROXIES.
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
        http=bounded_head_protocol(settings.max_header_bytes, settings.http_head_timeout_s),
    )


async def _run_workers(queues: list[str] | None, concurrency: int | None) -> None:
    from kk.logs import configure_logging
    from kk.metrics.registry import AppMetrics
    from kk.metrics.workers import WorkerMetrics
    from kk.runtime import Runtime

    settings = get_settings()
    configure_logging(settings)
    serve_metrics = settings.worker_metrics_port is not None
    metrics = AppMetrics()
    wanted = queues or settings.worker_queues or list(settings.queues)
    worker_metrics = WorkerMetrics(metrics, wanted)
    runtime = await Runtime.start(
        settings,
        with_workers=True,
        worker_queues=queues,
        concurrency=concurrency,
        job_listeners=worker_metrics.listeners() if serve_metrics else (),
    )
    metrics_server = None
    if serve_metrics:
        # The same worker series as `kk serve`, errors and backoff included.
        worker_metrics.attach(runtime.workers)
        metrics_server = await _start_metrics(settings, metrics, runtime)
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
    if metrics_server is not None:  # last: shutdown's own counts stay readable until then
        await metrics_server.stop()


async def _start_metrics(settings: Settings, metrics: Any, runtime: Any) -> Any:
    from kk.metrics.server import MetricsServer, metrics_app

    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    assert port is not None
    server = MetricsServer(metrics_app(settings, metrics, runtime), host, port)
    try:
        await server.start()
    except BaseException:
        await runtime.stop()
        raise
    shown = f"[{host}]" if ":" in host else host
    print(f"KK worker metrics on http://{shown}:{port}/metrics", flush=True)
    return server


def worker(args: argparse.Namespace) -> None:
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    if args.metrics_port is not None:
        os.environ["KK_WORKER_METRICS_PORT"] = str(args.metrics_port)
    if args.metrics_host:
        os.environ["KK_WORKER_METRICS_HOST"] = args.metrics_host
    settings = _load_settings()
    if (
        settings.worker_metrics_port is not None
        and settings.worker_metrics_host not in LOOPBACK_HOSTS
        and not settings.auth_enabled
    ):
        sys.exit(
            f"Refusing to serve metrics on {settings.worker_metrics_host} without an API key: "
            "set KK_API_KEY (or KK_READ_API_KEYS), or keep the default 127.0.0.1."
        )
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
    p_worker.add_argument(
        "--metrics-port",
        type=int,
        help="serve /metrics on this port (default: off; env KK_WORKER_METRICS_PORT)",
    )
    p_worker.add_argument("--metrics-host", help="address for --metrics-port (default: 127.0.0.1)")
    p_worker.set_defaults(func=worker)
    p_keygen = sub.add_parser("keygen", help="print a new random API key")
    p_keygen.set_defaults(func=keygen)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
