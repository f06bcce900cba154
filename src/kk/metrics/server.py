"""`/metrics` for a `kk worker` process, which has no HTTP API of its own.

The same router as `kk serve` (same names, same read-role check when keys are set), on a
small app served by uvicorn inside the worker's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from kk.config import Settings
from kk.errors import install_error_handlers
from kk.metrics.registry import AppMetrics
from kk.metrics.router import router

log = logging.getLogger("kk.metrics")


def metrics_app(settings: Settings, metrics: AppMetrics, runtime: Any) -> FastAPI:
    app = FastAPI(title="KK worker metrics", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(router)
    return app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The worker handles SIGTERM/SIGINT itself (graceful job shutdown) and stops this
        # server afterwards: uvicorn must not take the signals over.
        yield


class MetricsServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen, or raise if the port can't be bound (a worker asked to serve metrics
        that it can't serve should say so at start, not run silently without them)."""
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises the bind error
                raise OSError("the metrics server stopped at start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
