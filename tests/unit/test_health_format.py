"""Formatting as the contract writes it, terminus aggregation, and the small pure helpers."""

from __future__ import annotations

import asyncio

import pytest
from starlette.routing import Mount, Route

from kk.health.indicators import policy_warnings, redis_mode
from kk.health.schemas import (
    DatabaseIndicator,
    RedisIndicator,
    RedisMemoryBrief,
    aggregate,
)
from kk.metrics.middleware import UNMATCHED, route_template
from kk.singleflight import SingleFlight
from kk.units import MB, format_mb, format_ms, format_threshold_mb


@pytest.mark.parametrize(
    ("size", "text"),
    [(2.5 * MB, "2.50MB"), (0, "0.00MB"), (1_048_576, "1.00MB"), (1536 * MB, "1536.00MB"),
     (1_234_567, "1.18MB")],
)  # fmt: skip
def test_sizes(size: float, text: str):
    assert format_mb(size) == text


@pytest.mark.parametrize(
    ("mb", "text"), [(1024, "1024MB"), (1024.0, "1024MB"), (512.5, "512.5MB"), (0.25, "0.25MB")]
)
def test_thresholds(mb: float, text: str):
    assert format_threshold_mb(mb) == text


@pytest.mark.parametrize(
    ("ms", "text"), [(5, "5ms"), (4.6, "5ms"), (0.2, "0ms"), (1234.4, "1234ms")]
)
def test_durations(ms: float, text: str):
    assert format_ms(ms) == text


def _redis_up() -> RedisIndicator:
    return RedisIndicator(
        status="up", responseTime="5ms", memory=RedisMemoryBrief(used="2.50MB", healthy=True)
    )


def test_all_up_is_ok_with_an_empty_error_group():
    report = aggregate({"database": DatabaseIndicator(status="up"), "redis": _redis_up()})
    assert report.ok
    assert report.model_dump(mode="json", exclude_none=True) == {
        "status": "ok",
        "info": {
            "database": {"status": "up"},
            "redis": {
                "status": "up",
                "responseTime": "5ms",
                "memory": {"used": "2.50MB", "healthy": True},
            },
        },
        "error": {},
        "details": {
            "database": {"status": "up"},
            "redis": {
                "status": "up",
                "responseTime": "5ms",
                "memory": {"used": "2.50MB", "healthy": True},
            },
        },
    }


def test_one_down_is_error_and_listed_under_error_only():
    down = RedisIndicator(status="down", message="Timed out: no answer within 1000ms")
    report = aggregate({"database": DatabaseIndicator(status="up"), "redis": down})
    body = report.model_dump(mode="json", exclude_none=True)
    assert body["status"] == "error" and not report.ok
    assert body["info"] == {"database": {"status": "up"}}
    assert body["error"] == {"redis": {"status": "down", "message": down.message}}
    assert body["details"]["redis"] == body["error"]["redis"]


def test_the_public_report_keeps_the_verdict_only():
    down = DatabaseIndicator(status="down", message="connection refused by db.internal:5432")
    public = aggregate({"database": down, "redis": _redis_up()}).public()
    assert public.model_dump(mode="json", exclude_none=True) == {
        "status": "error",
        "info": {"redis": {"status": "up"}},
        "error": {"database": {"status": "down"}},
        "details": {"database": {"status": "down"}, "redis": {"status": "up"}},
    }


def test_redis_mode():
    assert redis_mode("redis://h:6379/0", {"redis_mode": "standalone"}) == "standalone"
    assert redis_mode("redis://h:6379/0", {"redis_mode": "cluster"}) == "cluster"
    assert redis_mode("redis://h:6379/0", {"server_mode": "cluster"}) == "cluster"  # Valkey 8
    assert redis_mode("redis+sentinel://s:26379/mymaster", {"redis_mode": "standalone"}) == (
        "sentinel"
    )
    assert redis_mode("unix:///tmp/r.sock", {}) == "standalone"


def test_only_noeviction_is_safe_for_queues():
    assert policy_warnings({"maxmemory_policy": "noeviction"}) == []
    [warning] = policy_warnings({"maxmemory_policy": "allkeys-lru"})
    assert "allkeys-lru" in warning and "noeviction" in warning


def test_route_templates_not_raw_paths():
    route = Route("/api/queues/{queueName}/jobs/{jobId}", endpoint=lambda r: None)
    scope = {"route": route, "root_path": ""}
    assert route_template(scope, "") == "/api/queues/{queueName}/jobs/{jobId}"
    assert route_template({"root_path": ""}, "") == UNMATCHED
    assert route_template({"root_path": "/static"}, "") == "/static/{path}"
    inner = Route("/x/{y}", endpoint=lambda r: None)
    assert route_template({"route": inner, "root_path": "/sub"}, "") == "/sub/x/{y}"
    mount = Mount("/dashboard", routes=[])
    assert route_template({"route": mount, "root_path": ""}, "") == "/dashboard/{path}"


async def test_single_flight_shares_one_call_and_never_waits_past_the_deadline():
    flights = SingleFlight()
    calls = 0
    release = asyncio.Event()

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "done"

    results = await asyncio.gather(
        *(flights.run("k", slow, 0.05) for _ in range(3)), return_exceptions=True
    )
    assert calls == 1
    assert all(isinstance(r, TimeoutError) for r in results), results
    # Still pending: the next probe waits on the same call instead of starting another.
    with pytest.raises(TimeoutError):
        await flights.run("k", slow, 0.05)
    assert calls == 1
    release.set()
    await asyncio.sleep(0)
    assert await flights.run("k", slow, 1) == "done"
    assert calls == 2  # a finished call is not reused: every probe after it checks afresh
    await flights.close()
