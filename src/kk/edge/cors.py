"""CORS for /api with an allow-list of exact origins (KK_CORS_ORIGINS), never a wildcard.

A listed origin is trusted to call the API with a key its page holds: preflights are
answered for the methods the path really has, with the headers a key needs. Credentials
are never allowed, so the dashboard's cookie session cannot be used, nor its answers read,
from another origin. Anything else (an unlisted origin, a path outside /api, a method the
path lacks) gets no CORS headers, and its preflight is refused with a 403 envelope.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kk.errors import ErrorCode, error_response

ALLOW_HEADERS = "Authorization, X-API-Key, Content-Type, X-Request-Id"
EXPOSE_HEADERS = "Retry-After, X-Request-Id"
MAX_AGE_S = "600"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Cors:
    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, origins: list[str]) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.origins = frozenset(origins)

    def methods_of(self, path: str) -> set[str]:
        """Every method some route serves at this concrete path, asked of the routes
        themselves (`matches`), so included routers and path converters count."""
        methods: set[str] = set()
        for method in _METHODS:
            probe = {"type": "http", "path": path, "method": method, "root_path": "",
                     "headers": [], "query_string": b""}  # fmt: skip
            if any(r.matches(probe)[0] is Match.FULL for r in self.fastapi_app.router.routes):
                methods.add(method)
        return methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = scope["type"] == "http" and scope["path"].startswith("/api/")
        if scope["type"] != "http" or (scope["method"] != "OPTIONS" and not (api and self.origins)):
            await self.app(scope, receive, send)  # the common case costs two comparisons
            return
        headers = dict(scope["headers"])  # last one wins: fine for these single-valued headers
        origin = headers.get(b"origin", b"").decode("latin-1")
        wanted = headers.get(b"access-control-request-method")
        if scope["method"] == "OPTIONS" and origin and wanted is not None:
            await self._preflight(scope, receive, send, origin, wanted.decode("latin-1"), api)
            return
        if not (api and self.origins):
            await self.app(scope, receive, send)
            return
        listed = origin.lower() in self.origins

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")  # answers differ per origin
                if listed:
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, origin: str, wanted: str, api: bool
    ) -> None:
        methods = self.methods_of(scope["path"]) if api else set()
        if origin.lower() not in self.origins:
            reason = f"Origin '{origin[:100]}' is not allowed (KK_CORS_ORIGINS)"
        elif not api:
            reason = "Cross-origin requests are only offered for /api routes"
        elif wanted.upper() not in methods:
            reason = f"{wanted[:20]} is not a method of {scope['path']}"
        else:
            allowed = ", ".join(sorted(methods))
            response_headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", allowed.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
                (b"access-control-max-age", MAX_AGE_S.encode()),
                (b"vary", b"Origin"),
                (b"content-length", b"0"),
            ]
            await send({"type": "http.response.start", "status": 204, "headers": response_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        response = error_response(
            scope["path"], ErrorCode.FORBIDDEN, f"CORS preflight refused: {reason}"
        )
        response.headers.add_vary_header("Origin")
        await response(scope, receive, send)
