"""uvicorn's httptools protocol with two bounds on a request's head (line and headers).

httptools keeps whatever header bytes arrive until the head ends: three 100 MiB headers,
sent with no key, made a server take 340 MB more. And a head that never ends (slowloris)
holds its connection for ever: uvicorn's keep-alive timer runs only between requests.
Here:
- a head past `max_head_bytes` (checked after each chunk read, so at most one chunk more
  is held) is answered `431` and the connection closed;
- a head not complete `head_timeout_s` after its first byte (or after the connection
  opened) closes the connection.
The parsing stays httptools'. Overrides uvicorn's `HttpToolsProtocol` hooks
(`connection_made`, `data_received`, `on_headers_complete`, `connection_lost`): written
for the uvicorn in `kk.compat.ALWAYS`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class BoundedHeadProtocol(HttpToolsProtocol):
    max_head_bytes = 64 * 1024
    head_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.head_timeout_s, self._head_too_slow
        )

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Past the bound with the head still open: refused before another chunk is kept.
        too_big = self._in_head and self._head_bytes > self.max_head_bytes
        if too_big and not self.transport.is_closing():
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        if self._head_timer is None:  # a keep-alive connection's next request
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _stop_head_timer(self) -> None:
        timer, self._head_timer = getattr(self, "_head_timer", None), None
        if timer is not None:
            timer.cancel()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        self._stop_head_timer()
        body = b"Request header fields too large"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.transport.close()


def bounded_head_protocol(max_head_bytes: int, head_timeout_s: float) -> type[Any]:
    """The protocol class for `uvicorn.run(http=...)` with these bounds."""
    return type(
        "BoundedHeadProtocol",
        (BoundedHeadProtocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout_s": head_timeout_s},
    )
