"""A real HTTP server on 127.0.0.1 for unit tests: records requests, answers as scripted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    # False: no Content-Length, the body ends when the connection closes (HTTP/1.0).
    send_length: bool = True


@dataclass
class LocalServer:
    url: str
    requests: list[Recorded]
    # Path -> replies used in order; the last one repeats. Unknown paths answer 200 "ok".
    replies: dict[str, list[Reply]]
    # Peer addresses of the TCP connections accepted, in order.
    connections: list[str] = field(default_factory=list)

    def received(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


@contextmanager
def local_server(keep_alive: bool = False) -> Iterator[LocalServer]:
    """`keep_alive`: HTTP/1.1, connections stay open between requests (HTTP/1.0 closes
    each one after its answer)."""
    requests: list[Recorded] = []
    replies: dict[str, list[Reply]] = {}
    connections: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def setup(self) -> None:
            super().setup()
            connections.append(f"{self.client_address[0]}:{self.client_address[1]}")

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            queued = replies.get(self.path) or [Reply()]
            reply = queued.pop(0) if len(queued) > 1 else queued[0]
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.send_length:
                self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield LocalServer(url, requests, replies, connections)
    finally:
        server.shutdown()
        server.server_close()
