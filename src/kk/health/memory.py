"""How close Redis is to refusing writes.

With `maxmemory` set and the `noeviction` policy queues need, Redis refuses every write
that may grow memory once `used_memory` reaches `maxmemory`: adds fail (507), and workers
can no longer take a job. The health checks warn from `WARN_RATIO` of `maxmemory` and
report Redis down once it refuses writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from kk.units import MB, format_mb, format_threshold_mb

WARN_RATIO = 0.9
PROBE_TTL_MS = 5000


@dataclass
class MemoryVerdict:
    healthy: bool  # under the configured threshold and under WARN_RATIO of maxmemory
    refused: str | None = None  # why Redis refuses writes, when it does
    warnings: list[str] = field(default_factory=list)


async def memory_verdict(
    redis: Redis, info: Mapping[str, Any], threshold_mb: float, probe_key: str
) -> MemoryVerdict:
    """From INFO's memory fields; one probe write (a key of ours that expires in seconds)
    only when memory is near `maxmemory`, where INFO alone cannot tell: Redis leaves some
    buffers out of the count it compares with `maxmemory`."""
    used = int(info.get("used_memory", 0))
    maxmemory = int(info.get("maxmemory", 0))
    policy = info.get("maxmemory_policy")
    verdict = MemoryVerdict(healthy=used <= threshold_mb * MB)
    if not verdict.healthy:
        verdict.warnings.append(
            f"Memory used ({format_mb(used)}) is over the threshold "
            f"({format_threshold_mb(threshold_mb)})"
        )
    if not maxmemory or used < WARN_RATIO * maxmemory:
        return verdict
    verdict.healthy = False
    share = f"{format_mb(used)} of maxmemory {format_mb(maxmemory)}"
    if used >= maxmemory and policy == "noeviction":
        verdict.refused = f"Redis refuses writes: memory is full ({share}, noeviction)"
    else:
        try:
            await redis.set(probe_key, "1", px=PROBE_TTL_MS)
        except OutOfMemoryError:
            verdict.refused = f"Redis refuses writes: out of memory ({share})"
    if verdict.refused is None:
        verdict.warnings.append(
            f"Memory used is {used / maxmemory:.0%} of maxmemory ({share}); at maxmemory "
            f"Redis refuses writes: adds fail and workers cannot take jobs"
        )
    else:
        verdict.warnings.append(verdict.refused)
    return verdict
