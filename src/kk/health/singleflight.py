"""At most one check per dependency in flight, awaited with a deadline.

A probe never cancels the check it waits for: cancelling a driver mid-command can leave a
pooled connection in a bad state. Instead a check that outlives the deadline keeps running
in the background and the next probes wait on that same call, so a hung dependency costs
one pending call, not one per probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    async def run(self, key: str, call: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        """The result of `call()` (or of the one already running under `key`); raises
        TimeoutError when it is not done within `timeout_s`."""
        task = self._tasks.get(key)
        if task is None or task.done():
            task = asyncio.ensure_future(call())
            task.add_done_callback(_consume)
            self._tasks[key] = task
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            raise TimeoutError(f"no answer within {round(timeout_s * 1000)}ms")
        return task.result()

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()


def _consume(task: asyncio.Task[Any]) -> None:
    # Nobody may await a check that finished after its probe gave up: read its exception
    # so asyncio doesn't log "exception was never retrieved".
    if not task.cancelled():
        task.exception()
