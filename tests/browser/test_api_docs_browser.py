"""/docs and /redoc render in real headless Chromium with no request leaving this origin
and no CSP violation."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import open_page


@pytest.fixture
def page(browser, server):
    origins: set[str] = set()
    with open_page(browser, locale=None, answer_dialogs=False) as page:
        page.on("request", lambda request: origins.add(urlsplit(request.url).netloc))
        yield page
    assert origins <= {urlsplit(server.url).netloc, ""}, origins


def test_swagger_ui_lists_the_operations(page, server):
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock-summary", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/queues/{queueName}/jobs" in p.replace("\u200b", "") for p in paths), paths
    # An operation opens with its responses, the error envelope among them.
    page.locator("#operations-queues-addJob .opblock-summary").click()
    page.wait_for_selector("#operations-queues-addJob .responses-table", timeout=10_000)
    assert "415" in page.locator("#operations-queues-addJob .responses-table").inner_text()


def test_redoc_renders_the_document(page, server):
    page.goto(f"{server.url}/redoc")
    page.wait_for_selector("text=KK Backend", timeout=20_000)
    page.wait_for_selector("text=Successful Response", timeout=20_000)
    text = page.inner_text("body")
    assert "/api/queues/{queueName}/stats" in text
    assert "The body is not application/json" in text  # the declared 415
