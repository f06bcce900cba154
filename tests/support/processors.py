"""Processors for test queues, registered through configuration as a user would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, Field

from kk.processors.base import JobContext


class FlakyData(BaseModel):
    fail: bool = False
    value: int = Field(0, ge=0)


async def flaky(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Fails on request; counts every execution in Redis so tests can see reruns."""
    await ctx.redis.incr(f"kk-test:runs:{job.queueQualifiedName}:{job.id}")
    if job.data.get("fail"):
        raise RuntimeError(f"requested failure for value {job.data.get('value')}")
    return {"doubled": int(job.data.get("value", 0)) * 2}


async def sleepy(job: Any, ctx: JobContext) -> dict[str, Any]:
    seconds = float(job.data.get("seconds", 1))
    await ctx.redis.incr(f"kk-test:runs:{job.queueQualifiedName}:{job.id}")
    await asyncio.sleep(seconds)
    await ctx.redis.incr(f"kk-test:done:{job.queueQualifiedName}:{job.id}")
    return {"slept": seconds}


async def nap(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Sleeps without touching Redis: a Redis fault cannot fail the processor itself."""
    seconds = float(job.data.get("seconds", 1))
    await asyncio.sleep(seconds)
    return {"napped": seconds}


async def recorded(job: Any, ctx: JobContext) -> dict[str, Any]:
    """Appends `<n> <unix time>` to the file the job's data names: a record of every run
    kept outside Redis, so it survives whatever happens to Redis's data."""
    with open(job.data["log"], "a") as runs:
        runs.write(f"{job.data['n']} {time.time():.3f}\n")
    return {"n": job.data["n"]}


async def fail_with(job: Any, ctx: JobContext) -> None:
    """Fails with the reason the job's data gives (as a processor quoting its input would)."""
    raise RuntimeError(job.data["reason"])
