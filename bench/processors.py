"""Processors used by the benchmarks (registered through KK_QUEUES as a user would)."""

from typing import Any


async def noop(job: Any, ctx: Any) -> dict[str, int]:
    return {"n": int(job.data.get("n", 0))}
