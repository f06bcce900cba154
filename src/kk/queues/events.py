"""Waiting for a job's result, and following a queue's events live (Server-Sent Events).

Both read BullMQ's events stream (`<prefix>:<queue>:events`) with XREAD BLOCK, on a client
of their own: the API client bounds every call to a few seconds, which a blocking read
would trip. Each open wait or stream holds one connection, so both are limited per client
IP and per process, and both end as soon as the server is told to stop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, RedisError, TimeoutError
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from kk.config import Settings
from kk.config.redis import redis_mode_of
from kk.errors import AppError, ErrorCode
from kk.infra.redis_client import connect
from kk.json_text import too_deep
from kk.queues.service import QueueService

log = logging.getLogger("kk.queues.events")

FINISHED = frozenset({"completed", "failed"})
# A stream entry id ("1700000000000-0") or its time part alone ("0": from the beginning).
STREAM_ID_RE = re.compile(r"^\d{1,20}(-\d{1,20})?$")
_READ_COUNT = 100
_RETRY_AFTER_S = 5
# How often a stream opened with a dashboard session checks that it is still signed in.
SESSION_CHECK_S = 5.0

Entry = tuple[str, dict[str, str]]


class JobOutcome(BaseModel):
    """A job's outcome, or its current state when the wait ended first (`finished` false)."""

    jobId: str
    state: str
    finished: bool
    returnValue: Any = None
    failedReason: str | None = None
    finishedOn: str | None = None


def parse_stream_id(value: str | None) -> str | None:
    """A client's resume point: None for "new events only", else a valid stream id."""
    if value is None or value in ("", "$"):
        return None
    if not STREAM_ID_RE.match(value):
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            "Last-Event-ID must be an event id such as 1700000000000-0",
        )
    return value


def sse_message(entry_id: str, fields: dict[str, str]) -> str:
    # json.dumps never emits a raw newline, so `data:` stays one line.
    event = re.sub(r"[\r\n]", "", fields.get("event", "message")) or "message"
    return f"id: {entry_id}\nevent: {event}\ndata: {json.dumps(_decoded(fields))}\n\n"


def _decoded(fields: dict[str, str]) -> dict[str, Any]:
    """The entry's fields, with BullMQ's JSON-encoded `returnvalue` as the value itself, so
    a client parses `data` once (not a JSON string inside JSON). A value that is not JSON,
    or is nested too deep to send back, stays the string it is."""
    raw = fields.get("returnvalue")
    if raw is None:
        return fields
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return fields
    if too_deep(value):
        return fields
    return {**fields, "returnvalue": value}


def _entries(reply: Any) -> list[Entry]:
    """XREAD's entries of one stream, as RESP2 (a list) or RESP3 (a map) delivers them."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else [item[1] for item in reply]
    out: list[Entry] = []
    for entries in streams:
        for entry_id, fields in entries:
            out.append((entry_id, dict(fields or {})))
    return out


async def _disconnected(receive: Callable[[], Awaitable[MutableMapping[str, Any]]]) -> None:
    """Returns when the client hangs up (a GET has no body left to read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStreams:
    """The process's blocking reads of events streams: limits, a client, shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self._per_client: Counter[str] = Counter()
        self._total = 0
        self._url: str | None = None
        self._redis: aioredis.Redis | None = None
        self._answer_s = settings.redis_timeout_s
        self._previous: dict[int, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, redis_url: str) -> None:
        self._url = redis_url
        self.stopping = asyncio.Event()  # a fresh one if the app is started again
        self._hook_signals()

    def _hook_signals(self) -> None:
        """uvicorn waits for open connections to close before the app hears of shutdown:
        on SIGTERM/SIGINT, end every wait and stream first, then let uvicorn's handler run."""
        if threading.current_thread() is not threading.main_thread():
            return  # an in-process test client: shutdown comes through `close`
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # no handler to chain to: the default action ends the process anyway

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.stopping.set)
                previous(signum, frame)

            signal.signal(sig, handler)
            self._previous[sig] = previous

    async def close(self) -> None:
        self.stopping.set()
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError):
                signal.signal(sig, previous)
        self._previous.clear()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    @property
    def redis(self) -> aioredis.Redis:
        if self._url is None:
            raise RuntimeError("EventStreams.start was not called")
        if self._redis is None:
            # No socket timeout (a read blocks for up to a minute): `_xread` bounds each call.
            extra: dict[str, Any] = {"max_connections": self.settings.event_streams_total + 1}
            if not self._url.startswith("unix://"):
                extra["socket_keepalive"] = True
            if redis_mode_of(self._url) == "cluster":
                extra.pop("max_connections")
            self._redis = connect(
                self._url,
                decode_responses=True,
                socket_timeout=None,
                socket_connect_timeout=min(self._answer_s, 2.0),
                retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=1), 2),
                retry_on_error=[ConnectionError, TimeoutError],
                **extra,
            )
        return self._redis

    # -- limits ----------------------------------------------------------------------------

    def acquire(self, client: str) -> Callable[[], None]:
        """Take a slot for one wait or stream, or raise 429; returns its (idempotent) release."""
        per_client = self.settings.event_streams_per_client
        total = self.settings.event_streams_total
        if self._per_client[client] >= per_client:
            raise _limited(f"At most {per_client} open result waits and event streams per client")
        if self._total >= total:
            raise _limited(f"The server holds its maximum of {total} open waits and streams")
        self._per_client[client] += 1
        self._total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._total -= 1
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]

        return release

    # -- reads -----------------------------------------------------------------------------

    async def last_id(self, api: aioredis.Redis, key: str) -> str:
        """The newest entry's id ("0-0" for an empty stream): reads start after it."""
        newest = await api.xrevrange(key, count=1)
        return str(newest[0][0]) if newest else "0-0"  # decoded client: ids are str

    async def _xread(self, key: str, after: str, block_ms: int) -> list[Entry]:
        try:
            # A Redis that stops answering must not hold the connection for ever.
            async with asyncio.timeout(block_ms / 1000 + self._answer_s):
                reply = await self.redis.xread({key: after}, count=_READ_COUNT, block=block_ms)
        except builtins.TimeoutError:  # asyncio.timeout's (redis-py's shadows the name)
            bound = block_ms / 1000 + self._answer_s
            raise TimeoutError(f"Redis did not answer within {bound:g}s") from None
        return _entries(reply)

    async def read(
        self, key: str, after: str, block_ms: int, gone: asyncio.Future[Any] | None = None
    ) -> list[Entry] | None:
        """Entries after `after` ([] when the block ends with none), or None when the server
        stops or the client is `gone` first."""
        read = asyncio.ensure_future(self._xread(key, after, max(1, block_ms)))
        stop = asyncio.ensure_future(self.stopping.wait())
        waiters: set[asyncio.Future[Any]] = {read, stop}
        if gone is not None:
            waiters.add(gone)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # A cancelled XREAD drops its connection (redis-py), so no late reply is misread.
            read.cancel()
            stop.cancel()
        return read.result() if read.done() and not read.cancelled() else None

    async def wait_result(
        self,
        service: QueueService,
        queue: str,
        job_id: str,
        wait_s: float,
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    ) -> JobOutcome:
        """Subscribe (take the stream's last id), then read the state, then read the stream
        from that id: an event between the two is still seen."""
        key = service.key(queue, "events")
        after = await self.last_id(service.redis, key)
        result = await _current(service, queue, job_id)
        if result.finished or wait_s <= 0:
            return result
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            while not result.finished and not self.stopping.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                entries = await self.read(key, after, int(remaining * 1000), gone)
                if entries is None:
                    break
                event: dict[str, str] | None = None
                for entry_id, fields in entries:
                    after = entry_id
                    if fields.get("jobId") == job_id and fields.get("event") in FINISHED:
                        event = fields
                if event is not None:
                    result = await _after_event(service, queue, job_id, event)
        finally:
            gone.cancel()
        return result

    async def stream(
        self, key: str, after: str, live: Callable[[], Awaitable[bool]] | None = None
    ) -> AsyncIterator[str]:
        """SSE text: every entry after `after`, a comment when nothing happens for a while.
        Ends when the server stops or Redis fails; the client resumes with Last-Event-ID.
        `live`, for a stream opened with a dashboard session, is asked every few seconds:
        once the session is signed out or expired, the stream ends."""
        keepalive_ms = int(self.settings.event_keepalive_s * 1000)
        if live is not None:
            keepalive_ms = min(keepalive_ms, int(SESSION_CHECK_S * 1000))
        checked = time.monotonic()
        yield ": connected\n\n"
        while not self.stopping.is_set():
            if live is not None and time.monotonic() - checked >= SESSION_CHECK_S:
                checked = time.monotonic()
                try:
                    if not await live():
                        return
                except RedisError:
                    return
            try:
                entries = await self.read(key, after, keepalive_ms)
            except RedisError as exc:
                log.warning("Events stream %s ended: %s", key, exc)
                return
            if entries is None:
                return
            if not entries:
                yield ": keep-alive\n\n"
            for entry_id, fields in entries:
                after = entry_id
                yield sse_message(entry_id, fields)


class EventStreamResponse(StreamingResponse):
    """SSE that holds its limiter slot until the stream ends, however it ends (even when
    the body is never iterated)."""

    def __init__(self, body: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


def _limited(message: str) -> AppError:
    return AppError(
        ErrorCode.RATE_LIMITED,
        f"{message}; retry in {_RETRY_AFTER_S}s",
        headers={"Retry-After": str(_RETRY_AFTER_S)},
    )


async def _current(service: QueueService, queue: str, job_id: str) -> JobOutcome:
    view = await service.get_job(queue, job_id)  # JOB_NOT_FOUND for an unknown id
    finished = view.status in FINISHED
    return JobOutcome(
        jobId=job_id,
        state=view.status,
        finished=finished,
        returnValue=view.returnValue if view.status == "completed" else None,
        failedReason=view.failedReason if view.status == "failed" else None,
        finishedOn=view.finishedOn if finished else None,
    )


async def _after_event(
    service: QueueService, queue: str, job_id: str, event: dict[str, str]
) -> JobOutcome:
    """The job's state once its completed/failed event is seen; from the event itself when
    the job was removed on completion (removeOnComplete/removeOnFail)."""
    try:
        return await _current(service, queue, job_id)
    except AppError as exc:
        if exc.code is not ErrorCode.JOB_NOT_FOUND:
            raise
    state = event["event"]
    value: Any = event.get("returnvalue")
    with contextlib.suppress(TypeError, ValueError):
        value = json.loads(value) if value is not None else None
    return JobOutcome(
        jobId=job_id,
        state=state,
        finished=True,
        returnValue=value if state == "completed" else None,
        failedReason=event.get("failedReason") if state == "failed" else None,
    )
