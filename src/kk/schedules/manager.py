"""Cron schedules from configuration, run by BullMQ job schedulers.

Why BullMQ's schedulers: the job of each tick has the id `repeat:<schedule>:<tick millis>`,
created by one Lua call, and the next tick's job is created by the worker that takes the
current one (guarded by the producing job's id). So any number of processes may start, sync
and run workers at once: each tick is enqueued once, never once per process.

State kept in Redis, under `kk-schedules:<queue prefix>:*`, shared by every process:
- `enabled`: name -> "1"/"0", once someone enabled or disabled a schedule (else config).
- `spec`: name -> the queue and a fingerprint of what was last upserted, so a restart with
  unchanged configuration leaves the pending tick alone instead of re-creating it.
  It is also the registry of the schedulers this service made: at start-up, one whose
  schedule is no longer configured is removed (BullMQ would otherwise keep firing it).
- `last-run`: name -> epoch ms of the last time the schedule fired: the tick's due time,
  recorded when a worker of any kk process takes that tick's job, or the time of a run-now.
  (Jobs taken by workers outside kk, e.g. Node, are not recorded.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from bullmq import Job, Queue
from croniter import croniter
from redis.asyncio import Redis

from kk.config import Settings
from kk.config.schedules import ScheduleConfig
from kk.errors import AppError, ErrorCode
from kk.queues.service import QueueService

log = logging.getLogger("kk.schedules")

# Keep the newest value: ticks may be recorded out of order by different processes.
_SET_MAX = """
local current = tonumber(redis.call("HGET", KEYS[1], ARGV[1]) or "0")
if tonumber(ARGV[2]) > current then redis.call("HSET", KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


def next_tick_ms(cfg: ScheduleConfig, after_ms: int) -> int:
    base = datetime.fromtimestamp(after_ms / 1000, ZoneInfo(cfg.timezone))
    nxt = croniter(cfg.cron, base, second_at_beginning=True).get_next(datetime)
    return int(nxt.timestamp() * 1000)


def _tick_of(job_id: str) -> int | None:
    tail = job_id.rsplit(":", 1)[-1]
    return int(tail) if job_id.startswith("repeat:") and tail.isdigit() else None


class ScheduleManager:
    def __init__(self, redis: Redis, settings: Settings, queues: QueueService) -> None:
        self.redis = redis
        self.settings = settings
        self.queues = queues
        self.schedules: dict[str, ScheduleConfig] = dict(settings.schedules or {})
        # A namespace of its own: neither a queue's keys nor the cache's (`kk:cache:`).
        ns = f"kk-schedules:{settings.queue_prefix}"
        self.enabled_key = f"{ns}:enabled"
        self.spec_key = f"{ns}:spec"
        self.last_run_key = f"{ns}:last-run"
        self._sync_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Sync in the background, retrying until Redis answers: a Redis hiccup at start-up
        must not keep the API from starting."""
        self._sync_task = asyncio.get_running_loop().create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.sync()
                return
            except Exception as exc:
                log.warning("schedule sync failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def stop(self) -> None:
        tasks = [t for t in (self._sync_task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)

    async def sync(self) -> None:
        """Make Redis match configuration and the stored enabled/disabled choices."""
        # decode_responses=True: both hashes come back as str -> str.
        enabled, specs = cast(
            tuple[dict[str, str], dict[str, str]],
            await asyncio.gather(
                self.redis.hgetall(self.enabled_key), self.redis.hgetall(self.spec_key)
            ),
        )
        for name, cfg in self.schedules.items():
            if self._is_enabled(enabled, name, cfg):
                await self._ensure(name, cfg, specs.get(name))
            else:
                await self._remove(name, cfg)
        # `spec` names every scheduler this service created: one no longer configured must
        # stop firing. Schedulers made by others (no `spec` entry) are left alone.
        for name in sorted(set(specs) - set(self.schedules)):
            await self._forget(name, specs[name])
        log.info("schedules synced: %s", ", ".join(self.schedules) or "(none)")

    # -- reads ---------------------------------------------------------------------------

    def config(self, name: str) -> ScheduleConfig:
        cfg = self.schedules.get(name)
        if cfg is None:
            raise AppError(ErrorCode.SCHEDULE_NOT_FOUND, f"Schedule '{name}' is not configured")
        return cfg

    @staticmethod
    def _is_enabled(stored: dict[str, str], name: str, cfg: ScheduleConfig) -> bool:
        value = stored.get(name)
        return cfg.enabled if value is None else value == "1"

    async def list(self) -> list[dict[str, Any]]:
        """Every schedule with its state, next and last run, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.enabled_key)
        pipe.hgetall(self.last_run_key)
        for name, cfg in self.schedules.items():
            pipe.zscore(self.queues.key(cfg.queue, "repeat"), name)
        enabled, last_runs, *nexts = await pipe.execute()
        now = int(time.time() * 1000)
        out = []
        for (name, cfg), scheduled in zip(self.schedules.items(), nexts, strict=True):
            on = self._is_enabled(enabled, name, cfg)
            # Before the first sync has run, show when it will fire.
            next_ms = int(scheduled) if scheduled is not None else next_tick_ms(cfg, now)
            last = last_runs.get(name)
            out.append(
                {
                    "name": name,
                    "queueName": cfg.queue,
                    "jobType": cfg.job,
                    "cronExpression": cfg.cron,
                    "enabled": on,
                    "description": cfg.description,
                    "timezone": cfg.timezone,
                    "nextRun": next_ms if on else None,
                    "lastRun": int(last) if last else None,
                }
            )
        return out

    # -- changes -------------------------------------------------------------------------

    async def enable(self, name: str) -> None:
        cfg = self.config(name)
        await self.redis.hset(self.enabled_key, name, "1")
        spec = cast(str | None, await self.redis.hget(self.spec_key, name))  # decoded
        await self._ensure(name, cfg, spec)

    async def disable(self, name: str) -> None:
        cfg = self.config(name)
        await self.redis.hset(self.enabled_key, name, "0")
        await self._remove(name, cfg)

    async def run_now(self, name: str) -> str:
        """Add one job now, outside the cron rhythm (the next tick still comes)."""
        cfg = self.config(name)
        job = await self.queues.queue(cfg.queue).add(cfg.job, cfg.data, self._job_opts(cfg))
        await self._record_run(name, int(time.time() * 1000))
        return str(job.id)

    # -- BullMQ --------------------------------------------------------------------------

    def _job_opts(self, cfg: ScheduleConfig) -> dict[str, Any]:
        return self.settings.queues[cfg.queue].job_defaults()

    def _fingerprint(self, cfg: ScheduleConfig) -> str:
        spec = {**cfg.model_dump(mode="json", exclude={"enabled", "description"})}
        spec["opts"] = self._job_opts(cfg)
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    async def _ensure(self, name: str, cfg: ScheduleConfig, stored: str | None) -> None:
        fingerprint = self._fingerprint(cfg)
        previous = json.loads(stored) if stored else {}
        queue = self.queues.queue(cfg.queue)
        if previous.get("fp") == fingerprint and await queue.isJobScheduler(name):
            return  # unchanged: leave the pending tick as it is
        old_queue = previous.get("queue")
        if old_queue and old_queue != cfg.queue and old_queue in self.queues.names:
            await self.queues.queue(old_queue).removeJobScheduler(name)
        repeat = {"pattern": cfg.cron, "tz": cfg.timezone}
        opts = self._job_opts(cfg)
        try:
            await queue.upsertJobScheduler(name, repeat, cfg.job, cfg.data, opts)
        except TypeError as exc:
            if "already exists" not in str(exc):
                raise
            # The next tick's job id is taken (e.g. that job was promoted by hand): schedule
            # from the tick after it rather than leave the schedule without a scheduler.
            taken = next_tick_ms(cfg, int(time.time() * 1000))
            opts = {**opts, "prevMillis": taken}
            await queue.upsertJobScheduler(name, repeat, cfg.job, cfg.data, opts)
        await self.redis.hset(
            self.spec_key, name, json.dumps({"queue": cfg.queue, "fp": fingerprint})
        )
        log.info("schedule %s: %s (%s) -> %s/%s", name, cfg.cron, cfg.timezone, cfg.queue, cfg.job)

    async def _remove(self, name: str, cfg: ScheduleConfig) -> None:
        # Removes the scheduler and its pending (delayed) job in one Lua call.
        await self.queues.queue(cfg.queue).removeJobScheduler(name)

    async def _forget(self, name: str, stored: str) -> None:
        """Remove a no longer configured schedule's scheduler (with its pending tick), then
        what was kept about it; in that order, so an interrupted start-up retries it."""
        try:
            queue_name = json.loads(stored).get("queue")
        except (ValueError, AttributeError):
            queue_name = None
        if isinstance(queue_name, str) and queue_name:
            if queue_name in self.queues.names:
                queue = self.queues.queue(queue_name)
            else:  # its queue was removed from configuration too
                queue = Queue(
                    queue_name, {"connection": self.redis, "prefix": self.settings.queue_prefix}
                )
            await queue.removeJobScheduler(name)
        pipe = self.redis.pipeline(transaction=False)
        for key in (self.spec_key, self.enabled_key, self.last_run_key):
            pipe.hdel(key, name)
        await pipe.execute()
        log.info("schedule %s: no longer configured; its job scheduler was removed", name)

    async def _record_run(self, name: str, at_ms: int) -> None:
        await self.redis.eval(_SET_MAX, 1, self.last_run_key, name, at_ms)

    # -- worker side ---------------------------------------------------------------------

    def job_started(self, queue: str, job: Job) -> None:
        """JobListener hook: a worker of this process took a job. A schedule's tick job
        carries the scheduler id in `rjk` and its due time in `prevMillis`."""
        name = job.repeatJobKey
        cfg = self.schedules.get(name or "")
        if name is None or cfg is None or cfg.queue != queue:
            return
        due = (job.opts or {}).get("prevMillis") or _tick_of(str(job.id)) or time.time() * 1000
        task = asyncio.get_running_loop().create_task(self._record_run(name, int(due)))
        self._pending.add(task)
        task.add_done_callback(self._done)

    def job_finished(self, *args: Any, **kwargs: Any) -> None:
        return None

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record a schedule's last run: %s", task.exception())
