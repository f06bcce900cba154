"""Dashboard sign-in in real headless Chromium: the session cookie, roles and CSRF."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.conftest import dashboard_server, open_page
from tests.support.server import KKServer, wait_for

ADMIN, READER = "admin-key-browser-0123456789abcdef0123", "read-key-browser-0123456789abcdef01234"
QUEUE = "b-auth"


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    with dashboard_server(
        server_env,
        tmp_path_factory,
        "dash-auth",
        {QUEUE: {"attempts": 1}},
        KK_API_KEYS=json.dumps([ADMIN]),
        KK_READ_API_KEYS=json.dumps([READER]),
    ) as server:
        yield server


@pytest.fixture
def api(srv: KKServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=30, headers={"X-API-Key": ADMIN}) as client:
        yield client
        client.post(f"/api/queues/{QUEUE}/resume")


@pytest.fixture
def page(browser, srv: KKServer):
    with open_page(browser, locale=None) as page:
        page.goto(f"{srv.url}/dashboard")
        yield page


@pytest.fixture
def context(page):
    return page.context


def sign_in(page, key: str) -> None:
    page.locator("#login-form").wait_for(timeout=10_000)
    page.fill("#login-key", key)
    page.click('#login-form button[type="submit"]')


def paused(api: httpx.Client) -> bool:
    return api.get(f"/api/queues/{QUEUE}/stats").json()["data"]["paused"]


def test_the_sign_in_form_is_shown_and_a_wrong_key_is_refused(page):
    page.locator("#view-login").wait_for(timeout=10_000)  # once the page asked the server
    assert page.locator("#api-key").count() == 0  # no key field kept in the browser any more
    sign_in(page, "not-a-key")
    page.locator("#login-error", has_text="Wrong key.").wait_for(timeout=10_000)
    assert page.locator("#view-login").is_visible()
    assert page.locator("#queues-body tr").count() == 0
    assert page.evaluate("Object.keys(localStorage)") == []


def test_a_read_key_shows_data_but_no_actions(page, api, srv):
    sign_in(page, READER)
    row = page.locator(f'#queues-body tr[data-queue="{QUEUE}"]')
    row.wait_for(timeout=10_000)
    assert page.locator("#who").text_content() == "Signed in (read-only)"
    assert page.locator("#view-overview button:visible").count() == 0
    page.goto(f"{srv.url}/dashboard#/queue/{QUEUE}/waiting/0")
    page.locator("#q-title", has_text=QUEUE).wait_for(timeout=10_000)
    page.locator("#view-queue").wait_for(timeout=10_000)
    assert page.locator("#q-actions").is_hidden()
    assert page.locator("#jobs-body button").count() == 0
    # The server refuses anyway: the page only stops offering what cannot work.
    answer = page.evaluate(
        "(q) => fetch(`/api/queues/${q}/pause`, {method: 'POST'}).then((r) => r.status)", QUEUE
    )
    assert answer == 403 and paused(api) is False


def test_a_read_key_is_offered_no_add_or_duplicate(page, api, srv):
    added = api.post(f"/api/queues/{QUEUE}/jobs", json={"data": {"n": 1}})
    assert added.status_code == 201, added.text
    job_id = added.json()["jobId"]
    sign_in(page, READER)
    page.locator(f'#queues-body tr[data-queue="{QUEUE}"]').wait_for(timeout=10_000)
    page.goto(f"{srv.url}/dashboard#/queue/{QUEUE}/waiting/0")
    page.locator("#live-mark").wait_for(timeout=10_000)  # the session cookie opens the stream
    assert page.locator(f'#jobs-body tr[data-job="{job_id}"]').is_visible()
    page.goto(f"{srv.url}/dashboard#/queue/{QUEUE}/job/{job_id}")
    page.locator("#job-detail .job-head").wait_for(timeout=10_000)
    assert page.locator("#job-detail button").count() == 0  # no duplicate, no remove
    assert page.locator("#q-add").is_hidden()
    page.goto(f"{srv.url}/dashboard#/queue/{QUEUE}/add/{job_id}")  # typed in by hand
    page.locator("#add-denied").wait_for(timeout=10_000)
    assert page.locator("#add-denied").inner_text().startswith("Signed in with a read key")
    assert page.locator("#add-form").is_hidden()
    assert page.locator("#add-fields [data-prop], #add-data").count() == 0


def test_an_admin_key_adds_a_job_from_the_form_with_its_session(page, api, srv):
    sign_in(page, ADMIN)
    page.locator(f'#queues-body tr[data-queue="{QUEUE}"]').wait_for(timeout=10_000)
    page.goto(f"{srv.url}/dashboard#/queue/{QUEUE}/add")
    page.locator("#add-data").fill('{"from": "the form"}')
    page.locator("#add-submit").click()  # the cookie and the CSRF token, as every action
    link = page.locator("#add-result a[data-job]")
    link.wait_for(timeout=10_000)
    job = api.get(f"/api/queues/{QUEUE}/jobs/{link.get_attribute('data-job')}").json()["data"]
    assert job["data"] == {"from": "the form"}


def test_an_admin_key_pauses_and_the_cookie_is_http_only_and_strict(page, api, context):
    sign_in(page, ADMIN)
    page.click(f'button[data-action="pause"][data-queue="{QUEUE}"]')
    wait_for(lambda: paused(api), timeout=10, what="the queue to be paused")
    page.locator(f'button[data-action="resume"][data-queue="{QUEUE}"]').wait_for(timeout=10_000)

    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["kk_session"]["httpOnly"] is True
    assert cookies["kk_session"]["sameSite"] == "Strict"
    assert "kk_session" not in page.evaluate("document.cookie")
    assert ADMIN not in json.dumps(page.evaluate("({...localStorage, ...sessionStorage})"))


def test_a_request_without_the_csrf_token_is_refused(page, api):
    sign_in(page, ADMIN)
    page.locator(f'#queues-body tr[data-queue="{QUEUE}"]').wait_for(timeout=10_000)
    # What a forged request can do at best: the cookie goes along, the token cannot.
    answer = page.evaluate(
        """async (queue) => {
          const res = await fetch(`/api/queues/${queue}/pause`,
                                  {method: 'POST', credentials: 'include'});
          return {status: res.status, body: await res.json()};
        }""",
        QUEUE,
    )
    assert answer["status"] == 403 and answer["body"]["code"] == "FORBIDDEN"
    assert "X-CSRF-Token" in answer["body"]["error"]
    assert paused(api) is False
    reads = page.evaluate(
        "fetch('/api/queues/stats', {credentials: 'include'}).then(r => r.status)"
    )
    assert reads == 200  # the same cookie does read


def test_signing_out_ends_the_session(page):
    sign_in(page, ADMIN)
    page.locator(f'#queues-body tr[data-queue="{QUEUE}"]').wait_for(timeout=10_000)
    page.click("#logout")
    page.locator("#login-form").wait_for(timeout=10_000)
    status = page.evaluate("fetch('/api/queues/stats').then(r => r.status)")
    assert status == 401
