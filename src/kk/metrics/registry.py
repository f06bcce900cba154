"""Every metric of one app, on its own CollectorRegistry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

from kk.metrics.collectors import RedisSnapshotCollector

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
REDIS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class AppMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        # The process/platform/gc collectors are stateless readers: sharing them is safe.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        self.http_requests = Counter(
            "kk_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "kk_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "kk_http_requests_in_flight", "HTTP requests being served", registry=r
        )
        self.jobs = Counter(
            "kk_jobs",
            "Job attempts run by this process's workers, by queue and outcome",
            ["queue", "outcome"],
            registry=r,
        )
        self.job_duration = Histogram(
            "kk_job_duration_seconds",
            "Run time of job attempts by queue and outcome",
            ["queue", "outcome"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.jobs_released = Counter(
            "kk_jobs_released",
            "Jobs this process stopped at shutdown past the grace (not failed: run again by "
            "another worker). Counted as the process exits, so scrapes rarely see it: the "
            "process whose stalled check recovers them counts kk_jobs_stalled_total",
            ["queue"],
            registry=r,
        )
        self.jobs_active = Gauge(
            "kk_jobs_active", "Jobs running in this process's workers", ["queue"], registry=r
        )
        self.redis_latency = Histogram(
            "kk_redis_roundtrip_seconds",
            "Redis round trips measured by health checks (PING) and metric scrapes",
            ["source"],
            buckets=REDIS_BUCKETS,
            registry=r,
        )
        self.snapshot = RedisSnapshotCollector()
        r.register(self.snapshot)

    def observe_redis(self, source: str) -> Callable[[float], None]:
        return self.redis_latency.labels(source).observe
