"""Health checks and metrics."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthSettings(BaseModel):
    # Each dependency check gives up after this long, so a hung dependency can't hang a probe.
    health_timeout_ms: int = Field(1000, ge=50, le=60_000)
    health_redis_memory_threshold_mb: float = Field(1024, gt=0)
    health_redis_connections_threshold: int = Field(100, ge=1)
    metrics_enabled: bool = True
