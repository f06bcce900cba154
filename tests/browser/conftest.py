"""Real headless Chromium (Debian's package) driven by Playwright, shared by the browser
tests; they are skipped with a clear message where the browser is missing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.dashboard_support import dashboard_env
from tests.support.server import KKServer, start_server

CHROMIUM = Path("/usr/bin/chromium")
# The background-networking flags stop Chromium dialling out to its own services, which
# fails without internet access; --no-sandbox because tests may run as root.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(
                        reason="browser tests need Debian's chromium: apt-get install -y chromium"
                    )
                )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def watch_problems(page: Any) -> list[str]:
    """Collect script errors and CSP violations; a test ends by asserting there were none."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return problems


@contextlib.contextmanager
def open_page(
    browser: Any,
    *,
    width: int = 1280,
    height: int = 900,
    locale: str | None = "en-US",
    answer_dialogs: bool = True,
    **context_args: Any,
) -> Iterator[Any]:
    """A page in a context of its own, watched for script errors and CSP violations (none
    may happen: checked when the page is done with). With `answer_dialogs`, every confirm()
    is answered yes and what it asked is kept in `page.asked`. `page.problems` lists what
    went wrong so far; the context is `page.context`."""
    if locale is not None:
        context_args["locale"] = locale
    context = browser.new_context(viewport={"width": width, "height": height}, **context_args)
    page = context.new_page()
    page.problems = watch_problems(page)
    page.asked = []

    def answer(dialog: Any) -> None:
        page.asked.append(dialog.message)
        dialog.accept()

    if answer_dialogs:
        page.on("dialog", answer)
    try:
        yield page
    finally:
        context.close()
    assert not page.problems, page.problems


@contextlib.contextmanager
def dashboard_server(
    server_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    queues: dict[str, dict[str, Any]],
    schedules: dict[str, dict[str, Any]] | None = None,
    **extra: str,
) -> Iterator[KKServer]:
    """A `kk serve` of the module's own with these queues (and schedules, env overrides);
    a module's `srv` fixture yields it."""
    env = dashboard_env(server_env, queues, schedules, **extra)
    with start_server(tmp_path_factory.mktemp(name), env) as server:
        yield server


@pytest.fixture
def api(srv: KKServer) -> Iterator[httpx.Client]:
    """An HTTP client of the module's `srv` (modules with keys define their own)."""
    with srv.client as client:
        yield client
