"""The dashboard page and its files: served by the API process, offline, strict CSP."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpx
import pytest

from kk.dashboard.page import STATIC_DIR
from tests.support.server import ROOT, KKServer

ASSETS = ("index.html", "app.js", "style.css")


@pytest.fixture
def client(server: KKServer):
    with server.client as c:
        yield c


def csp_of(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split(";") if d.strip()}


def test_the_page_is_served_with_a_strict_content_security_policy(client):
    response = client.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>KK Queues</title>" in response.text
    csp = csp_of(response)
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.get("/dashboard/", follow_redirects=False).status_code == 308


def test_assets_are_served_from_the_package(client):
    types = {"app.js": "javascript", "style.css": "text/css"}
    for name, kind in types.items():
        response = client.get(f"/dashboard/static/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert response.text == (STATIC_DIR / name).read_text()
        assert "default-src 'self'" in response.headers["content-security-policy"]
    missing = client.get("/dashboard/static/nope.js")
    assert missing.status_code == 404 and missing.json()["success"] is False
    assert client.get("/dashboard/static/../app.py").status_code == 404


def test_the_page_needs_nothing_from_the_network_and_nothing_inline():
    html = (STATIC_DIR / "index.html").read_text()
    script = (STATIC_DIR / "app.js").read_text()
    # Only same-origin files: no CDN, no inline script or style, no handler attributes.
    assert re.findall(r'(?:src|href)="([^"#]+)"', html) == [
        "data:,",
        "/dashboard/static/style.css",
        "/dashboard/static/app.js",
    ]
    assert not re.search(r"<script>|<style|\sstyle=|\son[a-z]+=", html)
    for name in ASSETS:
        text = (STATIC_DIR / name).read_text()
        urls = set(re.findall(r"https?://[^\s\"')]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)  # an XML namespace
    # Data reaches the DOM as text only.
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "eval(" not in script and "new Function" not in script


def test_the_files_ship_with_the_package():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dashboard/static/*" in pyproject["tool"]["setuptools"]["package-data"]["kk"]
    assert {p.name for p in Path(STATIC_DIR).iterdir()} >= set(ASSETS)


def test_the_root_leads_to_the_dashboard_and_the_start_line_names_it(server):
    answer = httpx.get(f"{server.url}/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/dashboard"
    assert f"dashboard: {server.url}/dashboard" in server.log()
