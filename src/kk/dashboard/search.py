"""Find jobs of one state by name or data, newest first, reading at most a bounded number.

Query terms (all must match, case-insensitive):
  `name:welcome`      the job name contains "welcome"
  `to:alice@`         data field `to` contains "alice@" (dotted paths reach nested data)
  `data.orderId=42`   data field `orderId` equals 42 (a `data.` prefix is optional)
  `alice`             the id, the name or the data's JSON text contains "alice"

Ids come from the state's list or sorted set a page at a time; each page's names and data
are read with one pipelined HMGET per job, so a scan costs two round trips per page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kk.errors import AppError, ErrorCode
from kk.queues.schemas import JobStatus, JobView
from kk.queues.service import _STATE_KEY, QueueService, job_view

PAGE = 500
MAX_TERMS = 10
_LISTS = {JobStatus.waiting, JobStatus.active}  # Redis lists, newest at the head
_MISSING = object()


@dataclass(frozen=True)
class Term:
    field: str | None  # "name", "id", a data path, or None for anywhere
    op: str  # "contains" or "equals"
    value: str


@dataclass
class Found:
    jobs: list[JobView]
    scanned: int
    total: int
    complete: bool


def parse(query: str) -> list[Term]:
    terms: list[Term] = []
    for word in query.split():
        eq, colon = word.find("="), word.find(":")
        cut = min(i for i in (eq, colon, len(word)) if i >= 0)
        if cut == len(word):
            terms.append(Term(None, "contains", word.lower()))
            continue
        field, value = word[:cut], word[cut + 1 :]
        if not field or not value:
            raise AppError(
                ErrorCode.VALIDATION_ERROR, f"Search term '{word}' needs a field and a value"
            )
        if field.startswith("data."):
            field = "data:" + field[5:]
        elif field not in ("name", "id"):
            field = "data:" + field
        if any(not part for part in field[5:].split(".")) and field.startswith("data:"):
            raise AppError(ErrorCode.VALIDATION_ERROR, f"Search term '{word}' has an empty path")
        terms.append(Term(field, "equals" if cut == eq else "contains", value.lower()))
    if not terms:
        raise AppError(ErrorCode.VALIDATION_ERROR, "The search query q is empty")
    if len(terms) > MAX_TERMS:
        raise AppError(ErrorCode.VALIDATION_ERROR, f"At most {MAX_TERMS} search terms")
    return terms


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _test(term: Term, text: str) -> bool:
    text = text.lower()
    return text == term.value if term.op == "equals" else term.value in text


def matches(terms: list[Term], job_id: str, name: str, raw_data: str) -> bool:
    data: Any = _MISSING
    for term in terms:
        if term.field is None:
            if not any(term.value in s.lower() for s in (job_id, name, raw_data)):
                return False
        elif term.field == "name":
            if not _test(term, name):
                return False
        elif term.field == "id":
            if not _test(term, job_id):
                return False
        else:
            if data is _MISSING:
                try:
                    data = json.loads(raw_data or "{}")
                except (ValueError, RecursionError):  # another producer's, nested too deep
                    return False
            value = _at(data, term.field[5:])
            if value is _MISSING or not _test(term, _text(value)):
                return False
    return True


async def _ids(
    service: QueueService, key: str, status: JobStatus, start: int, end: int
) -> list[str]:
    if status in _LISTS:
        return [str(i) for i in await service.redis.lrange(key, start, end)]
    return [str(i) for i in await service.redis.zrevrange(key, start, end)]


async def search(
    service: QueueService, name: str, status: JobStatus, query: str, limit: int
) -> Found:
    terms = parse(query)
    service.queue(name)
    key = service.key(name, _STATE_KEY[status])
    redis = service.redis
    total = int(await (redis.llen(key) if status in _LISTS else redis.zcard(key)))
    bound = min(total, service.settings.dashboard_search_max_scan)
    hits: list[str] = []
    scanned = 0
    while scanned < bound and len(hits) < limit:
        ids = await _ids(service, key, status, scanned, min(scanned + PAGE, bound) - 1)
        if not ids:
            break
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(service.key(name, job_id), "name", "data")
            rows = await pipe.execute()
        for job_id, (job_name, data) in zip(ids, rows, strict=True):
            scanned += 1
            if matches(terms, job_id, job_name or "", data or ""):
                hits.append(job_id)
                if len(hits) >= limit:
                    break
    return Found(
        jobs=await _views(service, name, status, hits),
        scanned=scanned,
        total=total,
        complete=scanned >= total,
    )


async def _views(
    service: QueueService, name: str, status: JobStatus, ids: list[str]
) -> list[JobView]:
    if not ids:
        return []
    async with service.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hgetall(service.key(name, job_id))
        rows = await pipe.execute()
    # A job removed between the scan and this read is left out.
    return [
        job_view(job_id, raw, status.value, service.settings.data_dir)
        for job_id, raw in zip(ids, rows, strict=True)
        if raw
    ]
