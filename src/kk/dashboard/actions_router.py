"""Job actions under /api/queues that the dashboard needs: retry all failed, promote a
delayed job, remove a job, read a job's logs. Mutations need an admin key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kk.dashboard.schemas import Done, JobLogs, RetriedCount
from kk.errors import AppError, ErrorCode
from kk.queues import actions
from kk.queues.router import CheckedQueue, JobId, Service
from kk.schemas import Envelope
from kk.security.access import require_admin, require_read
from kk.text import counted

router = APIRouter(prefix="/api/queues", tags=["queues"])


@router.post("/{queueName}/retry-failed", dependencies=[Depends(require_admin)])
async def retry_failed(queueName: CheckedQueue, service: Service) -> RetriedCount:
    count = await actions.retry_failed(service, queueName)
    return RetriedCount(
        message=f"{counted(count, 'failed job')} of '{queueName}' moved back to waiting",
        data={"retried": count},
    )


@router.post("/{queueName}/jobs/{jobId}/promote", dependencies=[Depends(require_admin)])
async def promote_job(queueName: CheckedQueue, jobId: JobId, service: Service) -> Done:
    await actions.promote_job(service, queueName, jobId)
    return Done(message=f"Job {jobId} promoted to waiting")


@router.delete("/{queueName}/jobs/{jobId}", dependencies=[Depends(require_admin)])
async def remove_job(queueName: CheckedQueue, jobId: JobId, service: Service) -> Done:
    await actions.remove_job(service, queueName, jobId)
    return Done(message=f"Job {jobId} removed")


@router.get("/{queueName}/jobs/{jobId}/logs", dependencies=[Depends(require_read)])
async def job_logs(
    queueName: CheckedQueue,
    jobId: JobId,
    service: Service,
    start: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    end: Annotated[int, Query(ge=0, le=10_000_000)] = 99,
) -> Envelope[JobLogs]:
    if end < start:
        raise AppError(ErrorCode.VALIDATION_ERROR, "end must be greater than or equal to start")
    if end - start + 1 > actions.MAX_LOG_LINES:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, f"At most {actions.MAX_LOG_LINES} log lines per page"
        )
    logs, count = await actions.job_logs(service, queueName, jobId, start, end)
    return Envelope(data=JobLogs(logs=logs, count=count))
