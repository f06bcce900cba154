"""`/metrics` read by the Prometheus client's own parser: the series exist and move when
requests are served, jobs run, queues fill and the cache counts."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_QUEUES
from tests.integration.helpers import add_job, job_in, wait_job
from tests.support.private_redis import ProxiedRedis, proxied_redis
from tests.support.server import start_server, wait_for

CACHE_STATS_KEY = "kk:cache:__stats"


@dataclass
class Scrape:
    families: set[str]
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def value(self, name: str, **labels: str) -> float:
        found = self.get(name, **labels)
        assert found is not None, f"no sample {name}{labels}"
        return found

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for (n, labels) in self.samples if n == name]


def scrape(client: httpx.Client) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families: set[str] = set()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(families, samples)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedRedis]:
    with proxied_redis(tmp_path_factory.mktemp("metrics-redis")) as proxied:
        yield proxied


@pytest.fixture(scope="module")
def client(redis: ProxiedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    env = {
        "KK_REDIS_URL": redis.url,
        "KK_QUEUE_PREFIX": f"kkm-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(TEST_QUEUES),
        "KK_SHUTDOWN_GRACE_S": "2",
    }
    with start_server(tmp_path_factory.mktemp("metrics-kk"), env) as srv, srv.client as http:
        yield http


def test_the_exposition_parses_and_has_every_family(client: httpx.Client):
    metrics = scrape(client)
    expected = {
        "kk_http_requests",
        "kk_http_request_duration_seconds",
        "kk_http_requests_in_flight",
        "kk_jobs",
        "kk_job_duration_seconds",
        "kk_jobs_active",
        "kk_queue_jobs",
        "kk_queue_paused",
        "kk_redis_up",
        "kk_redis_roundtrip_seconds",
        "process_resident_memory_bytes",
    }
    assert expected <= metrics.families, expected - metrics.families
    assert metrics.value("kk_redis_up") == 1
    # Job series of every queue exist at 0 before any job ran (rate() sees the first one).
    assert metrics.value("kk_jobs_total", queue="t-idle", outcome="failed") == 0
    assert client.get("/metrics").headers["cache-control"].startswith("no-cache")


def test_http_requests_are_labelled_by_route_template(client: httpx.Client):
    before = scrape(client)
    template = "/api/queues/{queueName}/stats"
    for queue in ("t-idle", "t-basic"):
        assert client.get(f"/api/queues/{queue}/stats").status_code == 200
    assert client.get("/api/queues/t-idle/jobs/no-such-job").status_code == 404
    for i in range(3):
        assert client.get(f"/no/such/path/{uuid.uuid4().hex}-{i}").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - (before.get(name, **labels) or 0)

    assert delta("kk_http_requests_total", method="GET", route=template, status="200") == 2
    assert delta("kk_http_request_duration_seconds_count", method="GET", route=template) == 2
    assert (
        delta(
            "kk_http_requests_total",
            method="GET",
            route="/api/queues/{queueName}/jobs/{jobId}",
            status="404",
        )
        == 1
    )
    assert delta("kk_http_requests_total", method="GET", route="<unmatched>", status="404") == 3
    routes = {labels["route"] for labels in after.labels_of("kk_http_requests_total")}
    assert not [r for r in routes if "t-idle" in r or "no-such" in r or "/no/such" in r], routes
    inf = after.value(
        "kk_http_request_duration_seconds_bucket", method="GET", route=template, le="+Inf"
    )
    assert inf == after.value(
        "kk_http_request_duration_seconds_count", method="GET", route=template
    )


def test_adds_of_the_fast_lane_and_of_the_route_share_one_label(client: httpx.Client):
    """Well-formed adds are answered in front of FastAPI, refused ones by the route: both
    are counted under the route's template, by status."""
    before = scrape(client)
    for i in range(3):
        add_job(client, "t-idle", {"i": i})
    assert client.post("/api/queues/t-idle/jobs", json={"data": 1}).status_code == 400
    after = scrape(client)
    template = "/api/queues/{queueName}/jobs"

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - (before.get(name, **labels) or 0)

    assert delta("kk_http_requests_total", method="POST", route=template, status="201") == 3
    assert delta("kk_http_requests_total", method="POST", route=template, status="400") == 1
    assert delta("kk_http_request_duration_seconds_count", method="POST", route=template) == 4


def test_job_counters_and_durations_move_when_jobs_run(client: httpx.Client):
    before = scrape(client)
    ok = [add_job(client, "t-basic", {"value": i}) for i in range(3)]
    bad = add_job(client, "t-basic", {"fail": True, "value": 9})
    for job_id in ok:
        wait_job(client, "t-basic", "completed", job_id)
    wait_job(client, "t-basic", "failed", bad)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - (before.get(name, **labels) or 0)

    assert delta("kk_jobs_total", queue="t-basic", outcome="completed") == 3
    assert delta("kk_jobs_total", queue="t-basic", outcome="failed") == 1
    assert delta("kk_job_duration_seconds_count", queue="t-basic", outcome="completed") == 3
    assert delta("kk_job_duration_seconds_sum", queue="t-basic", outcome="completed") > 0
    labels = {"queue": "t-basic", "outcome": "failed", "le": "+Inf"}
    assert delta("kk_job_duration_seconds_bucket", **labels) == 1
    assert after.value("kk_queue_jobs", queue="t-basic", state="completed") >= 3
    assert after.value("kk_queue_jobs", queue="t-basic", state="failed") >= 1


def test_active_jobs_and_their_duration(client: httpx.Client):
    job_id = add_job(client, "t-sleep", {"seconds": 1.5})
    wait_for(lambda: job_in(client, "t-sleep", "active", job_id), what="the job to start")
    running = scrape(client)
    assert running.value("kk_jobs_active", queue="t-sleep") == 1
    assert running.value("kk_queue_jobs", queue="t-sleep", state="active") == 1
    wait_job(client, "t-sleep", "completed", job_id)
    done = scrape(client)
    assert done.value("kk_jobs_active", queue="t-sleep") == 0
    assert done.value("kk_job_duration_seconds_sum", queue="t-sleep", outcome="completed") >= 1.5
    # 1.5 s lands above the 1 s bucket and within the 2.5 s one.
    bucket = {"queue": "t-sleep", "outcome": "completed"}
    assert done.value("kk_job_duration_seconds_bucket", le="1.0", **bucket) == 0
    assert done.value("kk_job_duration_seconds_bucket", le="2.5", **bucket) == 1


def test_queue_depth_and_pause_are_read_at_scrape_time(client: httpx.Client):
    before = scrape(client).value("kk_queue_jobs", queue="t-idle", state="waiting")
    for i in range(4):
        add_job(client, "t-idle", {"n": i})
    delayed = add_job(client, "t-idle", {"n": 99}, delay=600_000)
    metrics = scrape(client)
    assert metrics.value("kk_queue_jobs", queue="t-idle", state="waiting") == before + 4
    assert metrics.value("kk_queue_jobs", queue="t-idle", state="delayed") >= 1
    assert metrics.value("kk_queue_paused", queue="t-pause") == 0
    assert client.post("/api/queues/t-pause/pause").status_code == 200
    try:
        assert scrape(client).value("kk_queue_paused", queue="t-pause") == 1
    finally:
        client.post("/api/queues/t-pause/resume")
    assert scrape(client).value("kk_queue_paused", queue="t-pause") == 0
    assert job_in(client, "t-idle", "delayed", delayed)


def test_cache_counters_come_from_the_shared_hash(client: httpx.Client, redis: ProxiedRedis):
    direct = redis.client()
    try:
        direct.delete(CACHE_STATS_KEY)
        assert "kk_cache_hits" not in scrape(client).families, "no hash, no cache series"
        direct.hset(CACHE_STATS_KEY, mapping={"hits": 150, "misses": 25, "sets": 30, "deletes": 2})
        metrics = scrape(client)
        assert metrics.value("kk_cache_hits_total") == 150
        assert metrics.value("kk_cache_misses_total") == 25
        assert metrics.value("kk_cache_sets_total") == 30
        assert metrics.value("kk_cache_deletes_total") == 2
        direct.hincrby(CACHE_STATS_KEY, "hits", 5)
        assert scrape(client).value("kk_cache_hits_total") == 155
    finally:
        direct.delete(CACHE_STATS_KEY)
        direct.close()


def test_redis_round_trips_are_timed_by_health_checks_and_scrapes(client: httpx.Client):
    first = scrape(client)
    assert client.get("/health").json()["details"]["redis"]["status"] == "up"
    assert client.get("/health/redis").status_code == 200
    second = scrape(client)
    count = "kk_redis_roundtrip_seconds_count"
    assert second.value(count, source="health") - first.value(count, source="health") == 2
    assert second.value(count, source="scrape") - first.value(count, source="scrape") == 1
    assert second.value("kk_redis_roundtrip_seconds_sum", source="scrape") > 0


def test_a_scrape_during_a_redis_outage_still_answers(client: httpx.Client, redis: ProxiedRedis):
    redis.proxy.stop()
    try:
        started = time.monotonic()
        metrics = scrape(client)
        assert time.monotonic() - started < 3
        assert metrics.value("kk_redis_up") == 0
        assert "kk_queue_jobs" not in metrics.families, "no stale queue depth"
        assert "kk_http_requests" in metrics.families
    finally:
        redis.proxy.start()
    wait_for(lambda: scrape(client).value("kk_redis_up") == 1, what="kk_redis_up back to 1")
