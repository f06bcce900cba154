"""A Lua script called straight on a connection: pack, write, read.

redis-py's `execute_command` wraps every command in a retry loop, observability hooks and
pool bookkeeping: 60-90 µs of CPU per call on a worker running 50 jobs at once, against
about 23 µs to pack, write and read the same EVALSHA on the connection (BENCHMARKS.md). The
worker's hottest call, `moveToFinished` once per job, goes one of these two ways when the
client's pool is the `LeanConnectionPool`:

- `DirectScript`: one call at a time per pooled connection (a worker running one job).
- `PipelinedScript`: every concurrent call on one connection, written at once, the replies
  read in order, as Node's BullMQ (ioredis) talks to Redis: one reader for many calls
  instead of a connection and a socket wait per running job.

Failures keep redis-py's behaviour: a reply error is raised as it is; an unknown script
(the server restarted and lost its cache) or a lost connection sends the call through the
script object itself, which loads the script and retries with the client's own policy, as
every call did before.

Uses a connection's `pack_command`, `send_packed_command`, `read_response` and stream
writer, and the pool's `get_connection`/`release`: written for the redis-py version in
`kk.compat.TUNED_ONLY`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from kk.compat.redis_pool import LeanConnectionPool

# Errors after which the call goes again through the script object (reload, retry).
_AGAIN = (NoScriptError, ConnectionError, TimeoutError)


def lean_pool_of(script: AsyncScript) -> LeanConnectionPool | None:
    """The script's client pool if it is the lean one. Any other client (Sentinel, Cluster,
    redis-py's own pools) keeps the script's own path."""
    pool = getattr(script.registered_client, "connection_pool", None)
    return pool if isinstance(pool, LeanConnectionPool) else None


class DirectScript:
    def __init__(self, script: AsyncScript) -> None:
        self.script = script
        self.pool = lean_pool_of(script)

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        pool = self.pool
        if pool is None:
            return await self.script(keys=keys, args=args)
        try:
            connection = await pool.get_connection()
        except _AGAIN:  # Redis is away: the script's own retries wait for it
            return await self.script(keys=keys, args=args)
        try:
            # The lean pool's connections pack with hiredis (`redis_pool`).
            command = connection.pack_command("EVALSHA", self.script.sha, len(keys), *keys, *args)
            await connection.send_packed_command(command)
            return await connection.read_response()
        except _AGAIN:
            pass
        finally:
            await pool.release(connection)
        return await self.script(keys=keys, args=args)

    async def close(self) -> None:
        pass


class _Channel:
    """One connection carrying many calls: each written at once, the replies matched to
    callers in order. Closed for good at its first failure; the caller opens another."""

    def __init__(self, pool: LeanConnectionPool, connection: AbstractConnection) -> None:
        self.pool = pool
        self.connection = connection
        self.loop = asyncio.get_running_loop()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        writer = connection._writer
        assert writer is not None  # a pool hands out connected connections
        self.writer: asyncio.StreamWriter = writer
        self.open = True
        self.reader = self.loop.create_task(self._read())

    def call(self, command: list[bytes]) -> asyncio.Future[Any]:
        reply = self.loop.create_future()
        self.waiting.append(reply)
        # Written at once, not gathered per loop turn: Redis starts on it while this
        # process handles the other replies (gathering made the two take turns).
        try:
            self.writer.writelines(command)
        except Exception as exc:  # the transport is gone: the reader sees it too
            self._fail(exc)
        return reply

    async def _read(self) -> None:
        connection = self.connection
        try:
            while True:
                try:
                    reply: Any = await connection.read_response()
                except ResponseError as error:  # an error reply: the caller's, not ours
                    reply = error
                if not self.waiting:
                    raise ConnectionError("a reply came that no call was waiting for")
                future = self.waiting.popleft()
                if future.done():  # its caller was cancelled; the reply is dropped
                    continue
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except BaseException as exc:
            self._fail(exc)
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)
            await self.pool.release(connection)
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _fail(self, exc: BaseException) -> None:
        if not self.open:
            return
        self.open = False
        error = ConnectionError(f"Connection lost while calling a script: {exc!r}")
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if asyncio.current_task() is not self.reader:
            self.reader.cancel()

    async def close(self) -> None:
        self._fail(ConnectionError("closed"))
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class PipelinedScript:
    def __init__(self, script: AsyncScript) -> None:
        self.script = script
        self.pool = lean_pool_of(script)
        self._channel: _Channel | None = None
        self._opening = asyncio.Lock()

    async def _open(self, pool: LeanConnectionPool) -> _Channel:
        async with self._opening:  # fifty callers at once open one connection
            channel = self._channel
            if channel is None or not channel.open:
                channel = self._channel = _Channel(pool, await pool.get_connection())
            return channel

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        pool = self.pool
        if pool is None:
            return await self.script(keys=keys, args=args)
        try:
            channel = self._channel
            if channel is None or not channel.open:
                channel = await self._open(pool)
            command = channel.connection.pack_command(
                "EVALSHA", self.script.sha, len(keys), *keys, *args
            )
            return await channel.call(command)
        except _AGAIN:  # Redis is away, or the cache lost: the script's own path
            pass
        return await self.script(keys=keys, args=args)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
