"""`GET /metrics` in the Prometheus text format (needs the read role when keys are set)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.exposition import choose_encoder

from kk.metrics.registry import AppMetrics
from kk.security.access import require_read

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    dependencies=[Depends(require_read)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}}},
)
async def metrics(request: Request) -> Response:
    m: AppMetrics = request.app.state.metrics
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        timeout_s = request.app.state.settings.health_timeout_ms / 1000
        await m.snapshot.refresh(runtime, timeout_s, m.observe_redis("scrape"))
    # Text format 0.0.4 unless the scraper asks for OpenMetrics (as Prometheus does).
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(
        encode(m.registry),
        media_type=content_type,
        headers={"Cache-Control": "no-cache, no-store, must-revalidate"},
    )
