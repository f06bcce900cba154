"""When each attempt of a job ran, from the queue's BullMQ event stream.

BullMQ keeps one stack trace per failed attempt but no time for it. Its Lua scripts write an
`active` event when an attempt starts and `waiting` (a retry), `delayed`, `failed` or
`completed` when it ends, into `<prefix>:<queue>:events` (capped, ~10,000 entries by default).
Reading that stream newest first, a bounded number of entries, gives the times of a recent
job's attempts; an older job's attempts have simply scrolled out (answered as none).
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from kk.queues.router import CheckedQueue, JobId, Service
from kk.queues.service import QueueService
from kk.schemas import Envelope
from kk.security.access import require_read
from kk.times import iso_from_ms

router = APIRouter(prefix="/api/queue-dashboard", tags=["queue-dashboard"])

PAGE = 1000
MAX_SCANNED = 10_000  # the default stream cap: never more than one stream's worth per call
ENDINGS = {"completed", "failed", "delayed", "waiting", "stalled"}


class Attempt(BaseModel):
    attempt: int
    startedAt: str | None
    endedAt: str | None  # None while it runs
    outcome: str | None  # "failed" (retried or final), "completed", "stalled"; None: running


class Attempts(BaseModel):
    jobId: str
    attempts: list[Attempt]
    # Entries read; when it reaches MAX_SCANNED older attempts may be missing.
    scanned: int


def _iso(entry_id: str) -> str | None:
    """The time of a stream entry: its id is `<milliseconds>-<sequence>`."""
    ms = entry_id.split("-", 1)[0]
    if not ms.isdigit():
        return None
    return iso_from_ms(int(ms))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _events(service: QueueService, queue: str, job_id: str, wanted: int) -> tuple[list, int]:
    """The job's events, newest first, until `wanted` attempt starts are found."""
    key = service.key(queue, "events")
    found: list[tuple[str, dict[str, str]]] = []
    starts, scanned, upper = 0, 0, "+"
    while scanned < MAX_SCANNED:
        count = min(PAGE, MAX_SCANNED - scanned)
        # XREVRANGE answers a list (empty past the end) whose entries all carry fields.
        page = cast(
            list[tuple[str, dict[str, str]]],
            await service.redis.xrevrange(key, max=upper, min="-", count=count),
        )
        for entry_id, raw in page:
            fields = {_text(k): _text(v) for k, v in raw.items()}
            if fields.get("jobId") == job_id:
                found.append((_text(entry_id), fields))
                starts += fields.get("event") == "active"
        scanned += len(page)
        if starts >= wanted or len(page) < count:
            break
        upper = f"({_text(page[-1][0])}"  # exclusive: the next page starts below it
    return found, scanned


def pair(events: list[tuple[str, dict[str, str]]], attempts_made: int) -> list[Attempt]:
    """Attempts from the job's events (newest first): each `active` opens one, the next
    ending event closes it. The last closed attempt is number `attempts_made`."""
    spans: list[list[Any]] = []
    for entry_id, fields in reversed(events):
        event = fields.get("event")
        if event == "active":
            spans.append([entry_id, None, None])
        elif event in ENDINGS and spans and spans[-1][1] is None:
            # A retry writes `waiting` with prev `active` (prev `failed` in other versions).
            if event == "waiting" and fields.get("prev") not in {"active", "failed"}:
                continue
            outcome = "failed" if event in {"failed", "delayed", "waiting"} else event
            spans[-1][1:] = [entry_id, outcome]
    closed = sum(1 for s in spans if s[1] is not None)
    first = attempts_made - closed + 1
    out, n = [], first
    for start, end, outcome in spans:
        out.append(
            Attempt(
                attempt=n,
                startedAt=_iso(start),
                endedAt=_iso(end) if end else None,
                outcome=outcome,
            )
        )
        n += 1
    return [a for a in out if a.attempt >= 1]


@router.get("/queues/{queueName}/jobs/{jobId}/attempts", dependencies=[Depends(require_read)])
async def job_attempts(
    queueName: CheckedQueue,
    jobId: JobId,
    service: Service,
    last: Annotated[int, Query(ge=1, le=100, description="how many recent attempts")] = 20,
) -> Envelope[Attempts]:
    job = await service.get_job(queueName, jobId)  # JOB_NOT_FOUND for an unknown id
    events, scanned = await _events(service, queueName, jobId, min(last, job.attempts + 1))
    attempts = pair(events, job.attempts)[-last:]
    return Envelope(data=Attempts(jobId=jobId, attempts=attempts, scanned=scanned))
