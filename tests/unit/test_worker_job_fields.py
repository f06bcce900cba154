"""Log records carry the job being run, and only while it runs: the tuned worker runs one
job after another in the same task, so a record logged between two jobs must carry none."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

from kk.config import Settings
from kk.logs import job_fields_var
from kk.processors.base import JobContext, ProcessorSpec
from kk.workers.pool import WorkerPool


async def test_job_fields_are_set_while_a_job_runs_and_reset_after(tmp_path):
    seen: list[Any] = []

    async def process(job: Any, ctx: JobContext) -> str:
        seen.append(dict(job_fields_var.get() or {}))
        if job.data.get("fail"):
            raise RuntimeError("requested")
        return "ok"

    settings = Settings(data_dir=tmp_path)
    spec = ProcessorSpec(process=process)
    pool = WorkerPool(settings, "redis://unused", {"email": spec}, JobContext(settings, None, None))  # type: ignore[arg-type]
    run = pool._wrap("email", spec)

    async def two_jobs_in_one_task() -> list[Any]:
        between = []
        first = SimpleNamespace(id="1", name="a", attemptsMade=0, data={})
        second = SimpleNamespace(id="2", name="b", attemptsMade=2, data={"fail": True})
        await run(first, "t")
        between.append(job_fields_var.get())
        with contextlib.suppress(RuntimeError):
            await run(second, "t")
        between.append(job_fields_var.get())
        return between

    between = await asyncio.create_task(two_jobs_in_one_task())
    assert seen == [
        {"queue": "email", "job_id": "1", "job_name": "a", "attempt": 1},
        {"queue": "email", "job_id": "2", "job_name": "b", "attempt": 3},
    ]
    assert between == [None, None], "a record between jobs would carry the previous job"
