"""The dashboard in Chinese and English (real headless Chromium, real `kk serve`): it follows
the browser's language, remembers a choice, formats per locale, leaves no English behind in
zh-CN; and live updates the operator can pause and pace."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import dashboard_server, open_page
from tests.integration.dashboard_support import FAIL_FIRST
from tests.integration.helpers import add_job, wait_job
from tests.support.server import KKServer, wait_for
from tests.unit.test_dashboard_i18n import catalogue

QUEUES = {"z-work": {"processor": FAIL_FIRST, "attempts": 1}, "z-idle": {"attempts": 1}}
SCHEDULES = {
    "nightly": {"queue": "z-idle", "job": "report", "cron": "0 3 * * *", "description": "每晚"}
}

# Every piece of text a reader sees: visible text nodes outside job data, the chosen option
# of each select, and the attributes read aloud or shown on hover.
VISIBLE_TEXT = """() => {
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || el.closest('pre, code, select, script, style')) continue;
    if (!el.checkVisibility()) continue;
    out.push(n.textContent);
  }
  for (const el of document.querySelectorAll('select')) {
    if (el.checkVisibility() && el.selectedOptions[0]) out.push(el.selectedOptions[0].textContent);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
    if (!el.checkVisibility()) continue;
    for (const a of ['placeholder', 'title', 'aria-label']) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  return out;
}"""


PUNCTUATION = ' .:·()"?\u2026\u2013\u2039\u203a'  # ellipsis, en dash, angle quotes


def english_fragments() -> list[str]:
    """The English text of every key whose Chinese differs, split at its placeholders."""
    en, zh = catalogue("en"), catalogue("zh-CN")
    out = set()
    for key, text in en.items():
        if text == zh[key]:
            continue
        for part in re.split(r"\{\w+\}", text):
            part = part.strip(PUNCTUATION)
            if len(re.findall(r"[A-Za-z]", part)) >= 2:
                out.add(part)
    return sorted(out)


def english_left(page) -> list[str]:
    fragments = english_fragments()
    found = []
    for text in page.evaluate(VISIBLE_TEXT):
        s = text.strip()
        for f in fragments:
            if s == f or (" " in f and f in s) or re.search(rf"\b{re.escape(f)}\b", s):
                found.append(f"{f!r} in {s!r}")
    return found


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    with dashboard_server(server_env, tmp_path_factory, "dash-i18n", QUEUES, SCHEDULES) as server:
        yield server


@pytest.fixture
def zh(browser) -> Iterator:
    with open_page(browser, locale="zh-CN") as page:
        yield page


@pytest.fixture
def en(browser) -> Iterator:
    with open_page(browser, locale="en-US") as page:
        yield page


def test_the_catalogue_check_sees_english(en, srv):
    en.goto(f"{srv.url}/dashboard")
    en.locator('#queues-body tr[data-queue="z-work"]').wait_for(timeout=10_000)
    assert len(english_left(en)) > 20  # the check would catch a string left untranslated


def test_a_chinese_browser_gets_a_chinese_page_with_nothing_english_left(zh, api, srv):
    wait_job(api, "z-work", "failed", failed := add_job(api, "z-work", {"fail": True}))
    wait_job(api, "z-work", "completed", add_job(api, "z-work", {"n": 1}))
    add_job(api, "z-idle", {"n": 1})  # waiting with no worker: an alert
    add_job(api, "z-idle", {"n": 2}, delay=3_600_000)

    zh.goto(f"{srv.url}/dashboard")
    zh.locator('#alerts li[data-queue="z-idle"]').wait_for(timeout=10_000)
    assert zh.evaluate("navigator.languages[0]") == "zh-CN"
    assert zh.evaluate("document.documentElement.lang") == "zh-CN"
    assert zh.locator(".brand").inner_text() == "KK 队列"
    assert english_left(zh) == []
    next_run = zh.locator('#schedules-body tr[data-schedule="nightly"] [data-field="nextRun"]')
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", next_run.inner_text()), next_run.inner_text()
    assert re.search(r"(小时|分钟|天)后|明天|今天", next_run.inner_text()), next_run.inner_text()

    for route in ("queue/z-work/failed/0", "queue/z-idle/delayed/0", f"queue/z-work/job/{failed}"):
        zh.goto(f"{srv.url}/dashboard#/{route}")
        zh.locator("#view-queue:visible, #view-job:visible").first.wait_for(timeout=10_000)
        zh.wait_for_timeout(300)
        assert english_left(zh) == [], route
    assert zh.locator("#job-detail .attempt h4").first.inner_text().startswith("第 1 次尝试")
    # The add form, duplicating that job.
    zh.locator('#job-detail button[data-action="duplicate"]').click()
    zh.locator("#view-add #add-data").wait_for(timeout=10_000)
    zh.wait_for_timeout(300)
    assert english_left(zh) == []
    assert zh.locator("#add-submit").inner_text() == "添加任务"


def test_the_language_switch_is_remembered(en, srv):
    en.goto(f"{srv.url}/dashboard")
    en.locator('#queues-body tr[data-queue="z-work"]').wait_for(timeout=10_000)
    assert en.locator('[data-card="waiting"] .card-label').inner_text().lower() == "waiting"
    en.select_option("#lang", "zh-CN")
    en.locator('[data-card="waiting"] .card-label', has_text="等待中").wait_for(timeout=5_000)
    assert en.evaluate("localStorage.getItem('kk.lang')") == "zh-CN"
    en.reload()
    en.locator('#queues-body tr[data-queue="z-work"]').wait_for(timeout=10_000)
    assert en.locator(".brand").inner_text() == "KK 队列"
    big = en.evaluate("new Intl.NumberFormat('zh-CN').format(12345)")
    assert big == "12,345"  # the same digits; dates and relative times differ (above)
    en.select_option("#lang", "en")
    en.locator(".brand", has_text="KK Queues").wait_for(timeout=5_000)


def overview_calls(page, seconds: float) -> int:
    calls: list[str] = []

    def seen(request) -> None:
        if request.url.endswith("/api/queue-dashboard/overview"):
            calls.append(request.url)

    page.on("request", seen)
    page.wait_for_timeout(seconds * 1000)
    page.remove_listener("request", seen)
    return len(calls)


def test_live_updates_can_be_paused_and_paced(en, api, srv):
    en.goto(f"{srv.url}/dashboard")
    waiting = en.locator('#queues-body tr[data-queue="z-idle"] [data-field="waiting"]')
    waiting.wait_for(timeout=10_000)
    assert re.fullmatch(r"Updated \S+.*", en.locator("#live").inner_text())

    en.select_option("#refresh-interval", "2")
    assert overview_calls(en, 5) >= 2
    en.click("#refresh-toggle")
    assert en.locator("#live").inner_text().startswith("Paused · updated ")
    before = waiting.inner_text()
    add_job(api, "z-idle", {"while": "paused"})
    assert overview_calls(en, 4.5) == 0
    assert waiting.inner_text() == before

    en.reload()  # both choices are remembered
    en.locator('#queues-body tr[data-queue="z-idle"]').wait_for(timeout=10_000)
    assert en.locator("#refresh-interval").input_value() == "2"
    assert en.locator("#refresh-toggle").get_attribute("aria-pressed") == "true"
    assert overview_calls(en, 3) == 0
    en.click("#refresh-toggle")
    stats = api.get("/api/queues/z-idle/stats").json()["data"]
    wait_for(lambda: waiting.inner_text() == f"{stats['waiting']:,}", timeout=10, what="update")
    en.select_option("#refresh-interval", "30")
    assert overview_calls(en, 5) <= 1
    saved = en.evaluate("JSON.stringify(localStorage.getItem('kk.refreshSeconds'))")
    assert json.loads(saved) == "30"
