"""HTTP routes of /api/queues: parse, call the service, wrap in the contract's envelope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from kk.errors import AppError, ErrorCode
from kk.names import QUEUE_NAME_RE
from kk.queues.events import EventStreamResponse, EventStreams, JobOutcome, parse_stream_id
from kk.queues.schemas import (
    AddJob,
    AddJobResult,
    AddJobsBulk,
    AddJobsBulkResult,
    CleanableStatus,
    CleanResult,
    DuplicateJob,
    JobStatus,
    JobView,
    Ok,
    QueueStats,
)
from kk.queues.service import Added, QueueService
from kk.queues.workers_view import WorkerListResponse, read_workers
from kk.schemas import Envelope
from kk.security.access import client_ip, require_admin, require_read, still_signed_in
from kk.text import counted

router = APIRouter(prefix="/api/queues", tags=["queues"])

# The pattern is documented but checked by the service, which answers INVALID_QUEUE_NAME
# (the contract's code) rather than a generic validation error.
QueueName = Annotated[
    str, Path(max_length=200, json_schema_extra={"pattern": QUEUE_NAME_RE.pattern})
]
JobIdPath = Annotated[str, Path(min_length=1, max_length=200)]


async def get_queue_service(request: Request) -> QueueService:
    return request.app.state.queues


Service = Annotated[QueueService, Depends(get_queue_service)]


async def checked_queue(queueName: QueueName, service: Service) -> str:
    """Resolve the queue first, so a bad name wins over a bad body or query."""
    service.queue(queueName)
    return queueName


CheckedQueue = Annotated[str, Depends(checked_queue)]


async def checked_job(queueName: CheckedQueue, jobId: JobIdPath, service: Service) -> str:
    """Every route that acts on one job: the id must name a job hash, never one of the
    queue's own keys ("meta", "events", "1:logs", ...)."""
    await service.require_job(queueName, jobId)
    return jobId


JobId = Annotated[str, Depends(checked_job)]


@router.get("/stats", dependencies=[Depends(require_read)])
async def all_stats(service: Service) -> Envelope[list[QueueStats]]:
    return Envelope(data=await service.stats_many(service.names))


@router.get("/workers", dependencies=[Depends(require_read)])
async def list_workers(service: Service) -> WorkerListResponse:
    """Worker processes connected to Redis, one row each (null when the server refuses
    CLIENT LIST). One segment, so it can never be read as a queue's route."""
    data = await read_workers(service.redis, service.prefix, service.names)
    return WorkerListResponse(data=data)


@router.get("/{queueName}/stats", dependencies=[Depends(require_read)])
async def queue_stats(queueName: CheckedQueue, service: Service) -> Envelope[QueueStats]:
    return Envelope(data=await service.stats(queueName))


@router.get("/{queueName}/jobs", dependencies=[Depends(require_read)])
async def list_jobs(
    queueName: CheckedQueue,
    service: Service,
    status: JobStatus = JobStatus.waiting,
    start: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    end: Annotated[int, Query(ge=0, le=10_000_000)] = 50,
) -> Envelope[list[JobView]]:
    if end < start:
        raise AppError(ErrorCode.VALIDATION_ERROR, "end must be greater than or equal to start")
    if end - start + 1 > service.settings.max_page_size:
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"A page holds at most {service.settings.max_page_size} jobs (end - start + 1)",
        )
    return Envelope(data=await service.list_jobs(queueName, status, start, end))


@router.get("/{queueName}/jobs/{jobId}", dependencies=[Depends(require_read)])
async def get_job(queueName: CheckedQueue, jobId: JobIdPath, service: Service) -> Envelope[JobView]:
    # The service checks the id itself, in the same round trip as the read.
    return Envelope(data=await service.get_job(queueName, jobId))


@router.get("/{queueName}/jobs/{jobId}/result", dependencies=[Depends(require_read)])
async def get_job_result(
    request: Request,
    queueName: CheckedQueue,
    jobId: JobId,
    service: Service,
    wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for the end")] = 30,
) -> Envelope[JobOutcome]:
    """The job's outcome once it completes or fails, waiting up to `wait` seconds for it;
    when the wait ends first, its current state with `finished: false` (not an error)."""
    events: EventStreams = request.app.state.event_streams
    release = events.acquire(client_ip(request))
    try:
        result = await events.wait_result(service, queueName, jobId, wait, request.receive)
    finally:
        release()
    return Envelope(data=result)


@router.get(
    "/{queueName}/events",
    dependencies=[Depends(require_read)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "BullMQ events"}},
)
async def stream_queue_events(
    request: Request,
    queueName: CheckedQueue,
    service: Service,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    lastEventId: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """The queue's BullMQ events as Server-Sent Events (`id`: stream entry id, `event`: the
    event name, `data`: its fields as JSON). Resumes after `Last-Event-ID` (header, or
    `lastEventId` for EventSource-less clients); without one, starts at new events."""
    events: EventStreams = request.app.state.event_streams
    after = parse_stream_id(last_event_id or lastEventId)
    key = service.key(queueName, "events")
    if after is None:  # "new events": fixed now, so nothing after the answer is missed
        after = await events.last_id(service.redis, key)
    live = await still_signed_in(request)  # a dashboard session's stream ends at logout
    release = events.acquire(client_ip(request))
    return EventStreamResponse(events.stream(key, after, live), release)


def add_result(added: Added, message: str) -> AddJobResult:
    if not added.duplicate:
        return AddJobResult(jobId=added.id, message=message)
    return AddJobResult(
        jobId=added.id,
        message=f"Job '{added.id}' already exists ({added.state}); it was kept and the new "
        "data ignored",
        duplicate=True,
        state=added.state,
    )


async def add_one(service: QueueService, queue_name: str, body: AddJob) -> AddJobResult:
    """The add route's work, shared with its fast lane (`kk.queues.hot_add`)."""
    data = service.validate_payload(queue_name, body.data)
    job_name = body.name or service.default_job_name(queue_name)
    added = await service.add(queue_name, job_name, data, body.options)
    return add_result(added, f"Job added to queue '{queue_name}'")


@router.post(
    "/{queueName}/jobs",
    status_code=201,
    dependencies=[Depends(require_admin)],
    responses={200: {"description": "`options.jobId` named an existing job (`duplicate`)"}},
)
async def add_job(
    queueName: CheckedQueue, body: AddJob, service: Service, response: Response
) -> AddJobResult:
    # Well-formed adds are answered by the fast lane in front of the app (same code path).
    result = await add_one(service, queueName, body)
    response.status_code = result.status_code
    return result


@router.post(
    "/{queueName}/jobs/bulk",
    status_code=201,
    dependencies=[Depends(require_admin)],
    responses={200: {"description": "every `options.jobId` named an existing job"}},
)
async def add_jobs_bulk(
    queueName: CheckedQueue, body: AddJobsBulk, service: Service, response: Response
) -> AddJobsBulkResult:
    default_name = service.default_job_name(queueName)
    jobs = [
        (
            job.name or default_name,
            service.validate_payload(queueName, job.data, f"jobs[{i}].data"),
            job.options,
        )
        for i, job in enumerate(body.jobs)
    ]
    added = await service.add_bulk(queueName, jobs)
    duplicates = [
        DuplicateJob(jobId=a.id, state=a.state or "unknown") for a in added if a.duplicate
    ]
    if len(duplicates) == len(added):
        response.status_code = 200
    new = len(added) - len(duplicates)
    message = f"{new} jobs added" + (f", {len(duplicates)} already existed" if duplicates else "")
    return AddJobsBulkResult(jobIds=[a.id for a in added], message=message, duplicates=duplicates)


@router.post("/{queueName}/jobs/{jobId}/retry", dependencies=[Depends(require_admin)])
async def retry_job(queueName: CheckedQueue, jobId: JobId, service: Service) -> Ok:
    await service.retry(queueName, jobId)
    return Ok(message=f"Job {jobId} was moved back to the queue")


@router.post("/{queueName}/pause", dependencies=[Depends(require_admin)])
async def pause_queue(queueName: CheckedQueue, service: Service) -> Ok:
    await service.pause(queueName)
    return Ok(message=f"Queue '{queueName}' paused")


@router.post("/{queueName}/resume", dependencies=[Depends(require_admin)])
async def resume_queue(queueName: CheckedQueue, service: Service) -> Ok:
    await service.resume(queueName)
    return Ok(message=f"Queue '{queueName}' resumed")


@router.post("/{queueName}/clean", dependencies=[Depends(require_admin)])
async def clean_queue(
    queueName: CheckedQueue,
    service: Service,
    status: CleanableStatus | None = None,
    grace: Annotated[int, Query(ge=0, le=10 * 365 * 86_400_000, description="ms")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> CleanResult:
    statuses = [status.value] if status else ["completed", "failed"]
    removed = await service.clean(queueName, statuses, grace, limit)
    total = sum(removed.values())
    return CleanResult(
        message=f"Removed {counted(total, 'job')} from queue '{queueName}'", data=removed
    )
