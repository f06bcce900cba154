"""Search and bulk actions in real headless Chromium against a real `kk serve`: ticked jobs
are retried or removed after a confirmation naming their count and queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import dashboard_server, open_page
from tests.integration.dashboard_support import FAIL_FIRST
from tests.integration.helpers import add_job, assert_error, wait_job
from tests.support.server import KKServer, wait_for

QUEUES = {
    "b-work": {"processor": FAIL_FIRST, "attempts": 1},
    "b-idle": {"attempts": 1},
}


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    with dashboard_server(server_env, tmp_path_factory, "dash-bulk", QUEUES) as server:
        yield server


@pytest.fixture
def page(browser):
    with open_page(browser) as page:  # page.asked: what confirm() asked, answered yes
        yield page


def open_list(page, srv: KKServer, queue: str, state: str) -> None:
    page.goto(f"{srv.url}/dashboard#/queue/{queue}/{state}/0")
    page.locator("#view-queue").wait_for(timeout=10_000)


def test_ticked_failed_jobs_are_retried_after_a_confirmation(page, api, srv):
    failed = [add_job(api, "b-work", {"failFirst": True, "n": n}) for n in range(3)]
    for job_id in failed:
        wait_job(api, "b-work", "failed", job_id)

    open_list(page, srv, "b-work", "failed")
    rows = page.locator("#jobs-body tr[data-job]")
    wait_for(lambda: rows.count() == 3, what="three failed rows")
    assert page.locator("#bulk-retry").is_disabled()
    assert page.locator("#bulk-promote").is_hidden()  # not a delayed list
    page.locator("#pick-all").check()
    assert page.locator("#bulk-count").inner_text() == "3 selected"
    page.locator("#bulk-retry").click()

    wait_for(lambda: page.asked, what="the confirmation")
    assert page.asked == ['Retry 3 selected jobs of "b-work"?']
    for job_id in failed:  # they ran again, and the second run succeeds
        assert wait_job(api, "b-work", "completed", job_id)["returnValue"] == {"runs": 2}
    page.locator("#banner.ok").wait_for(timeout=10_000)
    assert "3 of 3 jobs" in page.locator("#banner").inner_text()


def test_one_ticked_job_only(page, api, srv):
    failed = [add_job(api, "b-work", {"failFirst": True, "m": n}) for n in range(2)]
    for job_id in failed:
        wait_job(api, "b-work", "failed", job_id)
    open_list(page, srv, "b-work", "failed")
    box = page.locator(f'#jobs-body input[data-pick="{failed[0]}"]')
    box.wait_for(timeout=10_000)
    box.check()
    page.locator("#bulk-retry").click()
    wait_for(lambda: page.asked, what="the confirmation")
    assert page.asked == ['Retry 1 selected jobs of "b-work"?']
    wait_job(api, "b-work", "completed", failed[0])
    assert api.get(f"/api/queues/b-work/jobs/{failed[1]}").json()["data"]["status"] == "failed"


def test_search_by_data_then_remove_every_match(page, api, srv):
    keep = add_job(api, "b-idle", {"to": "bob@example.com"})
    hits = [add_job(api, "b-idle", {"to": f"alice+{n}@example.com"}) for n in range(2)]
    open_list(page, srv, "b-idle", "waiting")
    page.locator("#jobs-body tr[data-job]").first.wait_for(timeout=10_000)

    page.locator("#match-q").fill("to:alice+")
    page.locator("#match-form button[type=submit]").click()
    rows = page.locator("#jobs-body tr[data-job]")
    wait_for(lambda: rows.count() == 2, what="the two matches")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.job)")) == sorted(hits)
    info = page.locator("#match-info").inner_text()
    assert info == "2 matches; scanned all 3 jobs."

    page.locator("#bulk-matches").click()
    assert page.locator("#bulk-count").inner_text() == "2 selected"
    page.locator("#bulk-remove").click()
    wait_for(lambda: page.asked, what="the confirmation")
    assert page.asked[0].startswith('Remove 2 selected jobs of "b-idle"?')
    for job_id in hits:
        wait_for(
            lambda j=job_id: api.get(f"/api/queues/b-idle/jobs/{j}").status_code == 404,
            what=f"job {job_id} removed",
        )
        assert_error(api.get(f"/api/queues/b-idle/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
    assert api.get(f"/api/queues/b-idle/jobs/{keep}").status_code == 200
    # The list still shows the search, now with nothing left in it.
    page.locator("#jobs-body td.empty").wait_for(timeout=10_000)
    assert page.locator("#match-info").inner_text() == "0 matches; scanned all 1 jobs."
