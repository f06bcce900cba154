"""Adding and duplicating a job from the dashboard, in real headless Chromium against a
real `kk serve`: a form drawn from the queue's data model, posted to the real add route,
each of the server's field errors shown next to its field."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.conftest import dashboard_server, open_page
from tests.integration.dashboard_support import FAIL_FIRST
from tests.integration.helpers import assert_error, wait_job
from tests.support.server import KKServer

ORDER = "tests.browser.form_support:Order"
QUEUES = {
    "f-orders": {"processor": FAIL_FIRST, "payload": ORDER, "attempts": 1},
    "f-plain": {"processor": FAIL_FIRST, "attempts": 1},
}
STATES = ("waiting", "active", "completed", "failed", "delayed", "prioritized")


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    # No schedules: nothing but the tests adds to the cleanup queue.
    with dashboard_server(server_env, tmp_path_factory, "dash-add", QUEUES, schedules={}) as server:
        yield server


@pytest.fixture
def page(browser):
    with open_page(browser) as page:
        yield page


def total(api: httpx.Client, queue: str) -> int:
    stats = api.get(f"/api/queues/{queue}/stats").json()["data"]
    return sum(stats[s] for s in STATES)


def open_form(page, srv: KKServer, queue: str) -> None:
    """The queue's list, then its "Add job" button."""
    page.goto(f"{srv.url}/dashboard#/queue/{queue}/waiting/0")
    page.locator("#q-add").click()
    page.locator("#view-add #add-fields").wait_for(timeout=10_000)


def field(page, name: str):
    return page.locator(f'#add-fields [data-prop="{name}"]')


def error_of(page, path: str):
    return page.locator(f'#add-form [data-error-for="{path}"]')


def test_the_form_route_answers_each_queues_data_model(api):
    cleanup = api.get("/api/queue-dashboard/queues/cleanup/form").json()["data"]
    assert cleanup["dataSchema"]["title"] == "CleanupJobData"
    assert cleanup["dataSchema"]["properties"]["dryRun"] == {
        "default": False, "title": "Dryrun", "type": "boolean",
    }  # fmt: skip
    assert cleanup["defaultJobName"] == "cleanup-temp-files"
    assert cleanup["example"] == {"olderThanSeconds": 86400, "dryRun": True}
    assert cleanup["body"] == "job"
    email = api.get("/api/queue-dashboard/queues/email/form").json()["data"]
    assert email["body"] == "fields"  # the email route takes the fields themselves
    assert email["dataSchema"]["properties"]["to"]["format"] == "email"
    orders = api.get("/api/queue-dashboard/queues/f-orders/form").json()["data"]
    assert orders["dataSchema"]["required"] == ["orderId", "email"]
    assert orders["example"] == {"orderId": 42, "email": "ada@example.com", "size": "m"}
    plain = api.get("/api/queue-dashboard/queues/f-plain/form").json()["data"]
    assert plain == {
        "queue": "f-plain", "dataSchema": None, "defaultJobName": "job", "example": None,
        "body": "job",
    }  # fmt: skip
    assert_error(api.get("/api/queue-dashboard/queues/nope/form"), 404, "QUEUE_NOT_FOUND")


def test_a_bad_field_is_shown_next_to_it_and_a_good_add_runs(page, api, srv):
    before = total(api, "cleanup")
    open_form(page, srv, "cleanup")
    assert page.locator("#add-title").inner_text() == "Add a job"
    assert field(page, "olderThanSeconds").get_attribute("type") == "number"
    assert field(page, "dryRun").get_attribute("type") == "checkbox"
    assert not field(page, "dryRun").is_checked()  # the model's default
    assert field(page, "cleanTempFiles").is_checked()
    assert page.locator("#add-name").get_attribute("placeholder") == "cleanup-temp-files"

    field(page, "olderThanSeconds").fill("-5")
    field(page, "dryRun").check()
    page.locator("#add-submit").click()
    message = error_of(page, "data.olderThanSeconds")
    message.wait_for(timeout=10_000)
    assert message.inner_text() == "Input should be greater than or equal to 0"
    assert page.locator('#add-fields [data-field="olderThanSeconds"].invalid').count() == 1
    assert page.locator("#add-errors").inner_text() == ""
    assert page.locator("#add-result").inner_text() == ""
    assert page.locator("#view-add").is_visible()  # the form stays, as filled in
    assert field(page, "olderThanSeconds").input_value() == "-5"
    page.wait_for_timeout(500)
    assert total(api, "cleanup") == before  # nothing was added

    field(page, "olderThanSeconds").fill("3600")
    page.locator("#add-name").fill("from-the-form")
    page.locator("#add-submit").click()
    link = page.locator("#add-result a[data-job]")
    link.wait_for(timeout=10_000)
    assert message.inner_text() == ""  # the old error went with the new answer
    job_id = link.get_attribute("data-job")
    assert link.inner_text() == job_id
    assert page.locator("#add-result").inner_text() == f"Job added: {job_id}"
    job = wait_job(api, "cleanup", "completed", job_id)
    assert job["name"] == "from-the-form"
    assert job["data"] == {
        "olderThanSeconds": 3600, "cleanTempFiles": True, "trimFinishedJobs": True,
        "dryRun": True,
    }  # fmt: skip
    assert job["returnValue"]["dryRun"] is True
    link.click()  # to the new job
    page.locator("#job-title", has_text=job_id).wait_for(timeout=10_000)


def test_the_email_form_sends_the_fields_and_shows_their_errors(page, api, srv):
    before = total(api, "email")
    open_form(page, srv, "email")
    assert field(page, "to").get_attribute("type") == "email"
    assert field(page, "type").count() == 0  # the model's constant, not a choice
    assert page.locator("#add-name").is_hidden()  # the email route names its jobs
    required = page.locator('#add-fields [data-field="to"] abbr.req')
    assert required.get_attribute("title") == "required"
    field(page, "to").fill("not-an-address")
    field(page, "subject").fill("Hello")
    field(page, "template").fill("welcome")
    field(page, "data").fill('{"username": "Ada"')  # broken JSON: stopped here
    page.locator("#add-submit").click()
    assert error_of(page, "data.data").inner_text() == "Not valid JSON."
    field(page, "data").fill('{"username": "Ada"}')
    page.locator("#add-submit").click()
    to_error = error_of(page, "data.to")
    to_error.wait_for(timeout=10_000)
    assert "not a valid email address" in to_error.inner_text()
    assert error_of(page, "data.data").inner_text() == ""
    page.wait_for_timeout(500)
    assert total(api, "email") == before


def test_duplicating_a_job_fills_the_form_from_it(page, api, srv):
    data = {"orderId": 7, "email": "ada@example.com", "size": "l", "express": True,
            "items": ["tea", "cups"]}  # fmt: skip
    body = {"name": "ship", "data": data, "options": {"attempts": 2, "jobId": "order-7"}}
    first = api.post("/api/queues/f-orders/jobs", json=body)
    assert first.status_code == 201, first.text
    original = first.json()["jobId"]
    assert original == "order-7"
    wait_job(api, "f-orders", "completed", original)

    page.goto(f"{srv.url}/dashboard#/queue/f-orders/job/{original}")
    page.locator('#job-detail button[data-action="duplicate"]').click()
    page.locator("#add-title", has_text=f"Duplicate job {original}").wait_for(timeout=10_000)
    assert page.evaluate("location.hash") == f"#/queue/f-orders/add/{original}"
    assert field(page, "orderId").input_value() == "7"
    assert field(page, "email").input_value() == "ada@example.com"
    assert json.loads(field(page, "size").input_value()) == "l"
    assert field(page, "express").is_checked()
    assert json.loads(field(page, "items").input_value()) == ["tea", "cups"]
    assert field(page, "note").input_value() == ""
    assert page.locator("#add-name").input_value() == "ship"
    # Options a client may set again (the job's, with the queue's defaults it got); never
    # the job's own id (that would name the same job) nor BullMQ's bookkeeping.
    options = json.loads(page.locator("#add-options").input_value())
    assert options == {"attempts": 2, "backoff": {"type": "exponential", "delay": 1000}}
    assert page.locator('#add-fields [data-field="orderId"] .hint').inner_text() == (
        "the shop's order number"
    )

    field(page, "orderId").fill("0")
    page.locator("#add-submit").click()
    error_of(page, "data.orderId").wait_for(timeout=10_000)
    assert (
        error_of(page, "data.orderId").inner_text() == "Input should be greater than or equal to 1"
    )

    field(page, "orderId").fill("8")
    page.locator("#add-submit").click()
    link = page.locator("#add-result a[data-job]")
    link.wait_for(timeout=10_000)
    copy = link.get_attribute("data-job")
    assert copy != original
    job = wait_job(api, "f-orders", "completed", copy)
    assert job["name"] == "ship"
    assert job["data"] == {**data, "orderId": 8}
    assert job["opts"]["attempts"] == 2
    assert wait_job(api, "f-orders", "completed", original)["data"] == data  # untouched


def test_a_queue_without_a_model_takes_json_and_the_form_fits_a_phone(browser, api, srv):
    with open_page(browser, width=390, height=844, is_mobile=True) as phone:
        open_form(phone, srv, "f-plain")
        assert phone.locator("#add-fields [data-prop]").count() == 0
        data = phone.locator("#add-data")
        assert data.is_visible()
        data.fill("[1, 2]")
        phone.locator("#add-submit").click()
        assert error_of(phone, "data").inner_text() == "Must be a JSON object ({ … })."
        data.fill('{"n": 1, "nested": {"ok": true}}')
        phone.locator("#add-options").fill('{"delay": -1}')
        phone.locator("#add-submit").click()
        options_error = error_of(phone, "options")
        options_error.wait_for(timeout=10_000)
        assert options_error.inner_text().startswith("options.delay: ")
        phone.locator("#add-options").fill("")
        phone.locator("#add-submit").click()
        link = phone.locator("#add-result a[data-job]")
        link.wait_for(timeout=10_000)
        job = wait_job(api, "f-plain", "completed", link.get_attribute("data-job"))
        assert job["data"] == {"n": 1, "nested": {"ok": True}}
        assert job["name"] == "job"
        # On a phone nothing overflows sideways, and the button is on screen.
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        box = phone.locator("#add-submit").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390


def test_the_example_fills_the_form(page, srv):
    open_form(page, srv, "f-orders")
    page.locator("#add-example").click()
    assert field(page, "orderId").input_value() == "42"
    assert field(page, "email").input_value() == "ada@example.com"
    assert json.loads(field(page, "size").input_value()) == "m"
    assert not field(page, "express").is_checked()
