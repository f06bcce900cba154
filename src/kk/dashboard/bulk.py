"""Retry, remove or promote many jobs of one queue, each on its own: one job that moved
meanwhile fails alone and the answer says which, by id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kk.dashboard.schemas import BulkOutcome
from kk.errors import AppError
from kk.queues import actions
from kk.queues.service import QueueService

# Each action is a few round trips; a bounded number in flight keeps Redis responsive.
CONCURRENCY = 16

Action = Callable[[QueueService, str, str], Awaitable[None]]


async def _retry(service: QueueService, name: str, job_id: str) -> None:
    await service.retry(name, job_id)


ACTIONS: dict[str, Action] = {
    "retry": _retry,
    "remove": actions.remove_job,
    "promote": actions.promote_job,
}


async def run(service: QueueService, name: str, action: str, ids: list[str]) -> list[BulkOutcome]:
    service.queue(name)
    act = ACTIONS[action]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(job_id: str) -> BulkOutcome:
        async with gate:
            try:
                await act(service, name, job_id)
            except AppError as exc:
                return BulkOutcome(id=job_id, ok=False, code=str(exc.code), error=exc.message)
        return BulkOutcome(id=job_id, ok=True)

    unique = list(dict.fromkeys(ids))  # the same id twice would fail its second time
    return list(await asyncio.gather(*(one(i) for i in unique)))
