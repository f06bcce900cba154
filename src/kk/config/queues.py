"""Queues, their workers, their alert rules, and the limits on what clients may send."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from kk.config.lists import TextList
from kk.errors import AppError
from kk.names import validate_queue_name

BUILTIN_QUEUES = ("email", "image-processing", "cleanup", "webhook")


class AlertRules(BaseModel):
    """Critical thresholds per queue; `None` disables a rule. `warning` fires at
    `warning_ratio` times the threshold, `critical` at or above it."""

    # A send of a few thousand emails is a normal backlog; a stuck queue shows in
    # oldest_waiting_seconds first.
    waiting: int | None = 10_000
    failed: int | None = 50
    failure_ratio: float | None = 0.5
    failure_ratio_min_jobs: int = 20
    # The failure ratio is failed / (completed + failed) over this many recent minutes.
    failure_ratio_window_minutes: int = Field(60, ge=1, le=1440)
    oldest_waiting_seconds: int | None = 600
    paused: bool = True
    warning_ratio: float = Field(0.5, gt=0, le=1)


class QueueConfig(BaseModel):
    concurrency: int = Field(5, ge=1, le=1000)
    attempts: int = Field(3, ge=1, le=100)
    backoff_type: Literal["fixed", "exponential"] = "exponential"
    backoff_delay_ms: int = Field(1000, ge=0, le=86_400_000)
    # How many finished jobs BullMQ keeps (older ones are removed as new ones finish).
    keep_completed: int = Field(1000, ge=0)
    keep_failed: int = Field(5000, ge=0)
    # "package.module:function" of an async processor; built-in queues have their own.
    processor: str | None = None
    # "package.module:Model", a pydantic model that validates the job data at add time.
    payload: str | None = None
    alerts: AlertRules = Field(default_factory=AlertRules)

    def job_defaults(self) -> dict[str, Any]:
        """BullMQ job options every job of the queue gets unless its add says otherwise
        (API adds and schedule runs alike)."""
        return {
            "attempts": self.attempts,
            "backoff": {"type": self.backoff_type, "delay": self.backoff_delay_ms},
            "removeOnComplete": {"count": self.keep_completed},
            "removeOnFail": {"count": self.keep_failed},
        }


def _default_queues() -> dict[str, QueueConfig]:
    return {name: QueueConfig() for name in BUILTIN_QUEUES}


class QueueSettings(BaseModel):
    queues: dict[str, QueueConfig] = Field(default_factory=_default_queues)
    run_workers: bool = True
    # The tuned worker, batched adds and lean Redis pools use private parts of bullmq and
    # redis-py (kk.compat, pinned versions); false runs on their stock, public API.
    tuned_worker: bool = True
    # The queues this process works on (`kk worker --queue` sets it); unset = all.
    worker_queues: TextList | None = None
    # `kk worker` serves /metrics on this port when set (off by default), on loopback
    # unless a host is given.
    worker_metrics_port: int | None = Field(None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    lock_duration_ms: int = Field(30_000, ge=1000)
    stalled_interval_ms: int = Field(30_000, ge=500)
    max_stalled_count: int = Field(1, ge=0)
    shutdown_grace_s: float = Field(30.0, ge=0)

    # Limits.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_job_data_bytes: int = Field(65_536, ge=256)
    max_page_size: int = Field(1000, ge=1)
    # Open result waits and event streams (each holds a Redis connection): per client IP
    # and per process; over either limit a request gets 429.
    event_streams_per_client: int = Field(5, ge=1, le=10_000)
    event_streams_total: int = Field(100, ge=1, le=100_000)
    event_keepalive_s: float = Field(15.0, gt=0, le=300)  # SSE comment when nothing happens
    max_delay_ms: int = Field(365 * 86_400_000, ge=0)
    # Dashboard search reads at most this many jobs of one state (newest first).
    dashboard_search_max_scan: int = Field(5000, ge=1, le=1_000_000)

    @field_validator("queues", mode="after")
    @classmethod
    def _keep_builtins(cls, queues: dict[str, QueueConfig]) -> dict[str, QueueConfig]:
        merged = _default_queues()
        merged.update(queues)
        for name in merged:
            try:
                validate_queue_name(name)
            except AppError as exc:
                raise ValueError(f"queue '{name}': {exc.message}") from None
        return merged
