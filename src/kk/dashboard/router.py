"""/api/queue-dashboard: overview with alerts, queue health, throughput history, schedules.

Every read costs a fixed number of Redis round trips whatever the number of queues: one
pipeline for counts and alert inputs (`kk.queues.snapshot`), plus one CLIENT LIST for
health, run at the same time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from kk.config.schedules import SCHEDULE_NAME_RE
from kk.dashboard import bulk
from kk.dashboard.schemas import (
    AlertView,
    BulkAction,
    BulkResult,
    Done,
    HealthData,
    HealthMetrics,
    Overview,
    OverviewMetrics,
    ProcessorCode,
    QueueHealth,
    QueuesHealth,
    RunNow,
    ScheduleView,
    SearchResult,
    Series,
    Throughput,
    ThroughputAll,
    ThroughputPoint,
    ThroughputTotals,
    Totals,
)
from kk.dashboard.search import search
from kk.processors.registry import BUILTIN_PROCESSORS
from kk.queues import insights
from kk.queues.alerts import evaluate
from kk.queues.router import CheckedQueue, Service
from kk.queues.schemas import JobStatus
from kk.queues.snapshot import snapshot
from kk.schedules.manager import ScheduleManager
from kk.schemas import Envelope
from kk.security.access import require_admin, require_read
from kk.times import iso_from_ms, utc_now_iso

router = APIRouter(prefix="/api/queue-dashboard", tags=["queue-dashboard"])

NO_WORKER = "no_worker"  # the reason code of "jobs are waiting and no worker is connected"
Minutes = Annotated[int, Query(ge=1, le=1440, description="how many recent minutes")]
ScheduleName = Annotated[
    str, Path(max_length=64, json_schema_extra={"pattern": SCHEDULE_NAME_RE.pattern})
]


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return iso_from_ms(ms)


def _now_ms() -> int:
    return int(time.time() * 1000)


def get_schedules(request: Request) -> ScheduleManager:
    return request.app.state.runtime.schedules


Schedules = Annotated[ScheduleManager, Depends(get_schedules)]


@router.get("/overview", dependencies=[Depends(require_read)])
async def overview(service: Service) -> Envelope[Overview]:
    queues = await snapshot(service, service.names, _now_ms())
    stats = [s for s, _ in queues]
    alerts = [
        AlertView(**vars(a))
        for s, inputs in queues
        for a in evaluate(insights.to_signals(s, inputs), service.config(s.name).alerts)
    ]
    totals = Totals(
        totalWaiting=sum(s.waiting + s.prioritized for s in stats),
        totalActive=sum(s.active for s in stats),
        totalCompleted=sum(s.completed for s in stats),
        totalFailed=sum(s.failed for s in stats),
        totalQueues=len(stats),
        totalDelayed=sum(s.delayed for s in stats),
        totalPaused=sum(1 for s in stats if s.paused),
    )
    data = Overview(
        stats=stats, metrics=OverviewMetrics(total=totals), alerts=alerts, timestamp=utc_now_iso()
    )
    return Envelope(data=data)


@router.get("/health", dependencies=[Depends(require_read)])
async def queues_health(service: Service) -> Envelope[HealthData]:
    """A queue is unhealthy when a critical alert fires or nobody works on its waiting jobs
    (no BullMQ worker connected, in any process or language)."""
    names = service.names
    snap, workers = await asyncio.gather(
        snapshot(service, names, _now_ms()), insights.worker_counts(service, names)
    )
    queues: dict[str, QueueHealth] = {}
    for s, inputs in snap:
        alerts = evaluate(insights.to_signals(s, inputs), service.config(s.name).alerts)
        critical = [a for a in alerts if a.level == "critical"]
        reasons = [f"{a.message}: {a.value} >= {a.threshold}" for a in critical]
        codes = [a.rule for a in critical]
        count = None if workers is None else workers.get(s.name, 0)
        waiting = s.waiting + s.prioritized
        # A paused queue's jobs wait on purpose, worker or not.
        if count == 0 and waiting > 0 and not s.paused:
            reasons.append("Jobs are waiting and no worker is connected")
            codes.append(NO_WORKER)
        queues[s.name] = QueueHealth(
            healthy=not reasons,
            metrics=HealthMetrics(waiting=waiting, active=s.active, failed=s.failed),
            workers=count,
            reasons=reasons,
            reasonCodes=codes,
        )
    status = "up" if all(q.healthy for q in queues.values()) else "down"
    return Envelope(data=HealthData(queues=QueuesHealth(status=status, queues=queues)))


@router.get("/throughput", dependencies=[Depends(require_read)])
async def throughput_all(service: Service, minutes: Minutes = 60) -> Envelope[ThroughputAll]:
    """Every queue's per-minute counts at once (for sparklines), in one round trip."""
    now = _now_ms()
    series = await insights.throughput(service, service.names, minutes, now)
    start = next(iter(series.values())).start_minute if series else now // 60_000
    return Envelope(
        data=ThroughputAll(
            start=_iso(start * 60_000) or "",
            minutes=minutes,
            queues={n: Series(completed=s.completed, failed=s.failed) for n, s in series.items()},
        )
    )


@router.get("/queues/{queueName}/throughput", dependencies=[Depends(require_read)])
async def queue_throughput(
    queueName: CheckedQueue, service: Service, minutes: Minutes = 60
) -> Envelope[Throughput]:
    """Completed and failed jobs per minute, oldest first, ending with the current minute,
    from BullMQ's own metrics (two days kept, written by the workers' Lua scripts)."""
    series = (await insights.throughput(service, [queueName], minutes, _now_ms()))[queueName]
    points = [
        ThroughputPoint(time=_iso((series.start_minute + i) * 60_000) or "", completed=c, failed=f)
        for i, (c, f) in enumerate(zip(series.completed, series.failed, strict=True))
    ]
    totals = ThroughputTotals(completed=sum(series.completed), failed=sum(series.failed))
    return Envelope(data=Throughput(queue=queueName, minutes=minutes, points=points, totals=totals))


def _processor_module(service: Service, name: str) -> str | None:
    configured = service.config(name).processor
    if configured:
        return configured.partition(":")[0]
    builtin = BUILTIN_PROCESSORS.get(name)
    return builtin.process.__module__ if builtin else None


@router.get("/queues/{queueName}/processor", dependencies=[Depends(require_read)])
async def processor_code(queueName: CheckedQueue, service: Service) -> Envelope[ProcessorCode]:
    """The processor's module and the paths of its package: the frames of a trace that are
    the operator's code rather than the library's (bullmq, redis, kk's job machinery)."""
    module = _processor_module(service, queueName)
    paths: list[str] = []
    if module:
        parts = module.split(".")
        paths.append("/".join(parts) + ".py")
        if len(parts) > 1:
            paths.append("/".join(parts[:-1]) + "/")
    return Envelope(data=ProcessorCode(queue=queueName, module=module, codePaths=paths))


@router.get("/queues/{queueName}/search", dependencies=[Depends(require_read)])
async def search_jobs(
    queueName: CheckedQueue,
    service: Service,
    q: Annotated[str, Query(min_length=1, max_length=500, description="search terms")],
    state: JobStatus = JobStatus.waiting,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Envelope[SearchResult]:
    """Jobs of one state whose name or data match `q` (`name:welcome`, `to:alice@`,
    `data.orderId=42`), newest first, reading at most `dashboard_search_max_scan` jobs."""
    found = await search(service, queueName, state, q, limit)
    return Envelope(data=SearchResult(**vars(found)))


@router.post("/queues/{queueName}/jobs/bulk-action", dependencies=[Depends(require_admin)])
async def bulk_action(queueName: CheckedQueue, body: BulkAction, service: Service) -> BulkResult:
    """Retry, remove or promote up to 1000 jobs, each on its own; the answer gives every
    id's outcome."""
    results = await bulk.run(service, queueName, body.action, body.ids)
    done = sum(1 for r in results if r.ok)
    return BulkResult(
        message=f"{body.action}: {done} of {len(results)} jobs of '{queueName}'",
        action=body.action,
        succeeded=done,
        failed=len(results) - done,
        results=results,
    )


@router.get("/scheduled-jobs", dependencies=[Depends(require_read)])
async def scheduled_jobs(schedules: Schedules) -> Envelope[list[ScheduleView]]:
    views = []
    for item in await schedules.list():
        item.update(nextRun=_iso(item["nextRun"]), lastRun=_iso(item["lastRun"]))
        views.append(ScheduleView(**item))
    return Envelope(data=views)


@router.post("/scheduled-jobs/{name}/enable", dependencies=[Depends(require_admin)])
async def enable_schedule(name: ScheduleName, schedules: Schedules) -> Done:
    await schedules.enable(name)
    return Done(message=f"Schedule '{name}' enabled")


@router.post("/scheduled-jobs/{name}/disable", dependencies=[Depends(require_admin)])
async def disable_schedule(name: ScheduleName, schedules: Schedules) -> Done:
    await schedules.disable(name)
    return Done(message=f"Schedule '{name}' disabled")


@router.post("/scheduled-jobs/{name}/run", dependencies=[Depends(require_admin)])
async def run_schedule(name: ScheduleName, schedules: Schedules) -> RunNow:
    job_id = await schedules.run_now(name)
    return RunNow(jobId=job_id, message=f"Schedule '{name}' ran now as job {job_id}")
