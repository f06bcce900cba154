"""The FastAPI application: routers of every domain, error envelopes, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from kk import __version__
from kk.errors import install_error_handlers
from kk.logs import configure_logging
from kk.middleware import BodySizeLimit, RequestLog
from kk.openapi import install_openapi
from kk.queues.router import router as queues_router
from kk.runtime import Runtime
from kk.settings import Settings, get_settings

log = logging.getLogger("kk.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings, with_workers=settings.run_workers)
        app.state.runtime = runtime
        app.state.queues = runtime.queues
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="KK Backend",
        version=__version__,
        description="Redis job queues (BullMQ data model), a Redis cache and health checks.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestLog)
    app.include_router(queues_router)
    return app
