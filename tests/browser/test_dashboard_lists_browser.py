"""A queue's lists in real headless Chromium against a real `kk serve`: driven by the
queue's event stream (SSE) rather than the interval poll, back to polling when the stream
is unavailable, and search that finds one job among thousands."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.browser.conftest import dashboard_server, open_page
from tests.integration.dashboard_support import FAIL_FIRST
from tests.integration.helpers import add_job
from tests.support.server import KKServer, wait_for

QUEUES = {
    "l-work": {"processor": FAIL_FIRST, "attempts": 1},
    "l-idle": {"attempts": 1},
    "l-many": {"attempts": 1},  # no worker: what is added stays waiting
}
SEEDED = 3_000


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    with dashboard_server(
        server_env, tmp_path_factory, "dash-lists", QUEUES, schedules={}
    ) as server:
        yield server


@pytest.fixture
def page(browser):
    with open_page(browser) as page:
        page.streams = []  # EventSource requests, and whether each has ended
        page.on(
            "request",
            lambda r: page.streams.append(r) if r.resource_type == "eventsource" else None,
        )
        yield page


def open_list(page, srv: KKServer, queue: str, state: str) -> None:
    page.goto(f"{srv.url}/dashboard#/queue/{queue}/{state}/0")
    page.locator("#view-queue").wait_for(timeout=10_000)


def list_requests(page, queue: str, seconds: float) -> int:
    calls: list[str] = []

    def seen(request) -> None:
        if f"/api/queues/{queue}/jobs?" in request.url:
            calls.append(request.url)

    page.on("request", seen)
    page.wait_for_timeout(seconds * 1000)
    page.remove_listener("request", seen)
    return len(calls)


def closed(page, request) -> bool:
    """Whether the page has ended the (never-ending) EventSource request."""
    page.wait_for_timeout(100)  # Playwright takes in the page's events while it waits
    return request.failure is not None


def test_the_event_stream_updates_the_list_instead_of_the_poll(page, api, srv):
    open_list(page, srv, "l-work", "completed")
    page.select_option("#refresh-interval", "60")  # the poll would wait a minute
    page.locator("#live-mark").wait_for(timeout=10_000)  # the stream drives the updates
    assert page.locator("#live-mark").inner_text().lower() == "live"
    assert [r.url for r in page.streams] == [f"{srv.url}/api/queues/l-work/events"]
    assert list_requests(page, "l-work", 2) == 0  # nothing happens, nothing is asked

    started = time.monotonic()
    job_id = add_job(api, "l-work", {"n": 1})
    page.locator(f'#jobs-body tr[data-job="{job_id}"]').wait_for(timeout=5_000)
    assert time.monotonic() - started < 5
    assert page.locator("#live").inner_text().startswith("Updated ")
    # A burst of events costs a few refreshes, not one per event (at most one per 500 ms).
    for n in range(20):
        add_job(api, "l-work", {"burst": n})
    calls = list_requests(page, "l-work", 3)
    assert 1 <= calls <= 8, calls
    rows = page.locator("#jobs-body tr[data-job]")
    wait_for(lambda: rows.count() == 21, timeout=10, what="every completed job listed")


def test_the_stream_closes_when_paused_hidden_or_left(page, api, srv):
    open_list(page, srv, "l-idle", "waiting")
    page.locator("#live-mark").wait_for(timeout=10_000)
    first = page.streams[-1]

    page.click("#refresh-toggle")  # pause: the stream is closed, and nothing moves
    assert page.locator("#live-mark").is_hidden()
    wait_for(lambda: closed(page, first), timeout=5, what="the stream closed")
    job_id = add_job(api, "l-idle", {"while": "paused"})
    page.wait_for_timeout(1500)
    assert page.locator(f'#jobs-body tr[data-job="{job_id}"]').count() == 0

    page.click("#refresh-toggle")  # resume: a new stream, and what was missed is shown
    page.locator(f'#jobs-body tr[data-job="{job_id}"]').wait_for(timeout=5_000)
    page.locator("#live-mark").wait_for(timeout=10_000)
    assert len(page.streams) == 2
    second = page.streams[-1]

    # A hidden page holds no stream; shown again, it follows the queue again.
    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', {value: true, configurable: true});
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    wait_for(lambda: closed(page, second), timeout=5, what="the stream closed")
    assert page.locator("#live-mark").is_hidden()
    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', {value: false, configurable: true});
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.locator("#live-mark").wait_for(timeout=10_000)
    third = page.streams[-1]
    assert len(page.streams) == 3

    page.click("#view-queue nav.crumbs a")  # another view: no stream
    page.locator("#view-overview").wait_for(timeout=10_000)
    wait_for(lambda: closed(page, third), timeout=5, what="the stream closed")
    assert page.locator("#live-mark").is_hidden()
    assert len(page.streams) == 3


def test_without_the_stream_the_list_is_polled(page, api, srv):
    # The events route refuses (as it does past its per-client limit): the poll takes over.
    page.route("**/api/queues/l-idle/events", lambda route: route.fulfill(status=429, body=""))
    open_list(page, srv, "l-idle", "waiting")
    page.select_option("#refresh-interval", "2")
    wait_for(lambda: page.streams, timeout=10, what="the page to ask for the stream")
    job_id = add_job(api, "l-idle", {"polled": True})
    page.locator(f'#jobs-body tr[data-job="{job_id}"]').wait_for(timeout=6_000)
    assert page.locator("#live-mark").is_hidden()
    assert list_requests(page, "l-idle", 4.5) >= 2  # every 2 s


def test_search_finds_one_job_among_thousands(page, api, srv):
    ids: list[str] = []
    for start in range(0, SEEDED, 1000):  # the bulk add takes 1,000 at a time
        jobs = [{"data": {"orderId": n, "sku": f"sku-{n}"}} for n in range(start, start + 1000)]
        added = api.post("/api/queues/l-many/jobs/bulk", json={"jobs": jobs})
        assert added.status_code == 201, added.text
        ids.extend(added.json()["jobIds"])
    assert api.get("/api/queues/l-many/stats").json()["data"]["waiting"] == SEEDED
    wanted = ids[2742]
    # Within the search's scan bound (dashboard_search_max_scan, 5,000 by default).
    found = api.get(
        "/api/queue-dashboard/queues/l-many/search", params={"q": "data.orderId=2742"}
    ).json()["data"]
    assert (found["scanned"], found["total"], found["complete"]) == (SEEDED, SEEDED, True)

    open_list(page, srv, "l-many", "waiting")
    rows = page.locator("#jobs-body tr[data-job]")
    wait_for(lambda: rows.count() == 25, what="the first page")
    assert wanted not in rows.evaluate_all("rs => rs.map(r => r.dataset.job)")  # not on it
    page.locator("#match-q").fill("data.orderId=2742")
    page.locator("#match-form button[type=submit]").click()
    page.locator("#match-info", has_text="1 matches").wait_for(timeout=10_000)
    assert page.locator("#match-info").inner_text() == "1 matches; scanned all 3,000 jobs."
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.job)") == [wanted]
    assert '"orderId":2742' in rows.first.inner_text()
