"""Pure ASGI middleware counting requests and timing them by route template.

The label is the matched route's template (`/api/queues/{queueName}/stats`), never the raw
path: ids in paths would create a series per id. Anything no route matched shares one
label, and unusual methods share "OTHER".
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kk.metrics.registry import AppMetrics

UNMATCHED = "<unmatched>"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_template(scope: Scope, base_root_path: str) -> str:
    """The template of the route that served the request (read after the app ran: the
    router records it in the scope). Sub-apps mounted under a prefix add their prefix."""
    root_path = scope.get("root_path", "") or ""
    prefix = root_path[len(base_root_path) :] if root_path.startswith(base_root_path) else ""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str) and template:
        return prefix + template
    if prefix:  # a mounted app without routes of its own (static files)
        return prefix + "/{path}"
    return UNMATCHED


class HttpMetrics:
    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # Labelled children by label values: `labels()` validates and locks on every call,
        # a dictionary hit does not. Label values are bounded (methods, templates, codes).
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        base_root_path = scope.get("root_path", "") or ""
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        m = self.metrics
        m.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            m.http_in_flight.dec()
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = route_template(scope, base_root_path)
            counter = self._counters.get((method, route, status))
            if counter is None:
                counter = m.http_requests.labels(method, route, str(status))
                self._counters[(method, route, status)] = counter
            counter.inc()
            timer = self._timers.get((method, route))
            if timer is None:
                timer = self._timers[(method, route)] = m.http_duration.labels(method, route)
            timer.observe(elapsed)
