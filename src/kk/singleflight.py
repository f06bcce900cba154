"""Concurrent calls for one key share one execution (within this process).

The shared call runs as a task of its own and is never cancelled by a caller that gives
up: a caller whose client went away must not cancel the load the others wait on, and
cancelling a driver mid-command can leave a pooled connection in a bad state. A health
probe waits with a deadline instead; a check that outlives it keeps running and the next
probes wait on that same call, so a hung dependency costs one pending call, not one per
probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def run(
        self, key: str, load: Callable[[], Awaitable[T]], timeout_s: float | None = None
    ) -> T:
        """The result of `load()`, or of the call already running under `key`; with a
        `timeout_s`, raises TimeoutError when it is not done in time (the call goes on)."""
        task = self._running.get(key)
        if task is None or task.done():  # a finished call is never reused
            task = asyncio.ensure_future(load())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        if timeout_s is None:
            return await asyncio.shield(task)
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            raise TimeoutError(f"no answer within {round(timeout_s * 1000)}ms")
        return task.result()

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if all callers left
