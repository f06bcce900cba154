"""The FastAPI application: routers of every domain, error envelopes, lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from kk import __version__
from kk.api_docs import install_docs
from kk.cache.router import router as cache_router
from kk.config import Settings, get_settings
from kk.dashboard.page import install_dashboard
from kk.edge.cors import Cors
from kk.edge.host_check import HostCheck
from kk.edge.proxies import TrustedProxies
from kk.edge.redirects import RelativeRedirects
from kk.errors import install_error_handlers
from kk.health.router import router as health_router
from kk.health.service import HealthService
from kk.logs import configure_logging
from kk.metrics.middleware import HttpMetrics
from kk.metrics.registry import AppMetrics
from kk.metrics.router import router as metrics_router
from kk.metrics.workers import WorkerMetrics
from kk.middleware import BodySizeLimit, RequestLog
from kk.openapi import install_openapi
from kk.processors.add_routes import FAST_LANE
from kk.processors.add_routes import router as builtin_add_router
from kk.queues.events import EventStreams
from kk.queues.hot_add import HotAdd
from kk.queues.router import router as queues_router
from kk.runtime import Runtime

log = logging.getLogger("kk.app")
# In routing order: the built-in queues' literal add paths before `/{queueName}/jobs`. The
# add fast lane reads the same list, so it stands in for the route routing would pick.
QUEUE_ROUTERS = (builtin_add_router, queues_router)


class KKApp(FastAPI):
    """FastAPI behind our own edge: request id and log, metrics, trusted proxies, the Host
    check, CORS, body limit and the add route's fast lane wrap the whole application, so
    the fast lane gets the same logging, metrics, checks and limits as every other route."""

    edge: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.edge is not None and scope["type"] == "http":
            await self.edge(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def wrap_edge(self, settings: Settings, metrics: AppMetrics) -> None:
        async def inner(scope: Scope, receive: Receive, send: Send) -> None:
            await FastAPI.__call__(self, scope, receive, send)

        edge: ASGIApp = RelativeRedirects(HotAdd(inner, self, QUEUE_ROUTERS, FAST_LANE))
        edge = BodySizeLimit(edge, max_bytes=settings.max_body_bytes)
        edge = Cors(edge, self, settings.cors_origins)
        # Rebinding: open mode always checks Host; keyed mode once KK_ALLOWED_HOSTS is set.
        if settings.allowed_hosts or not settings.auth_enabled:
            edge = HostCheck(edge, settings.allowed_hosts)
        edge = TrustedProxies(edge, settings.trusted_proxies)
        edge = RequestLog(edge)
        self.edge = HttpMetrics(edge, metrics=metrics) if settings.metrics_enabled else edge


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker_queues = (settings.worker_queues or settings.queues) if settings.run_workers else ()
        worker_metrics = WorkerMetrics(metrics, worker_queues)
        runtime = await Runtime.start(
            settings,
            with_workers=settings.run_workers,
            job_listeners=worker_metrics.listeners(),
        )
        app.state.runtime = runtime
        worker_metrics.attach(runtime.workers)
        app.state.queues = runtime.queues
        app.state.event_streams.start(runtime.redis_url)
        # Start-up objects live as long as the process: move them out of the collector's
        # reach, so full collections stay short and don't stall requests.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.event_streams.close()
            await app.state.health.close()
            await runtime.stop()

    app = KKApp(
        title="KK Backend",
        version=__version__,
        description="Redis job queues (BullMQ data model), a Redis cache and health checks.",
        lifespan=lifespan,
        docs_url=None,  # kk.api_docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    # Health and metrics: one registry per app, health checks timing Redis into it.
    metrics = AppMetrics()
    app.state.metrics = metrics
    app.state.health = HealthService(settings, metrics.observe_redis("health"))
    app.state.event_streams = EventStreams(settings)  # result waits and SSE (kk.queues.events)
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.wrap_edge(settings, metrics)
    if settings.metrics_enabled:
        app.include_router(metrics_router)
    app.include_router(health_router)
    for router in QUEUE_ROUTERS:
        app.include_router(router)
    app.include_router(cache_router)
    install_dashboard(app)
    return app
