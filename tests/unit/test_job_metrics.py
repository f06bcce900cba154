"""Job metrics: a job released at shutdown is counted as released, never as failed."""

from __future__ import annotations

from typing import Any

from kk.metrics.jobs import JobMetrics
from kk.metrics.registry import AppMetrics


def sample(metrics: AppMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_released_jobs_are_counted_apart_from_failures() -> None:
    metrics = AppMetrics()
    listener = JobMetrics(metrics, ["q"])
    job: Any = object()
    assert sample(metrics, "kk_jobs_released_total", queue="q") == 0
    for outcome in ("completed", "failed", "released"):
        listener.job_started("q", job)
        listener.job_finished("q", job, outcome, 0.5, None)
    assert sample(metrics, "kk_jobs_total", queue="q", outcome="completed") == 1
    assert sample(metrics, "kk_jobs_total", queue="q", outcome="failed") == 1
    assert sample(metrics, "kk_jobs_released_total", queue="q") == 1
    assert sample(metrics, "kk_jobs_total", queue="q", outcome="released") is None
    assert sample(metrics, "kk_jobs_active", queue="q") == 0
