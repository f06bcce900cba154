"""A fast lane for the busiest route: `POST /api/queues/{queueName}/jobs`.

Producers call this route once per job, so its cost is the service's throughput. FastAPI's
routing, dependency injection and exception middleware cost several times the add itself
(one process served ~2,300 adds/s through them, ~7,000 through this lane; BENCHMARKS.md).
This lane answers a well-formed add straight from ASGI with the same pieces the route uses
(the `AddJob` body model, `require_admin`, `add_one`, the app's exception handlers), so
the answer, the errors and the side effects are the route's own.

Anything unusual (the email route, another content type, a body that does not validate)
goes to the full application with the body replayed, which answers it exactly as before.
The route stays in the OpenAPI document through its FastAPI definition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable
from typing import Any, cast

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kk.middleware import read_body, replaying
from kk.queues.router import add_job, add_one, router
from kk.queues.schemas import AddJob
from kk.security import require_admin

_ADD_PATH = re.compile(r"^/api/queues/([^/]+)/jobs$")
_ADD_ROUTE = next(r for r in router.routes if getattr(r, "endpoint", None) is add_job)
_JSON = b"application/json"


class HotAdd:
    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app  # the full application: everything this lane does not answer
        self.fastapi_app = fastapi_app

    def _eligible(self, scope: Scope) -> str | None:
        """The queue name when this lane may answer, else None."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        match = _ADD_PATH.match(scope["path"])
        service = getattr(self.fastapi_app.state, "queues", None)  # None until started
        if match is None or service is None:
            return None
        name = match.group(1)
        if name == "email" or name not in service.settings.queues:
            return None  # the email route has its own body; unknown names get their 404
        for header, value in scope["headers"]:
            if header == b"content-type":
                media_type = value.split(b";", 1)[0].strip().lower()
                return name if media_type == b"application/json" else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = self._eligible(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive) or b""  # no limit here: BodySizeLimit is outside
        replay = replaying(body, receive)
        try:
            parsed = AddJob.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError):
            await self.app(scope, replay, send)  # the route answers with its exact error
            return
        scope["app"] = self.fastapi_app
        scope["route"] = _ADD_ROUTE  # what routing would have recorded (the metrics label)
        request = Request(scope, replay)
        try:
            await require_admin(request)
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
