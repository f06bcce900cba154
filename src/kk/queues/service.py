"""Queue operations on BullMQ's data model, through the `bullmq` package.

Reads that the contract makes hot (stats of every queue, one page of jobs) go straight to
Redis in a single round trip: a pipeline of LLEN/ZCARD/HEXISTS for the counts, BullMQ's
own `getJobs` Lua script for a page. Writes (add, retry, pause, clean) use the `bullmq`
package, so the keys and Lua scripts are exactly those Node's BullMQ uses.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bullmq import Job, Queue
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from kk.compat.add_batcher import AddBatcher
from kk.compat.bullmq_private import get_jobs_raw, get_jobs_sha
from kk.config import QueueConfig, Settings
from kk.errors import AppError, ErrorCode, field_errors, summary
from kk.files import strip_server_paths
from kk.infra.redis_client import BoundedRedis
from kk.json_text import client_json, too_deep
from kk.names import is_reserved_job_id, validate_queue_name
from kk.queues.schemas import CleanableStatus, JobOptions, JobStatus, JobView, QueueStats
from kk.queues.snapshot import snapshot
from kk.times import iso_from_ms

log = logging.getLogger("kk.queues")

# BullMQ's Redis key of each state (the API says "waiting", BullMQ's list is "wait").
_STATE_KEY = {
    JobStatus.waiting: "wait",
    JobStatus.active: "active",
    JobStatus.completed: "completed",
    JobStatus.failed: "failed",
    JobStatus.delayed: "delayed",
    JobStatus.prioritized: "prioritized",
    JobStatus.waiting_children: "waiting-children",
}
# Oldest first where order means "runs next"; newest first for finished jobs.
_ASCENDING = {
    JobStatus.waiting,
    JobStatus.active,
    JobStatus.delayed,
    JobStatus.prioritized,
    JobStatus.waiting_children,
}
_CLEAN_BATCH = 1000
# A job's hash, or nothing when the key is not one: ids such as "events" or "1:logs" name
# a queue's stream or a job's log list, which HGETALL would refuse (WRONGTYPE) or, for
# "meta", show as a job. Every job hash has a `timestamp` (BullMQ's add scripts set it).
_JOB_HASH = """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return {} end
if redis.call('HEXISTS', KEYS[1], 'timestamp') == 0 then return {} end
if ARGV[1] == '1' then return redis.call('HGETALL', KEYS[1]) end
return {1}
"""
_GET_JOBS_MAX_BACKFILL = 64


def _iso_ms(value: Any) -> str | None:
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return None
    if ms <= 0:
        return None
    return iso_from_ms(ms)


def _json_field(raw: Mapping[str, str], field: str, default: Any) -> Any:
    value = raw.get(field)
    if value is None:
        return default
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        return value  # written by another producer in a form we can't parse: show it raw
    if too_deep(parsed):
        return value  # another producer's value no answer could serialize: show it raw
    # Another producer may have escaped a lone surrogate ("\ud800"): valid JSON, not
    # valid Unicode, so no answer holding it could be encoded. Show "?" in its place.
    escaped_surrogate = "\\ud" in value or "\\uD" in value
    return _without_lone_surrogates(parsed) if escaped_surrogate else parsed


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode()
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Added:
    """One add's outcome: a new job, or a duplicate of an existing one with its state."""

    id: str
    duplicate: bool = False
    state: str | None = None


def job_view(
    job_id: str, raw: Mapping[str, str], status: str, data_dir: Path | None = None
) -> JobView:
    """A job as the API shows it, from the raw BullMQ job hash."""
    opts = _json_field(raw, "opts", {})
    stacktrace = _json_field(raw, "stacktrace", None)
    if isinstance(stacktrace, list):  # no absolute server paths for readers
        stacktrace = strip_server_paths(stacktrace, data_dir)
    return JobView(
        id=job_id,
        name=raw.get("name", ""),
        data=_json_field(raw, "data", {}),
        progress=_json_field(raw, "progress", 0),
        status=status,
        createdAt=_iso_ms(raw.get("timestamp")),
        attempts=int(raw.get("atm") or raw.get("attemptsMade") or 0),
        delay=int(raw.get("delay") or 0),
        failedReason=raw.get("failedReason") or None,
        stacktrace=stacktrace if isinstance(stacktrace, list) else None,
        returnValue=_json_field(raw, "returnvalue", None),
        processedOn=_iso_ms(raw.get("processedOn")),
        finishedOn=_iso_ms(raw.get("finishedOn")),
        priority=int(raw.get("priority") or 0),
        opts=opts if isinstance(opts, dict) else {},
    )


class QueueContract(Protocol):
    """What the service needs to know of a queue's jobs: the model that checks their data
    (None: any JSON object) and the job name used when a client adds without one. A
    processor's spec (`kk.processors.base.ProcessorSpec`) is one."""

    @property
    def payload(self) -> type[BaseModel] | None: ...

    @property
    def default_job_name(self) -> str: ...


class QueueService:
    def __init__(
        self, redis: Redis, settings: Settings, contracts: Mapping[str, QueueContract | None]
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.prefix = settings.queue_prefix
        self._contracts = contracts
        # Queue objects share the service's pooled client (never closed through them).
        self._queues: dict[str, Queue] = {
            name: Queue(name, {"connection": redis, "prefix": self.prefix})
            for name in settings.queues
        }
        # Redis Cluster refuses pipelined EVALSHA across slots: adds go one by one there, and
        # in stock mode (`Queue.add`, public API only).
        batching = settings.tuned_worker and not isinstance(redis, RedisCluster)
        self._batcher = AddBatcher(redis) if batching else None
        self._job_hash = redis.register_script(_JOB_HASH)
        if isinstance(redis, BoundedRedis) and self._queues:
            # Listings only read: sent again if a connection drops under them (see there).
            any_queue = next(iter(self._queues.values()))
            redis.register_read_only_script(get_jobs_sha(any_queue))

    @property
    def names(self) -> list[str]:
        return list(self._queues)

    def config(self, name: str) -> QueueConfig:
        return self.settings.queues[self._check(name)]

    def _check(self, name: str) -> str:
        validate_queue_name(name)
        if name not in self._queues:
            raise AppError(ErrorCode.QUEUE_NOT_FOUND, f"Queue '{name}' is not registered")
        return name

    def queue(self, name: str) -> Queue:
        return self._queues[self._check(name)]

    def key(self, name: str, suffix: str) -> str:
        return f"{self.prefix}:{name}:{suffix}"

    # -- reads ---------------------------------------------------------------------------

    async def stats_many(self, names: Iterable[str]) -> list[QueueStats]:
        """Counts of many queues in one round trip (the dashboard's snapshot script, which
        reads every list and set server-side; a pipeline would cost a reply and a Python
        parse per command)."""
        rows = await snapshot(self, list(names), int(time.time() * 1000))
        return [stats for stats, _ in rows]

    async def stats(self, name: str) -> QueueStats:
        return (await self.stats_many([name]))[0]

    async def list_jobs(self, name: str, status: JobStatus, start: int, end: int) -> list[JobView]:
        """One page of one state, in one round trip (BullMQ's getJobs script)."""
        queue = self.queue(name)
        state = _STATE_KEY[status]
        keys = [self.key(name, "")]
        args = [start, end, "1" if status in _ASCENDING else "0", _GET_JOBS_MAX_BACKFILL, state]
        groups = await get_jobs_raw(queue, keys, args)
        views = []
        for group in groups:
            for job_id, fields in group:
                raw = dict(zip(fields[::2], fields[1::2], strict=False))
                views.append(job_view(job_id, raw, status.value, self.settings.data_dir))
        return views

    async def _job_fields(self, name: str, job_id: str, *, fields: bool) -> list[Any]:
        self.queue(name)
        if is_reserved_job_id(job_id):
            raise AppError(ErrorCode.JOB_NOT_FOUND, f"Job '{job_id}' not found in queue '{name}'")
        reply = await self._job_hash(keys=[self.key(name, job_id)], args=["1" if fields else "0"])
        if not reply:
            raise AppError(ErrorCode.JOB_NOT_FOUND, f"Job '{job_id}' not found in queue '{name}'")
        return list(reply)

    async def require_job(self, name: str, job_id: str) -> None:
        """JOB_NOT_FOUND unless `job_id` names a job of the queue (not one of its keys)."""
        await self._job_fields(name, job_id, fields=False)

    async def get_job(self, name: str, job_id: str) -> JobView:
        queue = self.queue(name)
        reply = await self._job_fields(name, job_id, fields=True)
        raw = dict(zip(reply[::2], reply[1::2], strict=False))
        state = await queue.getJobState(job_id)
        return job_view(
            job_id, raw, "waiting" if state == "wait" else state, self.settings.data_dir
        )

    # -- writes --------------------------------------------------------------------------

    def validate_payload(
        self, name: str, data: dict[str, Any], field: str = "data"
    ) -> dict[str, Any]:
        """`field` names the data in errors: `data`, or `jobs[2].data` in a bulk add."""
        reason = too_deep(data)
        if reason:  # before pydantic, whose serializer fails on very deep values
            message = f"Invalid job data: {field or 'data'}: {reason}"
            raise AppError(ErrorCode.VALIDATION_ERROR, message)
        payload = self.data_model(name)
        if payload is None:
            return data
        try:
            model: BaseModel = payload.model_validate(data)
        except ValidationError as exc:
            details = field_errors(exc.errors(), field)
            raise AppError(
                ErrorCode.VALIDATION_ERROR, summary(details, "Invalid job data"), details
            ) from None
        # Checks a model can only make with the settings (e.g. a webhook URL that is a
        # private address the SSRF guard would refuse): `[(loc, message), ...]`.
        check = getattr(model, "refusals", None)
        refusals = check(self.settings) if callable(check) else []
        if refusals:
            errors = [{"loc": loc, "msg": msg, "type": "refused"} for loc, msg in refusals]
            details = field_errors(errors, field)
            raise AppError(
                ErrorCode.VALIDATION_ERROR, summary(details, "Invalid job data"), details
            )
        return model.model_dump(mode="json", exclude_unset=True)

    def data_model(self, name: str) -> type[BaseModel] | None:
        """The model a queue's job data must satisfy, if it has one."""
        contract = self._contracts.get(name)
        return contract.payload if contract else None

    def default_job_name(self, name: str) -> str:
        contract = self._contracts.get(name)
        return contract.default_job_name if contract else "job"

    def _job_opts(self, name: str, options: JobOptions | None) -> dict[str, Any]:
        opts = self.config(name).job_defaults()
        if options is None:
            return opts
        if options.delay is not None:
            if options.delay > self.settings.max_delay_ms:
                raise AppError(
                    ErrorCode.VALIDATION_ERROR,
                    f"options.delay exceeds the maximum of {self.settings.max_delay_ms} ms",
                )
            opts["delay"] = options.delay
        if options.attempts is not None:
            opts["attempts"] = options.attempts
        if options.backoff is not None:
            opts["backoff"] = options.backoff.model_dump()
        if options.priority:
            opts["priority"] = options.priority
        if options.jobId is not None:
            if options.jobId.isdigit():
                # BullMQ reserves integer ids for its own counter.
                raise AppError(ErrorCode.VALIDATION_ERROR, "options.jobId cannot be an integer")
            opts["jobId"] = options.jobId
        return opts

    def _check_size(self, data: dict[str, Any]) -> None:
        size = len(client_json(data, "job data").encode())
        if size > self.settings.max_job_data_bytes:
            raise AppError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"Job data is {size} bytes; the limit is {self.settings.max_job_data_bytes}",
            )

    async def add(
        self, name: str, job_name: str, data: dict[str, Any], options: JobOptions | None
    ) -> Added:
        queue = self.queue(name)
        self._check_size(data)
        opts = self._job_opts(name, options)
        if self._batcher is None:
            job = await queue.add(job_name, data, opts)
            job_id = str(job.id)
        else:
            # What `Queue.add` does, with the script call batched with concurrent adds.
            job = Job(queue, job_name, data, {**queue.jobsOpts, **opts})
            job_id = await self._batcher.add(queue.scripts, job)
        return (await self._outcomes(name, [(job_id, job.timestamp, "jobId" in opts)]))[0]

    async def _outcomes(self, name: str, added: list[tuple[str, int, bool]]) -> list[Added]:
        """Which adds (job id, timestamp, custom id?) found their id taken: BullMQ's add
        scripts then keep the existing job, ignore the new data and return the same id. The
        stored timestamp is the new job's only if this add wrote the hash."""
        custom = [i for i, (_, _, has_custom_id) in enumerate(added) if has_custom_id]
        if not custom:
            return [Added(job_id) for job_id, _, _ in added]
        pipe = self.redis.pipeline(transaction=False)
        for i in custom:
            pipe.hget(self.key(name, added[i][0]), "timestamp")
        stored = dict(zip(custom, await pipe.execute(), strict=True))
        outcomes: list[Added] = []
        seen: set[str] = set()
        queue = self.queue(name)
        for i, (job_id, timestamp, _) in enumerate(added):
            kept = stored.get(i)
            # None: the job is gone already (finished and trimmed), so it was ours.
            duplicate = i in stored and (job_id in seen or kept not in (None, str(timestamp)))
            seen.add(job_id)
            if not duplicate:
                outcomes.append(Added(job_id))
                continue
            state = await queue.getJobState(job_id)
            outcomes.append(Added(job_id, True, "waiting" if state == "wait" else state))
        return outcomes

    async def add_bulk(
        self, name: str, jobs: list[tuple[str, dict[str, Any], JobOptions | None]]
    ) -> list[Added]:
        """All jobs in one transaction (one round trip): all are added or none."""
        queue = self.queue(name)
        entries = []
        for job_name, data, options in jobs:
            self._check_size(data)
            entries.append({"name": job_name, "data": data, "opts": self._job_opts(name, options)})
        if isinstance(self.redis, RedisCluster):
            # Redis Cluster refuses pipelined EVALSHA: add one by one (not atomic there).
            added = [await queue.add(e["name"], e["data"], e["opts"]) for e in entries]
        else:
            added = await queue.addBulk(entries)
        return await self._outcomes(
            name,
            [
                (str(j.id), j.timestamp, "jobId" in e["opts"])
                for j, e in zip(added, entries, strict=True)
            ],
        )

    async def retry(self, name: str, job_id: str) -> None:
        queue = self.queue(name)
        state = await queue.getJobState(job_id)
        if state == "unknown":
            raise AppError(ErrorCode.JOB_NOT_FOUND, f"Job '{job_id}' not found in queue '{name}'")
        if state != "failed":
            raise AppError(
                ErrorCode.JOB_NOT_RETRYABLE,
                f"Job '{job_id}' is {state}; only failed jobs can be retried",
            )
        job = await Job.fromId(queue, job_id)
        if job is None:
            raise AppError(ErrorCode.JOB_NOT_FOUND, f"Job '{job_id}' not found in queue '{name}'")
        try:
            await job.retry("failed")
        except Exception as exc:  # the Lua script refuses when the job moved meanwhile
            raise AppError(
                ErrorCode.JOB_NOT_RETRYABLE, f"Job '{job_id}' could not be retried: {exc}"
            ) from exc

    async def pause(self, name: str) -> None:
        await self.queue(name).pause()

    async def resume(self, name: str) -> None:
        await self.queue(name).resume()

    async def clean(
        self, name: str, statuses: Iterable[str], grace_ms: int, limit: int | None
    ) -> dict[str, int]:
        """Remove jobs of the given states older than `grace_ms`, in bounded batches so a
        large set never blocks Redis in one long script. Active jobs are never touched."""
        queue = self.queue(name)
        removed: dict[str, int] = {}
        for status in statuses:
            status = CleanableStatus(status)
            state = _STATE_KEY[JobStatus(status.value)]
            total = 0
            while limit is None or total < limit:
                batch = _CLEAN_BATCH if limit is None else min(_CLEAN_BATCH, limit - total)
                ids = await queue.clean(grace_ms, batch, state)
                total += len(ids)
                if len(ids) < batch:
                    break
            removed[status.value] = total
        return removed
