"""Answers of the /api/queue-dashboard routes and of the dashboard's job actions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kk.queues.schemas import JobView, QueueStats
from kk.queues.workers_view import WorkerProcess


class AlertView(BaseModel):
    queue: str
    level: Literal["warning", "critical"]
    message: str
    value: int | float
    threshold: int | float
    rule: str


class Totals(BaseModel):
    totalWaiting: int
    totalActive: int
    totalCompleted: int
    totalFailed: int
    totalQueues: int
    totalDelayed: int = 0
    totalPaused: int = 0


class OverviewMetrics(BaseModel):
    total: Totals


class Overview(BaseModel):
    stats: list[QueueStats]
    metrics: OverviewMetrics
    alerts: list[AlertView]
    timestamp: str


class HealthMetrics(BaseModel):
    waiting: int
    active: int
    failed: int


class QueueHealth(BaseModel):
    healthy: bool
    metrics: HealthMetrics
    # Worker connections seen in CLIENT LIST; None when the server does not allow it.
    workers: int | None = None
    reasons: list[str] = []
    # One per reason, for clients to act on (the alert rule, or "no_worker"); the reasons
    # are English text for people.
    reasonCodes: list[str] = []


class QueuesHealth(BaseModel):
    status: Literal["up", "down"]
    queues: dict[str, QueueHealth]


class HealthData(BaseModel):
    queues: QueuesHealth


class ThroughputPoint(BaseModel):
    time: str
    completed: int
    failed: int


class ThroughputTotals(BaseModel):
    completed: int
    failed: int


class Throughput(BaseModel):
    queue: str
    minutes: int
    points: list[ThroughputPoint]
    totals: ThroughputTotals


class Series(BaseModel):
    completed: list[int]
    failed: list[int]


class ThroughputAll(BaseModel):
    """Compact form for sparklines: one count per minute, oldest first, from `start`."""

    start: str
    minutes: int
    queues: dict[str, Series]


class ScheduleView(BaseModel):
    name: str
    queueName: str
    jobType: str
    cronExpression: str
    enabled: bool
    description: str
    timezone: str
    nextRun: str | None
    lastRun: str | None


class ProcessorCode(BaseModel):
    """Where a queue's processor lives, so a stack trace can tell its frames from the
    library's. Paths are as the traces show them (relative to the code root)."""

    queue: str
    module: str | None
    codePaths: list[str]


class RedisInfo(BaseModel):
    server: str  # "redis" or "valkey"
    version: str  # that server's own version
    mode: str
    usedMemory: int | None
    maxMemory: int | None  # 0: no limit
    evictionPolicy: str  # BullMQ needs "noeviction": anything else may drop jobs
    connectedClients: int | None
    uptimeSeconds: int | None


class SystemView(BaseModel):
    # Each is null when the server refuses the command (some managed services do).
    redis: RedisInfo | None
    workers: list[WorkerProcess] | None


class Done(BaseModel):
    success: Literal[True] = True
    message: str


class RunNow(BaseModel):
    success: Literal[True] = True
    jobId: str
    message: str


class RetriedCount(BaseModel):
    success: Literal[True] = True
    message: str
    data: dict[str, int]


class JobLogs(BaseModel):
    logs: list[str]
    count: int


class SearchResult(BaseModel):
    """Matches of a search, and how much of the state it read: `complete` is false when
    the scan bound (or the limit of matches) stopped it before the end."""

    jobs: list[JobView]
    scanned: int
    total: int
    complete: bool


class BulkAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "remove", "promote"]
    ids: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=1000
    )


class BulkOutcome(BaseModel):
    id: str
    ok: bool
    code: str | None = None
    error: str | None = None


class BulkResult(BaseModel):
    success: Literal[True] = True
    message: str
    action: str
    succeeded: int
    failed: int
    results: list[BulkOutcome]


class JobForm(BaseModel):
    """What the dashboard's add form is built from. `dataSchema` is the JSON Schema of the
    queue's job data model (null: the queue takes any JSON object); `body` says how the add
    route takes the data: `job` (`{name, data, options}`) or `fields` (the data's fields at
    the top level, with `options`, as the email route takes them)."""

    queue: str
    dataSchema: dict[str, object] | None
    defaultJobName: str
    example: dict[str, object] | None
    body: Literal["job", "fields"]
