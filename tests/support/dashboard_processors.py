"""Processors for the dashboard tests, registered through configuration as a user would."""

from __future__ import annotations

from typing import Any

from kk.processors.base import JobContext


async def fail_first(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Counts runs per job in Redis; fails the first run when asked (so a retry succeeds),
    always when `fail` is set. Writes a log line on every run."""
    runs = await ctx.redis.incr(f"kk-test:runs:{job.queueQualifiedName}:{job.id}")
    await job.log(f"run {runs} of job {job.id}")
    if job.data.get("fail") or (job.data.get("failFirst") and runs == 1):
        raise RuntimeError(f"requested failure on run {runs}")
    return {"runs": runs}
