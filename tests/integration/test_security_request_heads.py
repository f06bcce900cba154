"""Request heads are bounded before any key is checked: in size (431) and in time (a head
that never ends is closed), so no one can hold the server's memory or its connections."""

from __future__ import annotations

import socket
import time

import httpx
import psutil

from tests.support.server import start_server

ADMIN = "admin-key-0123456789abcdef0123456789"


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_huge_headers_get_431_without_growing_the_server(tmp_path, server_env):
    env = {**server_env, "KK_API_KEYS": ADMIN}
    with start_server(tmp_path, env) as srv:
        process = psutil.Process(srv.proc.pid)
        before = process.memory_info().rss
        answers = []
        for _ in range(3):
            with _connect(srv.url) as sock:
                sock.sendall(b"GET /api/queues/stats HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
                sent = 0
                try:  # the server closes long before 20 MiB are sent
                    while sent < 20 * 1024 * 1024:
                        sock.sendall(b"a" * 65536)
                        sent += 65536
                except OSError:
                    pass
                try:
                    answers.append(_read_all(sock))
                except OSError:
                    answers.append(b"")
        grown = process.memory_info().rss - before
        # An ordinary request still works.
        ok = httpx.get(f"{srv.url}/health/live", timeout=5)
    assert all(a.startswith(b"HTTP/1.1 431") for a in answers if a), answers
    assert any(answers), "no answer at all"
    assert grown < 30 * 1024 * 1024, f"the server grew {grown / 1e6:.0f} MB"
    assert ok.status_code == 200


def test_a_head_that_never_ends_is_closed(tmp_path, server_env):
    env = {**server_env, "KK_HTTP_HEAD_TIMEOUT_S": "1"}
    with start_server(tmp_path, env) as srv:
        started = time.monotonic()
        with _connect(srv.url) as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n")
            for _ in range(30):  # one header line a while, never the blank line
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break
                time.sleep(0.2)
                sock.settimeout(0.01)
                try:
                    if sock.recv(1) == b"":
                        break
                except TimeoutError:
                    pass
                except OSError:
                    break
        held = time.monotonic() - started
        idle = _connect(srv.url)  # a connection that sends nothing at all
        idle.settimeout(10)
        idle_started = time.monotonic()
        assert idle.recv(1) == b""
        idle_held = time.monotonic() - idle_started
        idle.close()
        assert httpx.get(f"{srv.url}/health/live", timeout=5).status_code == 200
    assert held < 3, f"a slow head held its connection {held:.1f} s"
    assert idle_held < 3, f"an idle connection was held {idle_held:.1f} s"
