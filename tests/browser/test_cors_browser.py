"""CORS in real headless Chromium: a page on a KK_CORS_ORIGINS origin may call the API with
a key; a page on any other origin may neither read nor add, and no page elsewhere may use
the dashboard's cookie session."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support.server import KKServer, free_port, start_server

KEY = "cors-browser-admin-key-0123456789abcdef"
QUEUE = "t-idle"
PAGE = "<!doctype html><title>another origin</title><p>a page of another origin</p>"
# Runs in the page: the outcome of a fetch, or the error the browser raised.
FETCH = """async ([url, init]) => {
  try {
    const r = await fetch(url, init);
    return {status: r.status, body: await r.text()};
  } catch (e) {
    return {error: String(e)};
  }
}"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def page_server(root: Path) -> Iterator[str]:
    """A plain static server on another loopback port: another origin for the browser."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def origins(tmp_path_factory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("pages")
    with page_server(root / "listed") as listed, page_server(root / "unlisted") as unlisted:
        yield listed, unlisted


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory, origins) -> Iterator[KKServer]:
    env = {
        **server_env,
        "KK_QUEUE_PREFIX": f"kkcb-{uuid.uuid4().hex[:8]}",
        "KK_API_KEY": KEY,
        "KK_CORS_ORIGINS": json.dumps([origins[0]]),
    }
    with start_server(tmp_path_factory.mktemp("cors-browser"), env) as server:
        yield server


def _waiting(srv: KKServer) -> int:
    stats = httpx.get(f"{srv.url}/api/queues/{QUEUE}/stats", headers={"X-API-Key": KEY})
    assert stats.status_code == 200, stats.text
    return stats.json()["data"]["waiting"]


def _calls(srv: KKServer) -> tuple[list, list]:
    read = [f"{srv.url}/api/queues/stats", {"headers": {"X-API-Key": KEY}}]
    add = [
        f"{srv.url}/api/queues/{QUEUE}/jobs",
        {
            "method": "POST",
            "headers": {"X-API-Key": KEY, "Content-Type": "application/json"},
            "body": json.dumps({"data": {"from": "browser"}}),
        },
    ]
    return read, add


def test_a_listed_origin_reads_and_adds_with_a_key(browser, srv, origins):
    page = browser.new_page()
    try:
        page.goto(origins[0])
        before = _waiting(srv)
        read, add = _calls(srv)
        stats = page.evaluate(FETCH, read)
        assert stats.get("status") == 200, stats
        assert json.loads(stats["body"])["success"] is True
        added = page.evaluate(FETCH, add)
        assert added.get("status") == 201, added
        assert _waiting(srv) == before + 1
    finally:
        page.close()


def test_an_unlisted_origin_can_neither_read_nor_add(browser, srv, origins):
    page = browser.new_page()
    try:
        page.goto(origins[1])
        before = _waiting(srv)
        read, add = _calls(srv)
        stats = page.evaluate(FETCH, read)
        assert "error" in stats and "status" not in stats, stats
        added = page.evaluate(FETCH, add)
        assert "error" in added and "status" not in added, added
        assert _waiting(srv) == before, "the preflight stopped the add before it was sent"
    finally:
        page.close()


def test_no_origin_may_use_the_cookie_session(browser, srv, origins):
    login = httpx.post(f"{srv.url}/dashboard/login", json={"key": KEY})
    assert login.status_code == 200, login.text
    token = login.cookies["kk_session"]
    context = browser.new_context()
    try:
        context.add_cookies(
            [{"name": "kk_session", "value": token, "url": srv.url, "sameSite": "Strict"}]
        )
        page = context.new_page()
        page.goto(origins[0])
        # Same site (loopback, another port), so Chromium sends the cookie: but the answer
        # carries no Allow-Credentials, so the page never sees it.
        read = page.evaluate(FETCH, [f"{srv.url}/api/queues/stats", {"credentials": "include"}])
        assert "error" in read and "status" not in read, read
        before = _waiting(srv)
        add = page.evaluate(
            FETCH,
            [
                f"{srv.url}/api/queues/{QUEUE}/jobs",
                {
                    "method": "POST",
                    "credentials": "include",
                    "headers": {"Content-Type": "text/plain"},  # a "simple" request
                    "body": json.dumps({"data": {}}),
                },
            ],
        )
        assert "status" not in add, add
        assert _waiting(srv) == before
    finally:
        context.close()
