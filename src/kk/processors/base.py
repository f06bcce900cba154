"""What a processor is: an async function of a BullMQ job and a context.

Processors live apart from the HTTP layer; they only see the job and what the context
gives them. A user registers one of their own with a queue's `processor` setting
("package.module:function") and, optionally, a pydantic `payload` model that validates the
job data when it is added through the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from pydantic import BaseModel, ValidationError

from kk.errors import field_errors, summary
from kk.processors.net_guard import GuardedHttp

if TYPE_CHECKING:
    from bullmq import Job
    from redis.asyncio import Redis

    from kk.config import Settings
    from kk.queues.service import QueueService


M = TypeVar("M", bound=BaseModel)


def validate_job_data(model: type[M], data: Any) -> M:
    """Bad job data never gets better on retry, so it fails the job for good."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = field_errors(exc.errors())
        raise UnrecoverableError(summary(details, "invalid job data", "data")) from None


@dataclass
class JobContext:
    """What every job of a worker process shares; `aclose()` when the workers have stopped."""

    settings: Settings
    redis: Redis
    queues: QueueService
    _http: GuardedHttp | None = field(default=None, init=False, repr=False)

    @property
    def http(self) -> GuardedHttp:
        """The process's SSRF-guarded HTTP client, made on first use (inside the workers'
        event loop): one pool and SSL context for every job instead of one per request."""
        if self._http is None or self._http.closed:
            self._http = GuardedHttp(self.settings.ssrf_allow)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


Processor = Callable[["Job", JobContext], Awaitable[Any]]


@dataclass(frozen=True)
class ProcessorSpec:
    process: Processor
    payload: type[BaseModel] | None = None
    # The job name used when a client adds without naming one.
    default_job_name: str = "job"
