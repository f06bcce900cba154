"""HTTP routes of /api/queues: parse, call the service, wrap in the contract's envelope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from kk.errors import AppError, ErrorCode
from kk.queues.names import QUEUE_NAME_RE
from kk.queues.schemas import (
    AddEmailJob,
    AddJob,
    AddJobResult,
    AddJobsBulk,
    AddJobsBulkResult,
    CleanableStatus,
    CleanResult,
    JobStatus,
    JobView,
    Ok,
    QueueStats,
)
from kk.queues.service import QueueService
from kk.schemas import Envelope
from kk.security import require_admin, require_read

router = APIRouter(prefix="/api/queues", tags=["queues"])

# The pattern is documented but checked by the service, which answers INVALID_QUEUE_NAME
# (the contract's code) rather than a generic validation error.
QueueName = Annotated[
    str, Path(max_length=200, json_schema_extra={"pattern": QUEUE_NAME_RE.pattern})
]
JobId = Annotated[str, Path(min_length=1, max_length=200)]


async def get_queue_service(request: Request) -> QueueService:
    return request.app.state.queues


Service = Annotated[QueueService, Depends(get_queue_service)]


async def checked_queue(queueName: QueueName, service: Service) -> str:
    """Resolve the queue first, so a bad name wins over a bad body or query."""
    service.queue(queueName)
    return queueName


CheckedQueue = Annotated[str, Depends(checked_queue)]


@router.get("/stats", dependencies=[Depends(require_read)])
async def all_stats(service: Service) -> Envelope[list[QueueStats]]:
    return Envelope(data=await service.stats_many(service.names))


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
async def get_job(queueName: CheckedQueue, jobId: JobId, service: Service) -> Envelope[JobView]:
    return Envelope(data=await service.get_job(queueName, jobId))


@router.post("/email/jobs", status_code=201, dependencies=[Depends(require_admin)])
async def add_email_job(body: AddEmailJob, service: Service) -> AddJobResult:
    data = service.validate_payload("email", body.model_dump(mode="json", exclude={"options"}))
    job_id = await service.add("email", body.type, data, body.options)
    return AddJobResult(jobId=job_id, message="Email job added to the queue")


async def add_one(service: QueueService, queue_name: str, body: AddJob) -> AddJobResult:
    """The add route's work, shared with its fast lane (`kk.queues.hot_add`)."""
    data = service.validate_payload(queue_name, body.data)
    job_name = body.name or service.default_job_name(queue_name)
    job_id = await service.add(queue_name, job_name, data, body.options)
    return AddJobResult(jobId=job_id, message=f"Job added to queue '{queue_name}'")


@router.post("/{queueName}/jobs", status_code=201, dependencies=[Depends(require_admin)])
async def add_job(queueName: CheckedQueue, body: AddJob, service: Service) -> AddJobResult:
    # Well-formed adds are answered by the fast lane in front of the app (same code path).
    return await add_one(service, queueName, body)


@router.post("/{queueName}/jobs/bulk", status_code=201, dependencies=[Depends(require_admin)])
async def add_jobs_bulk(
    queueName: CheckedQueue, body: AddJobsBulk, service: Service
) -> AddJobsBulkResult:
    default_name = service.default_job_name(queueName)
    jobs = [
        (job.name or default_name, service.validate_payload(queueName, job.data), job.options)
        for job in body.jobs
    ]
    job_ids = await service.add_bulk(queueName, jobs)
    return AddJobsBulkResult(jobIds=job_ids, message=f"{len(job_ids)} jobs added")


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
    return CleanResult(message=f"Removed {total} jobs from queue '{queueName}'", data=removed)
