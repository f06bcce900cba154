"""Everything the overview and health need about every queue, in one round trip.

A Lua script returns, for each queue, the counts `QueueService.stats_many` reads plus what
the alert rules need: the oldest waiting job's creation time and the completed/failed sums
over the failure-ratio window from BullMQ's per-minute metrics. One script call per 100
queues instead of ~15 commands per queue keeps the answer time nearly flat as queues are
added: a pipeline's cost is mostly client-side packing and parsing per command.
Queue key prefixes are the script's KEYS, so on a cluster it needs what BullMQ needs
anyway: a hash-tagged prefix putting every queue in one slot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from bullmq import Queue
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from kk.config import QueueConfig
from kk.queues.alerts import AlertInputs
from kk.queues.schemas import QueueStats


class QueueKeys(Protocol):
    """What the snapshot reads of `QueueService` (which calls it for its counts)."""

    redis: Redis

    def queue(self, name: str) -> Queue: ...

    def key(self, name: str, suffix: str) -> str: ...

    def config(self, name: str) -> QueueConfig: ...


# Counts as stats_many reads them (`waiting` adds BullMQ < 5's separate paused list).
# BullMQ's metrics per kind: hash count/prevTS/prevCount, where the minute of prevTS is
# still open (count - prevCount) and the list holds closed minutes newest first, item i
# being the minute `minute(prevTS) - 1 - i`.
_SNAPSHOT = """
local rcall = redis.call
local nowMin = math.floor(tonumber(ARGV[1]) / 60000)

local function windowSum(metaKey, dataKey, first)
  local meta = rcall("HMGET", metaKey, "count", "prevTS", "prevCount")
  if not meta[2] then return 0 end
  local openMin = math.floor(tonumber(meta[2]) / 60000)
  local total = 0
  if openMin >= first and openMin <= nowMin then
    total = math.max((tonumber(meta[1]) or 0) - (tonumber(meta[3]) or 0), 0)
  end
  local last = math.min(openMin - 1, nowMin)
  if last >= first then
    local points = rcall("LRANGE", dataKey, openMin - 1 - last, openMin - 1 - first)
    for i = 1, #points do total = total + (tonumber(points[i]) or 0) end
  end
  return total
end

local out = {}
for i, q in ipairs(KEYS) do
  local first = nowMin - tonumber(ARGV[i + 1]) + 1
  local oldest = 0
  local tail = rcall("LINDEX", q .. "wait", -1)
  if tail then oldest = tonumber(rcall("HGET", q .. tail, "timestamp")) or 0 end
  local row = {
    rcall("LLEN", q .. "wait"), rcall("LLEN", q .. "paused"), rcall("LLEN", q .. "active"),
    rcall("ZCARD", q .. "completed"), rcall("ZCARD", q .. "failed"),
    rcall("ZCARD", q .. "delayed"), rcall("ZCARD", q .. "prioritized"),
    rcall("ZCARD", q .. "waiting-children"), rcall("HEXISTS", q .. "meta", "paused"),
    windowSum(q .. "metrics:completed", q .. "metrics:completed:data", first),
    windowSum(q .. "metrics:failed", q .. "metrics:failed:data", first), oldest
  }
  for _, v in ipairs(row) do out[#out + 1] = v end
end
return out
"""
_FIELDS = 12
# Queues per script call: bounds how long one call holds Redis (~1 ms per 100 queues).
_BATCH = 100
_SHA = hashlib.sha1(_SNAPSHOT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


async def _run(service: QueueKeys, names: Sequence[str], now_ms: int) -> list:
    batches = []
    for i in range(0, len(names), _BATCH):
        batch = names[i : i + _BATCH]
        prefixes = [service.key(n, "") for n in batch]
        windows = [service.config(n).alerts.failure_ratio_window_minutes for n in batch]
        batches.append((prefixes, [now_ms, *windows]))
    if isinstance(service.redis, RedisCluster):
        # A cluster refuses pipelined EVALSHA; the hash-tagged prefix keeps each call on
        # one node, so this is one call per 100 queues.
        script = service.redis.register_script(_SNAPSHOT)
        return [await script(keys=keys, args=args) for keys, args in batches]
    pipe = service.redis.pipeline(transaction=False)
    for keys, args in batches:
        pipe.evalsha(_SHA, len(keys), *keys, *args)
    return await pipe.execute(raise_on_error=False)


async def snapshot(
    service: QueueKeys, names: Sequence[str], now_ms: int
) -> list[tuple[QueueStats, AlertInputs]]:
    names = [service.queue(n).name for n in names]
    replies = await _run(service, names, now_ms)
    if any(isinstance(r, NoScriptError) for r in replies):
        # First use on this server (or after a restart or SCRIPT FLUSH): load, then retry.
        await service.redis.script_load(_SNAPSHOT)
        replies = await _run(service, names, now_ms)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    flat = [v for reply in replies for v in reply]
    out = []
    for i, name in enumerate(names):
        row = flat[i * _FIELDS : (i + 1) * _FIELDS]
        wait, old_paused, active, completed, failed, delayed, prio, children, paused = row[:9]
        win_completed, win_failed, created = row[9:]
        stats = QueueStats(
            name=name,
            waiting=wait + old_paused,
            active=active,
            completed=completed,
            failed=failed,
            delayed=delayed,
            paused=bool(paused),
            prioritized=prio,
            waitingChildren=children,
        )
        inputs = AlertInputs(
            oldest_waiting_s=max(now_ms - created, 0) / 1000 if created else None,
            window_completed=int(win_completed),
            window_failed=int(win_failed),
        )
        out.append((stats, inputs))
    return out
