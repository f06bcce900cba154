"""Producers waiting for a job's result, and the live events stream (SSE), through a real
`kk serve` against a real Redis."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.helpers import add_job, assert_error
from tests.support.server import KKServer, start_server, wait_for


@pytest.fixture
def client(server: KKServer) -> Iterator[httpx.Client]:
    with server.client as c:
        yield c


def _result(client: httpx.Client, queue: str, job_id: str, wait: float) -> httpx.Response:
    return client.get(f"/api/queues/{queue}/jobs/{job_id}/result", params={"wait": wait})


def test_a_producer_waits_for_a_job_that_completes(client):
    job_id = add_job(client, "t-basic", {"value": 21}, delay=1500)
    started = time.monotonic()
    response = _result(client, "t-basic", job_id, 20)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["jobId"] == job_id
    assert data["state"] == "completed" and data["finished"] is True
    assert data["returnValue"] == {"doubled": 42}
    assert data["failedReason"] is None and data["finishedOn"]
    # It waited for the delayed job (not an answer at once), and not until the wait ended.
    assert 1.0 <= took < 15, took
    # Asked again, a finished job answers at once.
    started = time.monotonic()
    again = _result(client, "t-basic", job_id, 20).json()["data"]
    assert again["returnValue"] == {"doubled": 42} and time.monotonic() - started < 2


def test_a_producer_waits_for_a_job_that_fails(client):
    job_id = add_job(client, "t-basic", {"value": 7, "fail": True}, delay=1000)
    started = time.monotonic()
    response = _result(client, "t-basic", job_id, 20)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["state"] == "failed" and data["finished"] is True
    assert "requested failure for value 7" in data["failedReason"]
    assert data["returnValue"] is None
    assert 0.8 <= time.monotonic() - started < 15


def test_a_wait_that_ends_first_answers_the_current_state(client):
    job_id = add_job(client, "t-idle", {"n": 1})  # no worker runs t-idle
    started = time.monotonic()
    response = _result(client, "t-idle", job_id, 1)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "jobId": job_id,
        "state": "waiting",
        "finished": False,
        "returnValue": None,
        "failedReason": None,
        "finishedOn": None,
    }
    assert 0.9 <= took < 5, took
    # wait=0 answers at once.
    started = time.monotonic()
    assert _result(client, "t-idle", job_id, 0).json()["data"]["finished"] is False
    assert time.monotonic() - started < 1


def test_result_input_errors(client):
    job_id = add_job(client, "t-idle", {"n": 2})
    assert_error(_result(client, "t-idle", job_id, 61), 400, "VALIDATION_ERROR")
    assert_error(_result(client, "t-idle", job_id, -1), 400, "VALIDATION_ERROR")
    assert_error(_result(client, "t-idle", "no-such-job", 1), 404, "JOB_NOT_FOUND")
    assert_error(_result(client, "t-idle", "events", 1), 404, "JOB_NOT_FOUND")
    assert_error(_result(client, "no-such-queue", job_id, 1), 404, "QUEUE_NOT_FOUND")
    bad_resume = client.get("/api/queues/t-idle/events", headers={"Last-Event-ID": "x; DROP"})
    assert_error(bad_resume, 400, "VALIDATION_ERROR")


# -- SSE -------------------------------------------------------------------------------


def _sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Events of an SSE response (comments skipped), each {id, event, data}."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if "id" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" else value


def _take(events: Iterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return [next(events) for _ in range(count)]


def test_events_stream_resumes_after_the_last_event_id(server, client, redis_client, queue_prefix):
    key = f"{queue_prefix}:t-idle:events"
    sse = httpx.Client(base_url=server.url, timeout=10)
    with sse.stream("GET", "/api/queues/t-idle/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        first = [add_job(client, "t-idle", {"n": i}) for i in range(2)]
        events = _sse(response)
        # New events only: the first one is the first new job's, nothing older.
        seen = []
        while not any(e["event"] == "added" and e["data"]["jobId"] == first[1] for e in seen):
            seen.append(next(events))
        assert seen[0]["event"] == "added" and seen[0]["data"]["jobId"] == first[0]
        for event in seen:
            assert event["data"]["event"] == event["event"]
        last_id = seen[-1]["id"]
    # Disconnected: more jobs are added meanwhile.
    later = [add_job(client, "t-idle", {"n": i}) for i in range(2, 5)]
    missed = redis_client.xrange(key, min=f"({last_id}")
    assert any(fields.get("jobId") == later[-1] for _, fields in missed)
    with sse.stream("GET", "/api/queues/t-idle/events", headers={"Last-Event-ID": last_id}) as r:
        assert r.status_code == 200
        got = _take(_sse(r), len(missed))
    assert [(e["id"], e["data"]) for e in got] == missed
    assert [e["event"] for e in got] == [fields["event"] for _, fields in missed]
    # The query form resumes the same way.
    with sse.stream("GET", "/api/queues/t-idle/events", params={"lastEventId": last_id}) as r:
        assert [e["id"] for e in _take(_sse(r), len(missed))] == [i for i, _ in missed]
    sse.close()


# -- limits and shutdown -----------------------------------------------------------------


def test_open_streams_are_limited_per_client_and_end_on_shutdown(tmp_path, server_env):
    env = {**server_env, "KK_EVENT_STREAMS_PER_CLIENT": "2", "KK_SHUTDOWN_GRACE_S": "20"}
    with start_server(tmp_path, env) as srv, srv.client as http:
        job_id = add_job(http, "t-idle", {"n": 1})
        streams = [httpx.Client(base_url=srv.url, timeout=30) for _ in range(2)]
        opened = [s.stream("GET", "/api/queues/t-idle/events") for s in streams]
        for stream in opened:
            assert stream.__enter__().status_code == 200
        limited = http.get("/api/queues/t-idle/events")
        body = assert_error(limited, 429, "RATE_LIMITED")
        assert "2" in body["error"] and int(limited.headers["Retry-After"]) >= 1
        assert_error(_result(http, "t-idle", job_id, 1), 429, "RATE_LIMITED")
        assert http.get("/api/queues/stats").status_code == 200  # other routes unaffected

        # A client that hangs up frees its slot.
        opened[0].__exit__(None, None, None)
        streams[0].close()
        wait_for(
            lambda: _result(http, "t-idle", job_id, 0).status_code == 200,
            timeout=10,
            what="the closed stream's slot to be freed",
        )

        # So does a producer that gives up waiting (long before its 60 s wait ends).
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{srv.url}/api/queues/t-idle/jobs/{job_id}/result?wait=60", timeout=1)
        wait_for(
            lambda: _result(http, "t-idle", job_id, 0).status_code == 200,
            timeout=10,
            what="the abandoned wait's slot to be freed",
        )

        # SIGTERM ends the open stream and an open wait at once, instead of holding the
        # server for its graceful-shutdown timeout (here 25 s).
        answers: list[httpx.Response] = []
        waiter = threading.Thread(
            target=lambda: answers.append(
                _result(httpx.Client(base_url=srv.url), "t-idle", job_id, 60)
            ),
        )
        waiter.start()
        wait_for(
            lambda: _result(http, "t-idle", job_id, 0).status_code == 429,
            timeout=10,
            what="the waiter to hold the second slot",
        )
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=20)
        assert time.monotonic() - started < 8
        waiter.join(timeout=5)
        assert answers and answers[0].status_code == 200, answers
        assert answers[0].json()["data"]["finished"] is False
        opened[1].__exit__(None, None, None)
        streams[1].close()


def test_a_completed_event_carries_the_result_as_json_not_a_string_of_it(server, client):
    sse = httpx.Client(base_url=server.url, timeout=20)
    with sse.stream("GET", "/api/queues/t-basic/events") as response:
        job_id = add_job(client, "t-basic", {"value": 21})
        events = _sse(response)
        completed = next(
            e for e in events if e["event"] == "completed" and e["data"]["jobId"] == job_id
        )
    sse.close()
    assert completed["data"]["returnvalue"] == {"doubled": 42}
