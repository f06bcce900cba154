"""/docs and /redoc load everything from this origin, under a CSP that allows no inline
script: they work offline, and no third party's script runs next to the dashboard."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.integration.helpers import assert_error


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(found[name] or "")
        self._in_script = tag == "script"
        if tag == "script" and not found.get("src"):
            self.inline_scripts += 1

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


@pytest.fixture
def client(server):
    with server.client as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_same_origin_files(client, page):
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval, no CDN
    assert "frame-ancestors" in directives
    refs = _Refs()
    refs.feed(response.text)
    assert refs.inline_scripts == 0
    scripts = [u for u in refs.urls if u.endswith(".js")]
    assert len(scripts) == 2, refs.urls  # the UI's bundle and our start-up file
    for url in refs.urls:
        assert re.fullmatch(r"/[^/].*", url), f"{url} is not a same-origin path"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        assert "content-security-policy" in asset.headers
    assert "cdn" not in response.text.lower()
    bundle = client.get(scripts[0]).text
    assert "https://cdn" not in bundle  # ReDoc's logo URL is rewritten


def test_the_start_up_scripts_read_the_live_document(client):
    for name in ("swagger-init.js", "redoc-init.js"):
        script = client.get(f"/docs/assets/{name}")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert '"/openapi.json"' in script.text
    assert client.get("/openapi.json").status_code == 200


def test_only_the_listed_assets_are_served(client):
    for name in ("core.py", "..%2F..%2Fapp.py", "nope.js"):
        assert_error(client.get(f"/docs/assets/{name}"), 404, "NOT_FOUND")
