"""Job actions the dashboard needs beyond `QueueService`: remove, promote, retry all failed,
read logs. Functions of the service, through BullMQ's own Lua scripts."""

from __future__ import annotations

import time

from bullmq import Job

from kk.errors import AppError, ErrorCode
from kk.queues.service import QueueService

MAX_LOG_LINES = 1000


def _not_found(name: str, job_id: str) -> AppError:
    return AppError(ErrorCode.JOB_NOT_FOUND, f"Job '{job_id}' not found in queue '{name}'")


async def _state(service: QueueService, name: str, job_id: str) -> str:
    state = await service.queue(name).getJobState(job_id)
    if state == "unknown":
        raise _not_found(name, job_id)
    return "waiting" if state == "wait" else state


async def remove_job(service: QueueService, name: str, job_id: str) -> None:
    """Remove a job and its logs. An active job is refused: its worker holds the lock and
    would go on writing to a job that no longer exists."""
    state = await _state(service, name, job_id)
    if state == "active":
        raise AppError(ErrorCode.JOB_CONFLICT, f"Job '{job_id}' is active and cannot be removed")
    result = await service.queue(name).remove(job_id)
    if result == -8:
        raise AppError(
            ErrorCode.JOB_CONFLICT,
            f"Job '{job_id}' is the next run of a schedule; disable the schedule instead",
        )
    if result != 1:  # took a lock between the state check and the script
        raise AppError(ErrorCode.JOB_CONFLICT, f"Job '{job_id}' is locked by a worker")


async def promote_job(service: QueueService, name: str, job_id: str) -> None:
    """Move a delayed job to waiting now; a schedule's next tick is refused (run now)."""
    state = await _state(service, name, job_id)
    if state != "delayed":
        raise AppError(
            ErrorCode.JOB_CONFLICT, f"Job '{job_id}' is {state}; only delayed jobs can be promoted"
        )
    queue = service.queue(name)
    # Only the scheduler field is read: the job's data may be anything another producer
    # wrote (nested past what any parser takes), and promoting does not need it.
    repeat_key = await service.redis.hget(queue.toKey(job_id), "rjk")
    legacy = job_id.split(":")[1] if job_id.startswith("repeat:") else ""  # older repeat ids
    schedule = str(repeat_key or "") or legacy
    if schedule:
        # The scheduler's next tick: promoting it would run that tick early, record a last
        # run in the future and leave the schedule one tick short.
        raise AppError(
            ErrorCode.JOB_CONFLICT,
            f"Job '{job_id}' is the next run of schedule '{schedule}' and cannot be promoted; "
            f"use run now instead (POST /api/queue-dashboard/scheduled-jobs/{schedule}/run), "
            "which adds a job now and leaves the next run as it is",
        )
    job = Job(queue, "", {}, {}, job_id)  # the id is all `promote` uses
    try:
        await job.promote()
    except Exception as exc:  # the script refuses when the job moved meanwhile
        raise AppError(
            ErrorCode.JOB_CONFLICT, f"Job '{job_id}' could not be promoted: {exc}"
        ) from exc


async def retry_failed(service: QueueService, name: str) -> int:
    """Move every job that failed until now back to waiting (BullMQ's retryJobs, in batches
    of 1000 per script call). Jobs failing again meanwhile are newer and left alone, so
    this ends. Returns how many were failed when it started."""
    queue = service.queue(name)
    count = await service.redis.zcard(service.key(name, "failed"))
    if count:
        await queue.retryJobs({"state": "failed", "timestamp": int(time.time() * 1000)})
    return int(count)


async def job_logs(
    service: QueueService, name: str, job_id: str, start: int, end: int
) -> tuple[list[str], int]:
    """Log lines a processor wrote with `job.log()`, and how many there are in all."""
    queue = service.queue(name)
    if not await service.redis.exists(service.key(name, job_id)):
        raise _not_found(name, job_id)
    result = await queue.getJobLogs(job_id, start, end, True)
    return [str(line) for line in result["logs"]], int(result["count"])
