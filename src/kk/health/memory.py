"""How close Redis is to refusing writes.

With `maxmemory` set and the `noeviction` policy queues need, Redis refuses every write
that may grow memory once `used_memory` reaches `maxmemory`: adds fail (507), and workers
can no longer take a job. The command being read counts too (its query buffer), so a large
add is refused while a tiny write still passes. The health checks warn from `WARN_RATIO`
of `maxmemory` and report Redis down once a job of `KK_MAX_JOB_DATA_BYTES` would be refused.
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
# An add carries the job's name, options and keys besides its data.
ADD_OVERHEAD_BYTES = 1024
# Probe also below WARN_RATIO when the room left is under this many probe sizes.
PROBE_ROOM_FACTOR = 4


@dataclass
class MemoryVerdict:
    healthy: bool  # under the configured threshold and under WARN_RATIO of maxmemory
    refused: str | None = None  # why Redis refuses writes, when it does
    warnings: list[str] = field(default_factory=list)


async def _refused(redis: Redis, key: str, size: int) -> bool:
    """Would Redis refuse a write of `size` bytes? `SET key <value> XX` is checked against
    maxmemory with the command read, before it runs; on a key that does not exist it then
    stores nothing, so the probe never takes the room it measures."""
    try:
        await redis.set(key, b"x" * size, xx=True, px=PROBE_TTL_MS)
    except OutOfMemoryError:
        return True
    return False


async def memory_verdict(
    redis: Redis, info: Mapping[str, Any], threshold_mb: float, probe_key: str, job_bytes: int
) -> MemoryVerdict:
    """From INFO's memory fields; probes (which store nothing) only when memory is near
    `maxmemory`, where INFO alone cannot tell: Redis leaves some buffers out of the count it
    compares with `maxmemory`, and the command being read counts in."""
    used = int(info.get("used_memory", 0))
    maxmemory = int(info.get("maxmemory", 0))
    verdict = MemoryVerdict(healthy=used <= threshold_mb * MB)
    if not verdict.healthy:
        verdict.warnings.append(
            f"Memory used ({format_mb(used)}) is over the threshold "
            f"({format_threshold_mb(threshold_mb)})"
        )
    # What Redis compares with maxmemory: the AOF and replication buffers are left out.
    counted = used - int(info.get("mem_not_counted_for_evict", 0))
    probe_bytes = job_bytes + ADD_OVERHEAD_BYTES
    near = used >= WARN_RATIO * maxmemory or maxmemory - counted < PROBE_ROOM_FACTOR * probe_bytes
    if not maxmemory or not near:
        return verdict
    verdict.healthy = False
    share = f"{format_mb(used)} of maxmemory {format_mb(maxmemory)}"
    if await _refused(redis, probe_key, 1):
        verdict.refused = f"Redis refuses writes: memory is full ({share})"
    elif await _refused(redis, probe_key, probe_bytes):
        verdict.refused = (
            f"Redis refuses writes: no room for an add of KK_MAX_JOB_DATA_BYTES ({job_bytes} "
            f"bytes) ({share}); smaller writes may still pass"
        )
    if verdict.refused is None:
        verdict.warnings.append(
            f"Memory used is {used / maxmemory:.0%} of maxmemory ({share}); at maxmemory "
            f"Redis refuses writes: adds fail and workers cannot take jobs"
        )
    else:
        verdict.warnings.append(verdict.refused)
    return verdict
