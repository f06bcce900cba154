"""The tuned worker's lean per-job steps give what the `bullmq` package's own steps give:
the `moveToFinished` arguments byte for byte, and the same `Job` from a stored hash."""

from __future__ import annotations

import json
import time

import pytest
from bullmq import Job
from redis.asyncio import Redis

from kk.compat.chaining_worker import ChainingWorker
from kk.compat.lean_job import job_from_hash


@pytest.fixture
def worker():
    # Never connects: only the argument building and the Job construction are used.
    return ChainingWorker(
        "mail",
        lambda *_: None,
        {"connection": Redis(port=1), "prefix": "kk", "autorun": False,
         "lockDuration": 12000, "metrics": {"maxDataPoints": 2880}},
    )  # fmt: skip


def _job(worker, opts: dict, attempts_made: int = 0) -> Job:
    job = Job(worker, "send", {"to": "a@example.com"}, opts, "42")
    job.attemptsMade = attempts_made
    return job


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"removeOnComplete": True},
        {"removeOnComplete": False, "attempts": 3},
        {"removeOnComplete": 100},
        {"removeOnComplete": {"age": 3600, "count": 10}},
        {"attempts": 5, "failParentOnFailure": True},
        {"continueParentOnFailure": True},
        {"ignoreDependencyOnFailure": True},
        {"removeDependencyOnFailure": True},
    ],
)
@pytest.mark.parametrize("result", [None, {"sent": True}, "ok", 3, [1, "two"]])
@pytest.mark.parametrize("fetch_next", [True, False])
def test_completed_args_are_the_packages_own(worker, monkeypatch, opts, result, fetch_next):
    monkeypatch.setattr(time, "time", lambda: 1764300000.123)
    job = _job(worker, opts, attempts_made=1)
    remove = job.opts.get("removeOnComplete", False)
    expected = worker.backend.scripts.moveToCompletedArgs(job, result, remove, "tok:7", fetch_next)
    assert worker.completed_args(job, result, "tok:7", fetch_next) == expected


def test_completed_args_follow_a_renamed_queue(worker):
    job = _job(worker, {})
    worker.completed_args(job, None, "t", True)
    worker.backend.scripts.resetQueueKeys("other")
    keys, _ = worker.completed_args(job, None, "t", True)
    assert keys == worker.backend.scripts.moveToCompletedArgs(job, None, False, "t", True)[0]
    assert all(key.startswith("kk:other:") for key in keys)


def _hash(opts: dict | None = None, **fields: str) -> dict[str, str]:
    raw = {"name": "send", "data": json.dumps({"to": "a@example.com", "n": [1, 2]}),
           "timestamp": "1764300000000", "delay": "0", "priority": "0"}  # fmt: skip
    if opts is not None:
        raw["opts"] = json.dumps(opts)
    raw.update(fields)
    return raw


HASHES = [
    _hash(),
    _hash({}),
    _hash({"removeOnComplete": True, "attempts": 3, "backoff": 1000}),
    _hash({"attempts": 2, "backoff": {"type": "exponential", "delay": 50}, "kl": 20}),
    _hash({"removeOnFail": {"count": 5}, "jobId": "custom"}, processedOn="1764300000100",
          ats="2", atm="1", stc="1"),
    _hash({"delay": 500}, delay="500", priority="4", progress="42"),
    _hash({}, progress='{"step": 3}', stacktrace='["Error: one", "Error: two"]'),
    _hash({}, returnvalue='{"ok": true}', finishedOn="1764300000200"),
    _hash({}, returnvalue="not json", failedReason="boom", defa="bad payload"),
    _hash({}, attemptsMade="4"),
    _hash({"repeat": {"every": 1000}}, rjk="repeat:key"),
    _hash({}, parentKey="kk:other:9", parent='{"id": "9", "queueKey": "kk:other"}'),
    # Options that Job.__init__ itself handles: the lean path hands these to the package.
    _hash({"parent": {"id": "9", "queue": "kk:other"}, "fpof": True}),
    _hash({"de": {"id": "dedupe-1"}}),
    _hash({"rdof": True}),
]  # fmt: skip


@pytest.mark.parametrize("raw", HASHES)
@pytest.mark.parametrize("job_id", ["17", None])
def test_a_job_from_its_hash_is_the_packages_own(worker, raw, job_id):
    if job_id is None:
        raw = {**raw, "id": b"17"}
    lean, package = job_from_hash(worker, raw, job_id), Job.fromJSON(worker, raw, job_id)
    assert vars(lean) == vars(package)


def test_bad_json_fails_as_in_the_package(worker):
    for raw in (_hash({}, data="{not json"), {**_hash(), "opts": "{oops"}):
        with pytest.raises(ValueError):
            Job.fromJSON(worker, raw, "1")
        with pytest.raises(ValueError):
            job_from_hash(worker, raw, "1")
