"""Concurrent calls for one key share one execution (within this process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            # A task of its own: a caller that gives up (client gone) doesn't cancel the
            # load for the others waiting on it.
            task = asyncio.ensure_future(load())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if all callers left
