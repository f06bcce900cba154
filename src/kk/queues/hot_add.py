"""A fast lane for the busiest route: `POST /api/queues/{queueName}/jobs`.

Producers call this route once per job, so its cost is the service's throughput. FastAPI's
routing, dependency injection and exception middleware cost several times the add itself
(one process served ~2,300 adds/s through them, ~7,000 through this lane; BENCHMARKS.md).
This lane answers a well-formed add straight from ASGI with the same pieces the route uses
(the `AddJob` body model, the route's own dependency list, `add_one`, the app's exception
handlers), so the answer, the errors and the side effects are the route's own. Which route
a path would reach is read from the app's routes at start-up, in routing order: a literal
route in front of the generic one (the email route) keeps its paths unless it is marked as
answerable by the lane.

Anything unusual (another content type, a body that does not validate) goes to the full
application with the body replayed, which answers it exactly as before. The route stays
in the OpenAPI document through its FastAPI definition.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kk.errors import AppError
from kk.middleware import read_body, replaying
from kk.queues.router import add_job, add_one
from kk.queues.schemas import AddJob

_ADD_PATH = re.compile(r"^/api/queues/([^/]+)/jobs$")
_JSON = b"application/json"
RequestCheck = Callable[[Request], Awaitable[Any]]


def _request_checks(route: APIRoute) -> list[RequestCheck]:
    """The route's `dependencies` list (auth, rate limit, ...), to be called as the route
    would call them. Each must take the request alone: one the lane can't call the same way
    stops start-up rather than being skipped. The endpoint's parameters (queue name, body)
    are what the lane itself parses."""
    checks = []
    for depends in route.dependencies:  # `dependencies=[...]`: the checks, not the params
        call = depends.dependency
        params = list(inspect.signature(call).parameters.values()) if call else []
        if call is None or len(params) != 1 or params[0].annotation not in (Request, "Request"):
            raise RuntimeError(
                f"the add fast lane can't run {call!r} of {route.path}: a route dependency "
                "must take only the request (or serve the route without the lane)"
            )
        checks.append(cast(RequestCheck, call))
    return checks


@dataclass(frozen=True)
class LaneRoute:
    route: APIRoute
    checks: list[RequestCheck]


def lane_routes(
    routers: Sequence[APIRouter], also: set[Any]
) -> tuple[LaneRoute, dict[str, LaneRoute | None]]:
    """The generic add route, and for each literal `/api/queues/<name>/jobs` POST route that
    routing tries first: the lane's stand-in for it, or None when the lane must leave that
    path to the route (its endpoint is not in `also`). Any other route in front of the
    generic one that could take such a path stops start-up: it would be shadowed.
    `routers` are the /api/queues routers in the order the app includes them."""
    literal: dict[str, LaneRoute | None] = {}
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute) or "POST" not in (route.methods or ()):
            continue
        if route.endpoint is add_job:
            return LaneRoute(route, _request_checks(route)), literal
        match = _ADD_PATH.match(route.path)
        if match and "{" not in route.path:
            lane = LaneRoute(route, _request_checks(route)) if route.endpoint in also else None
            literal.setdefault(match.group(1), lane)
        elif route.path_regex.match("/api/queues/any-name/jobs"):
            raise RuntimeError(f"{route.path} would take the add route's paths")
    raise RuntimeError("the generic add route is not registered")


class HotAdd:
    def __init__(
        self, app: ASGIApp, fastapi_app: FastAPI, routers: Sequence[APIRouter], also: set[Any]
    ) -> None:
        self.app = app  # the full application: everything this lane does not answer
        self.fastapi_app = fastapi_app
        self._routes = lane_routes(routers, also)  # checked when the app is built

    def _eligible(self, scope: Scope) -> tuple[str, LaneRoute] | None:
        """The queue name and the route the lane stands in for, else None."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        match = _ADD_PATH.match(scope["path"])
        service = getattr(self.fastapi_app.state, "queues", None)  # None until started
        if match is None or service is None:
            return None
        name = match.group(1)
        generic, literal = self._routes
        lane = literal.get(name, generic)
        if lane is None:
            return None  # the route's own body
        try:
            service.queue(name)  # the check `checked_queue` runs for the route
        except AppError:
            return None  # routing answers: the bad name's 422 or the unknown queue's 404
        for header, value in scope["headers"]:
            if header == b"content-type":
                media_type = value.split(b";", 1)[0].strip().lower()
                return (name, lane) if media_type == b"application/json" else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        eligible = self._eligible(scope)
        if eligible is None:
            await self.app(scope, receive, send)
            return
        name, lane = eligible
        body = await read_body(receive) or b""  # no limit here: BodySizeLimit is outside
        replay = replaying(body, receive)
        try:
            parsed = AddJob.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError):
            await self.app(scope, replay, send)  # the route answers with its exact error
            return
        scope["app"] = self.fastapi_app
        scope["route"] = lane.route  # what routing would have recorded (the metrics label)
        request = Request(scope, replay)
        try:
            for check in lane.checks:
                await check(request)
            result = await add_one(self.fastapi_app.state.queues, name, parsed)
        except Exception as exc:
            response, expected = await self._error_response(request, exc)
            await response(scope, replay, send)
            if not expected:
                raise  # for the server's log, as Starlette's outermost middleware does
            return
        answer = result.model_dump_json().encode()
        headers = [(b"content-length", b"%d" % len(answer)), (b"content-type", _JSON)]
        # 200 for a duplicate `jobId` (the existing job kept), 201 for a new job.
        status = result.status_code
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _error_response(self, request: Request, exc: Exception) -> tuple[Any, bool]:
        """The app's own handler for this error (the closest class wins, as in Starlette),
        and whether the error was an expected one (a client's or Redis's)."""
        handlers = self.fastapi_app.exception_handlers
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                # Every handler the app has (kk.errors, FastAPI's defaults) is async.
                answer = cast(Awaitable[Response], handler(request, exc))
                return await answer, cls is not Exception
        raise exc
