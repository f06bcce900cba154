"""`/health` (terminus shape), `/health/redis`, and the Kubernetes probes.

These answers are bare (no `{success, data}` envelope): load balancers and terminus
clients read `status` at the top level. Probes must never be cached.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from kk.health.schemas import HealthReport, LiveProbe, RedisHealth
from kk.health.service import HealthService
from kk.security.access import require_read

router = APIRouter(tags=["health"])

NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate"}


def _answer(body: BaseModel, ok: bool) -> JSONResponse:
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=200 if ok else 503,
        headers=NO_CACHE,
    )


def _service(request: Request) -> HealthService:
    return request.app.state.health


def _runtime(request: Request) -> Any:
    return getattr(request.app.state, "runtime", None)


_REPORT: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthReport, "description": "A dependency is down"}
}


@router.get(
    "/health", response_model=HealthReport, responses=_REPORT, dependencies=[Depends(require_read)]
)
async def health(request: Request) -> JSONResponse:
    """Details (sizes, error messages naming hosts) need the read role when keys are set;
    `/health/ready` gives the same verdict to anyone."""
    report = await _service(request).check(_runtime(request))
    return _answer(report, report.ok)


@router.get(
    "/health/redis",
    response_model=RedisHealth,
    responses={503: {"model": RedisHealth, "description": "Redis is down"}},
    dependencies=[Depends(require_read)],
)
async def health_redis(request: Request) -> JSONResponse:
    result = await _service(request).redis(_runtime(request))
    return _answer(result, result.status == "up")


@router.get("/health/live", response_model=LiveProbe)
async def live() -> JSONResponse:
    """The process serves requests; dependencies are not checked on purpose (restarting
    this process would not bring Redis back)."""
    return _answer(LiveProbe(), True)


@router.get("/health/ready", response_model=HealthReport, responses=_REPORT)
async def ready(request: Request) -> JSONResponse:
    """Start-up finished and every dependency answers; open, so it shows no details."""
    report = await _service(request).check(_runtime(request))
    return _answer(report.public(), report.ok)
