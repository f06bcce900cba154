"""The queue and job views in real headless Chromium against a real `kk serve`: a view that
failed to load offers nothing of the previous one, lists show what each state needs, and
actions that cannot work are not offered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime

import httpx
import pytest

from tests.browser.conftest import dashboard_server, open_page
from tests.integration.dashboard_support import FAIL_FIRST
from tests.integration.helpers import add_job, wait_job
from tests.support.server import KKServer, wait_for

QUEUES = {
    "v-work": {"processor": FAIL_FIRST, "attempts": 1},
    "v-idle": {"attempts": 1},
    "v-sched": {"attempts": 1},
}
NO_WAIT = {"type": "fixed", "delay": 0}
DASH = "\u2013"  # the pager's range dash
MACHINERY = re.compile(r"kk/(queues|workers|compat)/")
SCHEDULES = {"nightly": {"queue": "v-sched", "job": "report", "cron": "0 3 * * *"}}


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    with dashboard_server(server_env, tmp_path_factory, "dash-views", QUEUES, SCHEDULES) as server:
        yield server


@pytest.fixture
def page(browser):
    with open_page(browser) as page:  # page.asked: what confirm() asked, answered yes
        yield page


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def count(api: httpx.Client, queue: str, state: str) -> int:
    return api.get(f"/api/queues/{queue}/stats").json()["data"][state]


def open_list(page, srv: KKServer, queue: str, state: str) -> None:
    page.goto(f"{srv.url}/dashboard#/queue/{queue}/{state}/0")
    page.locator("#view-queue").wait_for(timeout=10_000)


def test_a_queue_that_fails_to_load_offers_nothing_of_the_previous_one(page, api, srv):
    for n in range(3):
        wait_job(api, "v-work", "completed", add_job(api, "v-work", {"n": n}))
    before = count(api, "v-work", "completed")
    open_list(page, srv, "v-work", "completed")
    page.locator("#jobs-body tr[data-job]").first.wait_for(timeout=10_000)
    assert page.locator("#q-clean").is_visible()

    page.evaluate("location.hash = '#/queue/nope/completed/0'")
    page.locator("#view-error").wait_for(timeout=10_000)
    assert "not registered" in page.locator("#error-text").text_content()
    assert page.locator("#view-queue").is_hidden()
    # Nothing of v-work is left on screen, visible or not, and its buttons are inert.
    assert "v-work" not in page.locator("main").inner_text()
    assert page.locator("#jobs-body tr").count() == 0
    assert page.locator("#q-title").text_content() == ""
    assert page.locator("main button:visible").count() == 0
    page.evaluate("document.getElementById('q-clean').click()")
    page.wait_for_timeout(500)
    assert page.asked == [] and count(api, "v-work", "completed") == before


def test_a_button_of_a_view_that_was_left_does_nothing(page, api, srv):
    page.goto(f"{srv.url}/dashboard")
    page.locator('button[data-action="pause"][data-queue="v-idle"]').wait_for(timeout=10_000)
    # A click that lands after the route changed (a slow click, a stale reference).
    page.evaluate(
        """() => {
          const button = document.querySelector('button[data-action="pause"][data-queue="v-idle"]');
          location.hash = '#/queue/nope/waiting/0';
          button.click();
        }"""
    )
    page.locator("#view-error").wait_for(timeout=10_000)
    page.wait_for_timeout(300)
    assert page.asked == []
    assert api.get("/api/queues/v-idle/stats").json()["data"]["paused"] is False


def test_an_unknown_job_shows_an_error_and_a_way_back(page, srv):
    page.goto(f"{srv.url}/dashboard#/queue/v-work/job/no-such-job")
    page.locator("#view-error").wait_for(timeout=10_000)
    assert page.locator("#error-title").text_content() == "Job not found"
    assert "no-such-job" in page.locator("#error-text").text_content()
    assert page.locator("#view-job").is_hidden()
    assert page.locator("#error-back").get_attribute("href") == "#/queue/v-work/waiting/0"


def test_the_next_run_of_a_schedule_offers_no_remove(page, api, srv):
    delayed = api.get("/api/queues/v-sched/jobs", params={"status": "delayed"}).json()["data"]
    run = next(j for j in delayed if j["id"].startswith("repeat:nightly:"))
    assert api.delete(f"/api/queues/v-sched/jobs/{run['id']}").status_code == 409  # why
    own = add_job(api, "v-sched", {"n": 1}, delay=3_600_000)
    open_list(page, srv, "v-sched", "delayed")
    page.locator(f'#jobs-body tr[data-job="{own}"]').wait_for(timeout=10_000)
    schedule_row = page.locator(f'#jobs-body tr[data-job="{run["id"]}"]')
    assert schedule_row.locator('[data-action="remove"]').count() == 0
    assert page.locator(f'#jobs-body tr[data-job="{own}"] [data-action="remove"]').count() == 1
    # Runs at: absolute and relative.
    runs_at = page.locator(f'#jobs-body tr[data-job="{own}"] [data-field="runsAt"]').inner_text()
    assert "in 60 minutes" in runs_at or "in 1 hour" in runs_at, runs_at
    assert str(date.today().year) in runs_at


def test_clean_defaults_to_the_tab_and_honours_the_age(page, api, srv):
    for n in range(2):
        wait_job(api, "v-work", "failed", add_job(api, "v-work", {"fail": True, "n": n}))
    failed = count(api, "v-work", "failed")
    open_list(page, srv, "v-work", "failed")
    page.locator("#jobs-body tr[data-job]").first.wait_for(timeout=10_000)
    assert page.locator("#q-clean-state").input_value() == "failed"
    page.select_option("#q-clean-grace", label="older than 1 hour")
    page.click("#q-clean")
    page.locator("#banner.ok").wait_for(timeout=10_000)
    assert page.asked[-1].startswith('Remove every failed job of "v-work" older than 1')
    assert count(api, "v-work", "failed") == failed  # all younger than an hour
    page.select_option("#q-clean-grace", label="any age")
    page.click("#q-clean")
    wait_for(lambda: count(api, "v-work", "failed") == 0, timeout=10, what="failed cleaned")
    assert count(api, "v-work", "completed") > 0  # only the chosen state


def test_lists_show_reason_attempts_duration_and_page(page, api, srv):
    job_id = add_job(api, "v-work", {"fail": True}, attempts=3, backoff=NO_WAIT)
    wait_job(api, "v-work", "failed", job_id)
    open_list(page, srv, "v-work", "failed")
    row = page.locator(f'#jobs-body tr[data-job="{job_id}"]')
    row.wait_for(timeout=10_000)
    headers = page.locator("#jobs-head th").all_inner_texts()
    assert headers[:5] == ["Id", "Name", "Failure reason", "Failed at", "Attempts"]
    assert row.locator('[data-field="reason"]').inner_text() == "requested failure on run 3"
    assert "3 of 3" in row.inner_text()
    assert row.locator('[data-field="took"]').inner_text().endswith(("ms", "sec", "s"))

    ids = [add_job(api, "v-idle", {"page": n}) for n in range(27)]
    waiting = count(api, "v-idle", "waiting")
    open_list(page, srv, "v-idle", "waiting")
    page.locator("#page-info", has_text=f"1{DASH}25 of {waiting}").wait_for(timeout=10_000)
    assert page.locator("#jobs-total").inner_text() == f"{waiting} jobs in this list"
    assert page.locator("#page-prev").is_disabled()
    page.click("#page-next")
    page.locator("#page-info", has_text=f"26{DASH}{min(50, waiting)} of {waiting}").wait_for()
    assert page.locator("#page-prev").is_enabled()
    assert ids


def test_a_job_shows_one_trace_per_attempt_newest_first(page, api, srv):
    job_id = add_job(api, "v-work", {"fail": True}, attempts=3, backoff=NO_WAIT)
    job = wait_job(api, "v-work", "failed", job_id)
    assert len(job["stacktrace"]) == 3
    page.goto(f"{srv.url}/dashboard#/queue/v-work/job/{job_id}")
    page.locator("#job-detail .attempt").first.wait_for(timeout=10_000)
    attempts = page.locator("#job-detail .attempt")
    assert [attempts.nth(i).get_attribute("data-attempt") for i in range(3)] == ["3", "2", "1"]
    newest = attempts.nth(0)
    headings = attempts.locator("h4").all_inner_texts()
    for n, heading in zip((3, 2, 1), headings, strict=True):
        assert heading.startswith(f"Attempt {n} · "), headings  # each with its time
    times = api.get(f"/api/queue-dashboard/queues/v-work/jobs/{job_id}/attempts").json()["data"]
    assert [a["attempt"] for a in times["attempts"]] == [1, 2, 3]
    assert [a["outcome"] for a in times["attempts"]] == ["failed"] * 3
    ended = [a["endedAt"] for a in times["attempts"]]
    assert ended == sorted(ended) and all(a["startedAt"] <= a["endedAt"] for a in times["attempts"])
    assert (
        ended[-1] == job["finishedOn"] or abs(_ms(ended[-1]) - _ms(job["finishedOn"])) < 50
    )  # the same failure, seen by the script and by the job hash
    assert "requested failure on run 3" in newest.inner_text()
    assert "requested failure on run 1" in attempts.nth(2).inner_text()
    ours = newest.locator('[data-frame="ours"]').all_inner_texts()
    lib = newest.locator('[data-frame="lib"]').all_inner_texts()
    assert any("dashboard_processors.py" in f for f in ours), ours
    # The worker machinery every job runs through counts as library (the worker pool and
    # its BullMQ glue: kk/workers, kk/compat; kk/queues before they moved).
    assert any(MACHINERY.search(f) for f in lib), lib
    assert not any(MACHINERY.search(f) for f in ours), ours
    assert page.locator("#job-detail [data-fact='job.attempts']").inner_text() == "3 of 3"


def test_the_page_learns_where_a_queues_processor_lives(api):
    code = api.get("/api/queue-dashboard/queues/v-work/processor").json()["data"]
    assert code == {
        "queue": "v-work",
        "module": "tests.support.dashboard_processors",
        "codePaths": ["tests/support/dashboard_processors.py", "tests/support/"],
    }
    builtin = api.get("/api/queue-dashboard/queues/webhook/processor").json()["data"]
    assert builtin["module"] == "kk.processors.webhook"
    assert api.get("/api/queue-dashboard/queues/v-idle/processor").json()["data"]["module"] is None
    missing = api.get("/api/queue-dashboard/queues/nope/processor")
    assert missing.status_code == 404 and missing.json()["code"] == "QUEUE_NOT_FOUND"


def test_redis_and_the_workers_at_a_glance(page, api, srv, redis_client):
    info = redis_client.info()
    system = api.get("/api/queue-dashboard/system").json()["data"]
    # Valkey's own version, not the Redis version it reports for compatibility (7.2.4).
    server = info.get("server_name", "redis")
    own_version = info.get("valkey_version") or info["redis_version"]
    assert system["redis"]["server"] == server and system["redis"]["version"] == own_version
    assert system["redis"]["evictionPolicy"] == info["maxmemory_policy"]
    assert system["redis"]["uptimeSeconds"] >= 0 and system["redis"]["usedMemory"] > 0
    # This server runs a worker for each queue with a processor (built-in ones too), and
    # none for the others.
    listed = {q for w in system["workers"] for q in w["queues"]}
    assert "v-work" in listed and "webhook" in listed
    assert not listed & {"v-idle", "v-sched"}
    # One row per worker, however many connections it holds; no server path shown.
    keys = [(w["host"], w["pid"], w["name"]) for w in system["workers"]]
    assert len(keys) == len(set(keys))
    assert all(w["connections"] >= 1 and "/" not in w["host"] for w in system["workers"])

    # The same rows as GET /api/queues/workers: this server's process, with its pid.
    def steady(rows):  # what does not move between two reads a moment apart
        return [{k: v for k, v in w.items() if k not in ("lastSeen", "idleSeconds")} for w in rows]

    assert steady(system["workers"]) == steady(api.get("/api/queues/workers").json()["data"])
    mine = [w for w in system["workers"] if "v-work" in w["queues"]]
    assert mine and mine[0]["pid"] == srv.proc.pid and mine[0]["concurrency"]["v-work"] >= 1

    page.goto(f"{srv.url}/dashboard")
    version = page.locator('#redis-facts [data-fact="redis.version"]')
    version.wait_for(timeout=10_000)
    shown = f"Valkey {own_version}" if server == "valkey" else own_version
    assert version.inner_text().startswith(shown)
    policy = page.locator('#redis-facts [data-fact="redis.eviction"]').inner_text()
    assert info["maxmemory_policy"] in policy
    assert page.locator("#workers-body tr[data-worker]").count() == len(system["workers"])
    row = page.locator('#workers-body tr[data-worker~="v-work"]').first
    assert row.is_visible()
    assert str(srv.proc.pid) in row.inner_text()


@pytest.mark.parametrize(
    ("locale", "one_failed", "cleaned"),
    [("en-US", '1 failed job of "v-work" moved back to waiting.',
      '2 failed jobs of "v-work" removed.'),
     ("zh-CN", "已将“v-work”的 1 个失败任务重新放回等待。", "已删除“v-work”中 2 个已失败任务。")],
)  # fmt: skip
def test_retry_all_and_clean_say_how_many_in_both_languages(
    browser, api, srv, locale, one_failed, cleaned
):
    api.post("/api/queues/v-work/clean", params={"status": "failed"})
    wait_job(api, "v-work", "failed", add_job(api, "v-work", {"fail": True, "n": 0}))
    with open_page(browser, locale=locale) as page:
        open_list(page, srv, "v-work", "failed")
        page.locator("#jobs-body tr[data-job]").first.wait_for(timeout=10_000)
        page.click("#q-retry-all")
        page.locator("#banner.ok").wait_for(timeout=10_000)
        assert page.locator("#banner").inner_text().strip() == one_failed
        wait_for(lambda: count(api, "v-work", "failed") == 1, timeout=10, what="failed again")
        wait_job(api, "v-work", "failed", add_job(api, "v-work", {"fail": True, "n": 1}))
        page.reload()
        page.locator("#jobs-body tr[data-job]").first.wait_for(timeout=10_000)
        page.click("#q-clean")
        page.wait_for_function(
            "(text) => document.querySelector('#banner').innerText.trim() === text", arg=cleaned
        )


def test_a_paused_queue_alert_reads_as_words_not_numbers(page, api, srv):
    assert api.post("/api/queues/v-idle/pause").status_code == 200
    try:
        page.goto(f"{srv.url}/dashboard")
        alert = page.locator('#alerts li[data-queue="v-idle"][data-rule="paused"]')
        alert.wait_for(timeout=10_000)
        text = alert.inner_text()
        assert "Queue is paused" in text and "threshold" not in text and ": 1" not in text
    finally:
        api.post("/api/queues/v-idle/resume")


def test_a_failed_job_reads_data_and_logs_first_then_whole_traces(page, api, srv):
    job_id = add_job(api, "v-work", {"fail": True, "n": 7}, attempts=1)
    wait_job(api, "v-work", "failed", job_id)
    assert api.post(f"/api/queues/v-work/jobs/{job_id}/retry").status_code == 200
    wait_for(
        lambda: api.get(f"/api/queues/v-work/jobs/{job_id}").json()["data"]["attempts"] == 2,
        timeout=10,
        what="the retried job to fail again",
    )
    page.goto(f"{srv.url}/dashboard#/queue/v-work/job/{job_id}")
    page.locator("#job-detail .traces").wait_for(timeout=10_000)
    attempts = page.locator('#job-detail [data-fact="job.attempts"]').inner_text()
    assert attempts == "2 (1 allowed, then retried by hand)", attempts
    headings = page.locator("#job-detail h3").all_inner_texts()
    assert headings.index("Data") < headings.index("Stack traces"), headings
    assert any(h.startswith("Logs") for h in headings[: headings.index("Stack traces")])
    max_height = page.locator("#job-detail .traces pre").first.evaluate(
        "(el) => getComputedStyle(el).maxHeight"
    )
    assert max_height == "none"
