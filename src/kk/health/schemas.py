"""Answers of the health routes.

`/health` follows @nestjs/terminus: every indicator's result goes under `details`, the up
ones under `info`, the down ones under `error` (empty groups are `{}`), and `status` is
"ok" only when nothing is down. Indicators are typed; fields that don't apply are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, SerializeAsAny

IndicatorStatus = Literal["up", "down"]


class Indicator(BaseModel):
    status: IndicatorStatus
    message: str | None = None


class DatabaseIndicator(Indicator):
    responseTime: str | None = None


class RedisMemoryBrief(BaseModel):
    used: str
    healthy: bool


class RedisIndicator(Indicator):
    responseTime: str | None = None
    memory: RedisMemoryBrief | None = None
    warnings: list[str] | None = None


class HealthReport(BaseModel):
    status: Literal["ok", "error"]
    info: dict[str, SerializeAsAny[Indicator]]
    error: dict[str, SerializeAsAny[Indicator]]
    details: dict[str, SerializeAsAny[Indicator]]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def public(self) -> HealthReport:
        """The same verdict without numbers or error messages, for unauthenticated callers
        (messages may name hosts, and sizes describe the deployment)."""
        return aggregate({k: Indicator(status=v.status) for k, v in self.details.items()})


def aggregate(results: Mapping[str, Indicator]) -> HealthReport:
    """Terminus' grouping of indicator results into one report."""
    info = {name: r for name, r in results.items() if r.status == "up"}
    error = {name: r for name, r in results.items() if r.status != "up"}
    return HealthReport(
        status="error" if error else "ok", info=info, error=error, details=dict(results)
    )


class RedisMemory(BaseModel):
    used: str
    threshold: str
    healthy: bool
    maxmemory: str | None = None
    policy: str | None = None


class RedisConnections(BaseModel):
    current: int
    threshold: int
    healthy: bool
    max: int | None = None


class RedisHealth(BaseModel):
    """`GET /health/redis`. When Redis does not answer only status, error (and mode) are
    set; when it answers but refuses writes (memory full) status is down with every field."""

    status: IndicatorStatus
    ping: str | None = None
    responseTime: str | None = None
    memory: RedisMemory | None = None
    connections: RedisConnections | None = None
    mode: Literal["standalone", "cluster", "sentinel"] | None = None
    version: str | None = None
    server: str | None = None
    uptime: int | None = None
    warnings: list[str] | None = None
    error: str | None = None


class LiveProbe(BaseModel):
    status: Literal["ok"] = "ok"
