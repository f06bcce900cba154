"""The dashboard in real headless Chromium (Debian's package), against a real `kk serve`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.browser.conftest import dashboard_server, open_page
from tests.integration.dashboard_support import FAIL_FIRST
from tests.integration.helpers import add_job, wait_job
from tests.support.server import ROOT, KKServer, wait_for

ARTIFACTS = ROOT / "test-artifacts"
FIELDS = ("waiting", "active", "completed", "failed", "delayed")


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    queues = {"b-work": {"processor": FAIL_FIRST, "attempts": 1}, "b-idle": {"attempts": 1}}
    with dashboard_server(server_env, tmp_path_factory, "dash-browser", queues) as server:
        yield server


@pytest.fixture
def page(browser, srv: KKServer):
    with open_page(browser, locale=None, answer_dialogs=False) as page:  # Dialogs answers
        page.goto(f"{srv.url}/dashboard")
        yield page


class Dialogs:
    """Answers the page's confirm() dialogs, and remembers what they asked."""

    def __init__(self, page) -> None:
        self.asked: list[str] = []
        self.accept = True
        page.on("dialog", self._answer)

    def _answer(self, dialog) -> None:
        self.asked.append(dialog.message)
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()


def table_counts(page) -> dict[str, dict[str, str]]:
    return page.evaluate(
        """() => {
          const rows = [...document.querySelectorAll('#queues-body tr[data-queue]')];
          return Object.fromEntries(rows.map((tr) => [
            tr.dataset.queue,
            Object.fromEntries([...tr.querySelectorAll('[data-field]')]
              .map((td) => [td.dataset.field, td.textContent.trim()])),
          ]));
        }"""
    )


def api_counts(api: httpx.Client) -> dict[str, dict[str, str]]:
    out = {}
    for s in api.get("/api/queues/stats").json()["data"]:
        row = {f: f"{s[f] + (s['prioritized'] if f == 'waiting' else 0):,}" for f in FIELDS}
        row["paused"] = "paused" if s["paused"] else "running"
        out[s["name"]] = row
    return out


def test_the_queue_table_shows_the_same_counts_as_the_api(page, api):
    add_job(api, "b-idle", {"n": 1})
    add_job(api, "b-idle", {"n": 2})
    add_job(api, "b-idle", {"n": 3}, delay=3_600_000)
    wait_job(api, "b-work", "completed", add_job(api, "b-work", {"n": 4}))
    wait_job(api, "b-work", "failed", add_job(api, "b-work", {"fail": True}))
    expected = api_counts(api)
    assert expected["b-idle"]["waiting"] == "2" and expected["b-work"]["failed"] == "1"
    wait_for(lambda: table_counts(page) == api_counts(api), timeout=10, what="same counts")
    total = page.locator('[data-card="queues"] .card-value').text_content()
    assert total == str(len(expected))


def test_pausing_a_queue_by_clicking_is_seen_by_the_api(page, api):
    dialogs = Dialogs(page)
    page.click('button[data-action="pause"][data-queue="b-idle"]')
    wait_for(lambda: api.get("/api/queues/b-idle/stats").json()["data"]["paused"], timeout=10)
    assert dialogs.asked == ['Pause queue "b-idle"?']
    resume = page.locator('button[data-action="resume"][data-queue="b-idle"]')
    resume.wait_for(timeout=10_000)
    state = page.locator('tr[data-queue="b-idle"] [data-field="paused"]')
    assert state.text_content() == "paused"

    dialogs.accept = False  # "Cancel" changes nothing
    resume.click()
    page.wait_for_timeout(1000)
    assert api.get("/api/queues/b-idle/stats").json()["data"]["paused"] is True
    dialogs.accept = True
    resume.click()
    wait_for(lambda: not api.get("/api/queues/b-idle/stats").json()["data"]["paused"], timeout=10)
    assert dialogs.asked[-1] == 'Resume queue "b-idle"?'


def test_retrying_a_failed_job_by_clicking_moves_it_out_of_failed(page, api, srv):
    job_id = add_job(api, "b-work", {"failFirst": True})
    wait_job(api, "b-work", "failed", job_id)
    dialogs = Dialogs(page)
    page.goto(f"{srv.url}/dashboard#/queue/b-work/failed/0")
    row = page.locator(f'#jobs-body tr[data-job="{job_id}"]')
    row.wait_for(timeout=10_000)
    row.locator('button[data-action="retry"]').click()
    job = wait_job(api, "b-work", "completed", job_id)
    assert job["returnValue"] == {"runs": 2}
    assert dialogs.asked == [f"Retry job {job_id}?"]
    row.wait_for(state="detached", timeout=10_000)  # gone from the failed list on screen


def test_job_data_is_shown_as_text_and_never_runs(page, api, srv):
    script = "<script>window.__xss=1</script>"
    img = '<img src=x onerror="window.__xss=2">'
    job_id = add_job(api, "b-idle", {"script": script, "img": img, "note": "</pre><b>bold</b>"})
    page.goto(f"{srv.url}/dashboard#/queue/b-idle/waiting/0")
    page.locator(f'#jobs-body tr[data-job="{job_id}"]').wait_for(timeout=10_000)
    page.goto(f"{srv.url}/dashboard#/queue/b-idle/job/{job_id}")
    detail = page.locator("#job-detail pre.code").first
    detail.wait_for(timeout=10_000)
    text = detail.text_content()
    assert script in text and img.replace('"', '\\"') in text
    assert page.locator("#job-detail").get_by_text(script).is_visible()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#job-detail img, #jobs-body img, #job-detail b").count() == 0


def test_screenshots_of_the_overview(page, api, browser, srv):
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator('#queues-body tr[data-queue="b-work"] svg.spark polyline').first.wait_for()
    page.wait_for_timeout(500)
    laptop = ARTIFACTS / "dashboard-overview.png"
    page.screenshot(path=str(laptop), full_page=True)
    phone_context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = phone_context.new_page()
    phone.goto(f"{srv.url}/dashboard")
    phone.locator('#queues-body tr[data-queue="b-work"]').wait_for()
    # On a phone nothing overflows sideways.
    width = phone.evaluate("document.documentElement.scrollWidth")
    phone_shot = ARTIFACTS / "dashboard-phone.png"
    phone.screenshot(path=str(phone_shot), full_page=True)
    phone_context.close()
    assert width <= 390
    assert laptop.stat().st_size > 10_000 and phone_shot.stat().st_size > 10_000
