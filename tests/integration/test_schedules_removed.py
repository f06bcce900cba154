"""A schedule taken out of the configuration stops firing after a restart: its BullMQ job
scheduler is removed at start-up, and only the schedulers this service created."""

from __future__ import annotations

import time
import uuid

from tests.integration.dashboard_support import dashboard_env
from tests.support.server import start_server, wait_for

QUEUES = {"r-tick": {"processor": "tests.support.processors:flaky", "attempts": 1}}
KEEP = {"queue": "r-tick", "job": "keep-tick", "cron": "* * * * * *"}
GONE = {"queue": "r-tick", "job": "gone-tick", "cron": "* * * * * *"}


def listed(client) -> dict[str, dict]:
    data = client.get("/api/queue-dashboard/scheduled-jobs").json()["data"]
    return {s["name"]: s for s in data}


def ticks(client, job_name: str) -> int:
    count = 0
    for status in ("completed", "failed", "active", "waiting", "delayed"):
        page = client.get("/api/queues/r-tick/jobs", params={"status": status, "end": 999})
        count += sum(1 for j in page.json()["data"] if j["name"] == job_name)
    return count


def test_a_removed_schedule_stops_firing_after_a_restart(
    server_env, tmp_path_factory, redis_client
):
    prefix = f"kkr-{uuid.uuid4().hex[:8]}"
    repeat_key = f"{prefix}:r-tick:repeat"
    # Made by someone else on the same queue (no kk registry entry): must survive.
    foreign = "foreign-scheduler"
    both = dashboard_env(server_env, QUEUES, {"keep": KEEP, "gone": GONE}, prefix=prefix)
    with start_server(tmp_path_factory.mktemp("sched-1"), both) as srv, srv.client as client:
        wait_for(lambda: ticks(client, "gone-tick") >= 1, what="the 'gone' schedule to fire")
        assert set(listed(client)) == {"keep", "gone"}
        redis_client.zadd(repeat_key, {foreign: time.time() * 1000 + 86_400_000})

    one = dashboard_env(server_env, QUEUES, {"keep": KEEP}, prefix=prefix)
    with start_server(tmp_path_factory.mktemp("sched-2"), one) as srv, srv.client as client:
        wait_for(
            lambda: redis_client.zscore(repeat_key, "gone") is None,
            what="the removed schedule's job scheduler to be deleted",
        )
        assert redis_client.zscore(repeat_key, "keep") is not None
        assert redis_client.zscore(repeat_key, foreign) is not None, "not ours: left alone"
        assert "schedule gone: no longer configured" in srv.log()
        assert set(listed(client)) == {"keep"}
        fired = ticks(client, "gone-tick")
        kept = ticks(client, "keep-tick")
        time.sleep(3)
        assert ticks(client, "gone-tick") == fired, "the removed schedule still fires"
        assert ticks(client, "keep-tick") > kept, "the configured one goes on"
    redis_client.zrem(repeat_key, foreign)
