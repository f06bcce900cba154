"""Redirects that never echo the request's `Host`.

Starlette answers `/api/queues/stats/` with a 307 to the absolute URL built from `Host`.
With keys and no KK_ALLOWED_HOSTS no Host is refused, so a request naming any host would
get that host back in `Location` (cache poisoning, open redirects through a shared cache
or a careless client). A relative reference (`/api/queues/stats`) means the same to a
client and names no host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RelativeRedirects:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                headers = MutableHeaders(scope=message)
                location = headers.get("location")
                if location:
                    parts = urlsplit(location)
                    if parts.netloc:  # this service's own URLs: our redirects never leave it
                        path = parts.path or "/"
                        headers["location"] = path + (f"?{parts.query}" if parts.query else "")
            await send(message)

        await self.app(scope, receive, send_relative)
