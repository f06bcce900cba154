"""Dashboard search by job name and data, bounded scans, and bulk actions, against a real
`kk serve` and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.dashboard_support import FAIL_FIRST, dashboard_env
from tests.integration.helpers import add_job, assert_error, wait_job
from tests.support.server import KKServer, start_server

QUEUES = {
    "s-idle": {"attempts": 1},  # no processor: jobs stay waiting
    "s-work": {"processor": FAIL_FIRST, "attempts": 1},
}
SCAN = 2500
SEARCH = "/api/queue-dashboard/queues/s-idle/search"


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    env = dashboard_env(server_env, QUEUES, KK_DASHBOARD_SEARCH_MAX_SCAN=str(SCAN))
    with start_server(tmp_path_factory.mktemp("dash-search"), env) as server:
        yield server


@pytest.fixture(scope="module")
def api(srv: KKServer) -> Iterator[httpx.Client]:
    with srv.client as c:
        yield c


def _bulk_add(api: httpx.Client, jobs: list[dict[str, Any]]) -> list[str]:
    r = api.post("/api/queues/s-idle/jobs/bulk", json={"jobs": jobs})
    assert r.status_code == 201, r.text
    return r.json()["jobIds"]


@pytest.fixture(scope="module")
def filled(api: httpx.Client) -> dict[str, str]:
    """3000 waiting jobs; a few special ones placed oldest, in the middle and newest."""
    ids: dict[str, str] = {}
    ids["oldest"] = _bulk_add(api, [{"data": {"to": "old@example.com", "orderId": 1}}])[0]
    for batch in range(3):
        jobs = [
            {"name": "filler", "data": {"to": f"u{batch}-{i}@example.com", "orderId": 1000 + i}}
            for i in range(1000)
        ]
        if batch == 1:
            jobs[500] = {
                "name": "welcome",
                "data": {"to": "alice@example.com", "order": {"id": 42, "sku": "X-9"}},
            }
        added = _bulk_add(api, jobs)
        if batch == 1:
            ids["alice"] = added[500]
    ids["newest"] = _bulk_add(api, [{"name": "welcome", "data": {"to": "bob@example.com"}}])[0]
    return ids


def search(api: httpx.Client, q: str, **params: Any) -> dict[str, Any]:
    r = api.get(SEARCH, params={"q": q, "state": "waiting", **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_finds_one_job_by_a_data_field_among_thousands(api, filled):
    found = search(api, "to:alice@")
    assert [j["id"] for j in found["jobs"]] == [filled["alice"]]
    assert found["jobs"][0]["data"]["order"]["sku"] == "X-9"
    assert found["total"] == 3002
    # The scan stops at the bound and says so, even though only one job matched.
    assert found["scanned"] == SCAN
    assert found["complete"] is False


def test_nested_equals_and_name(api, filled):
    assert [j["id"] for j in search(api, "data.order.id=42")["jobs"]] == [filled["alice"]]
    assert search(api, "data.order.id=4")["jobs"] == []  # equals, not contains
    welcome = search(api, "name:welcome")
    assert [j["id"] for j in welcome["jobs"]] == [filled["newest"], filled["alice"]]  # newest first
    both = search(api, "name:WELCOME to:bob")
    assert [j["id"] for j in both["jobs"]] == [filled["newest"]]


def test_jobs_beyond_the_bound_are_not_read(api, filled):
    # The oldest job is the 3002nd newest: past the 2500 jobs a search reads.
    found = search(api, "to:old@")
    assert found["jobs"] == [] and found["scanned"] == SCAN and found["complete"] is False


def test_limit_stops_the_scan_early(api, filled):
    found = search(api, "name:filler", limit=10)
    assert len(found["jobs"]) == 10
    assert found["scanned"] == 10 + 1  # the newest job ("welcome") was read first
    assert found["complete"] is False


def test_a_state_read_to_the_end_is_complete(api, filled):
    r = api.get(SEARCH, params={"q": "name:welcome", "state": "failed"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"jobs": [], "scanned": 0, "total": 0, "complete": True}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"q": ""}, 400, "VALIDATION_ERROR"),
        ({"q": "to:"}, 400, "VALIDATION_ERROR"),
        ({"q": "data..x=1"}, 400, "VALIDATION_ERROR"),
        ({"q": "x", "state": "nope"}, 400, "VALIDATION_ERROR"),
        ({"q": "x", "limit": 0}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_searches_are_client_errors(api, params, status, code):
    assert_error(api.get(SEARCH, params=params), status, code)


def test_unknown_queue(api):
    r = api.get("/api/queue-dashboard/queues/nope/search", params={"q": "x"})
    assert_error(r, 404, "QUEUE_NOT_FOUND")


BULK = "/api/queue-dashboard/queues/s-work/jobs/bulk-action"


def test_bulk_retry_runs_failed_jobs_again_and_reports_each_id(api):
    failed = [add_job(api, "s-work", {"failFirst": True, "n": n}) for n in range(3)]
    for job_id in failed:
        wait_job(api, "s-work", "failed", job_id)
    done = add_job(api, "s-work", {"n": 9})
    wait_job(api, "s-work", "completed", done)

    r = api.post(BULK, json={"action": "retry", "ids": [*failed, done, "missing"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["succeeded"] == 3 and body["failed"] == 2
    outcome = {o["id"]: o for o in body["results"]}
    assert all(outcome[i]["ok"] for i in failed)
    assert outcome[done]["code"] == "JOB_NOT_RETRYABLE"
    assert outcome["missing"]["code"] == "JOB_NOT_FOUND"
    for job_id in failed:  # the second run succeeds
        assert wait_job(api, "s-work", "completed", job_id)["returnValue"] == {"runs": 2}


def test_bulk_promote_and_remove(api):
    delayed = [add_job(api, "s-idle", {"d": n}, delay=600_000) for n in range(2)]
    r = api.post(
        "/api/queue-dashboard/queues/s-idle/jobs/bulk-action",
        json={"action": "promote", "ids": delayed},
    )
    assert r.status_code == 200 and r.json()["succeeded"] == 2, r.text
    for job_id in delayed:
        assert api.get(f"/api/queues/s-idle/jobs/{job_id}").json()["data"]["status"] == "waiting"
    r = api.post(
        "/api/queue-dashboard/queues/s-idle/jobs/bulk-action",
        json={"action": "remove", "ids": delayed},
    )
    assert r.json()["succeeded"] == 2, r.text
    for job_id in delayed:
        assert_error(api.get(f"/api/queues/s-idle/jobs/{job_id}"), 404, "JOB_NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode", "ids": ["1"]},
        {"action": "retry", "ids": []},
        {"action": "retry", "ids": [str(i) for i in range(1001)]},
        {"action": "retry"},
        {"action": "retry", "ids": ["1"], "extra": 1},
    ],
)
def test_bad_bulk_requests(api, body):
    assert_error(api.post(BULK, json=body), 400, "VALIDATION_ERROR")
