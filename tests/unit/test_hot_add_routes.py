"""The add fast lane is built from the routes it stands in for: their dependency lists, in
routing order, refusing at start-up what it could not run the same way."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, Request

from kk.app import QUEUE_ROUTERS
from kk.processors.add_routes import FAST_LANE
from kk.queues.hot_add import lane_routes
from kk.queues.router import add_job
from kk.queues.router import router as queues_router
from kk.security.access import require_admin


def test_the_lane_runs_each_route_s_own_dependencies_in_routing_order():
    generic, literal = lane_routes(QUEUE_ROUTERS, FAST_LANE)
    assert generic.route.endpoint is add_job
    assert generic.checks == [require_admin]
    # The email route has its own body: the lane leaves its path to it.
    assert literal["email"] is None
    cleanup = literal["cleanup"]
    assert cleanup is not None and cleanup.checks[0] is require_admin
    assert len(cleanup.checks) == 2  # and the queue's "registered" check
    assert set(literal) == {"email", "cleanup", "image-processing", "webhook"}


def test_a_dependency_the_lane_cannot_call_stops_start_up():
    async def needs_more(request: Request, extra: int = 1) -> None:
        return None

    router = APIRouter(prefix="/api/queues")

    @router.post("/special/jobs", dependencies=[Depends(needs_more)])
    async def special() -> None:
        return None

    with pytest.raises(RuntimeError, match="needs_more"):
        lane_routes([router, queues_router], {special})


def test_a_parametrised_route_in_front_of_the_add_route_stops_start_up():
    router = APIRouter(prefix="/api/queues")

    @router.post("/{anything}/jobs")
    async def shadow(anything: str) -> None:
        return None

    with pytest.raises(RuntimeError, match="would take the add route's paths"):
        lane_routes([router, queues_router], set())
