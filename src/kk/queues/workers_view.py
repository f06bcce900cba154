"""Which worker processes are connected, from one CLIENT LIST.

Every BullMQ worker names its Redis connections `<prefix>:<queue>:w:<worker name>` (the
Node port base64-encodes the queue). A KK worker's name says which process it belongs to:
`kk:<host>:<pid>:<queue>:<concurrency>:<started ms>`, so connections group into processes.
A worker of another program (a Node worker, a bullmq worker without our name) counts as one
process per (worker name, client address).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from redis.exceptions import ResponseError

from kk.times import iso_from_ms

log = logging.getLogger("kk.queues.workers_view")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_KK_NAME = re.compile(
    r"^kk:(?P<host>[A-Za-z0-9._-]+):(?P<pid>\d+):(?P<queue>[a-z0-9_-]+)"
    r":(?P<concurrency>\d+):(?P<started>\d+)$"
)


def worker_name(queue: str, concurrency: int, started_ms: int) -> str:
    """The worker's name; CLIENT SETNAME takes no spaces, so the host is reduced to
    `[A-Za-z0-9._-]`."""
    host = _UNSAFE.sub("-", socket.gethostname())[:64] or "host"
    return f"kk:{host}:{os.getpid()}:{queue}:{concurrency}:{started_ms}"


class WorkerProcess(BaseModel):
    host: str  # the machine's name as the process knows it; the client IP for others
    pid: int | None  # null for workers of other programs, which do not say
    queues: list[str]
    concurrency: dict[str, int]  # per queue; empty when not known
    started: str | None  # ISO 8601 UTC
    lastSeen: str | None  # when its most recently busy connection last sent a command
    idleSeconds: int | None
    connections: int
    address: str  # the client IP as Redis sees it; "unix" for a local socket
    name: str  # the BullMQ worker name (of one of its queues for KK processes)


class WorkerListResponse(BaseModel):
    """The envelope of `GET /api/queues/workers`; `data` is null when the server refuses
    CLIENT LIST (some managed services do), which is not the same as no workers."""

    success: Literal[True] = True
    data: list[WorkerProcess] | None


@dataclass
class _Group:
    row: WorkerProcess
    idles: list[int] = field(default_factory=list)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _address(addr: str) -> str:
    if addr.startswith("/") or not addr:
        return "unix"
    return addr.rsplit(":", 1)[0]


def _owner(client_name: str, prefix: str, queues: set[str]) -> tuple[str, str] | None:
    """(queue, worker name) of a worker connection of a configured queue, else None."""
    if not client_name.startswith(f"{prefix}:"):
        return None
    queue, _, worker = client_name[len(prefix) + 1 :].partition(":w:")
    if queue not in queues:
        try:
            queue = base64.b64decode(queue, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    return (queue, worker) if queue in queues else None


def clients(raw: object) -> list[dict[str, str]]:
    """CLIENT LIST as dicts, whether redis-py parsed it or not."""
    if isinstance(raw, list):
        return [{str(k): str(v) for k, v in c.items()} for c in raw if isinstance(c, dict)]
    if isinstance(raw, bytes | str):
        text = raw.decode() if isinstance(raw, bytes) else raw
        return [
            dict(p.split("=", 1) for p in line.split(" ") if "=" in p) for line in text.splitlines()
        ]
    return []


def worker_processes(
    listed: list[dict[str, str]], prefix: str, queues: list[str], now_ms: float
) -> list[WorkerProcess]:
    """One row per worker process, by host and pid."""
    known = set(queues)
    groups: dict[tuple[str, ...], _Group] = {}
    for client in listed:
        owner = _owner(client.get("name", ""), prefix, known)
        if owner is None:
            continue
        queue, name = owner
        address = _address(client.get("addr", ""))
        parsed = _KK_NAME.match(name)
        key = (
            ("kk", parsed["host"], parsed["pid"], parsed["started"])
            if parsed
            else ("other", name, address)
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(
                WorkerProcess(
                    host=parsed["host"] if parsed else address,
                    pid=int(parsed["pid"]) if parsed else None,
                    queues=[],
                    concurrency={},
                    started=iso_from_ms(int(parsed["started"])) if parsed else None,
                    lastSeen=None,
                    idleSeconds=None,
                    connections=0,
                    address=address,
                    name=name,
                )
            )
        row = group.row
        # One of the process's worker names stands for it: the first by sort order, so the
        # row reads the same whatever order CLIENT LIST gives (it changes as connections
        # close and open).
        row.name = min(row.name, name)
        row.connections += 1
        if queue not in row.queues:
            row.queues.append(queue)
        if parsed:
            row.concurrency[queue] = int(parsed["concurrency"])
        idle = _int(client.get("idle"))
        if idle is not None:
            group.idles.append(idle)
    rows = []
    for group in groups.values():
        row = group.row
        row.queues.sort()
        if group.idles:
            row.idleSeconds = min(group.idles)
            row.lastSeen = iso_from_ms(now_ms - row.idleSeconds * 1000)
        rows.append(row)
    return sorted(rows, key=lambda r: (r.host, r.pid or 0, r.name))


def process_counts(rows: list[WorkerProcess], queues: list[str]) -> dict[str, int]:
    """Worker processes per queue (a process with 3 connections counts once)."""
    return {q: sum(1 for r in rows if q in r.queues) for q in queues}


async def read_workers(redis: Any, prefix: str, queues: list[str]) -> list[WorkerProcess] | None:
    """Worker processes of these queues; None when the server refuses CLIENT LIST (some
    managed services do)."""
    try:
        raw = await redis.client_list()
    except ResponseError as exc:
        log.warning("CLIENT LIST refused; worker processes unknown: %s", exc)
        return None
    return worker_processes(clients(raw), prefix, queues, time.time() * 1000)
