"""Which processor runs a queue: the queue's configured one, else the built-in of its name."""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

from pydantic import BaseModel, ConfigDict

from kk.processors import cleanup, email, image, webhook
from kk.processors.base import JobContext, Processor, ProcessorSpec, validate_job_data

BUILTIN_PROCESSORS: dict[str, ProcessorSpec] = {
    "email": email.SPEC,
    "image-processing": image.SPEC,
    "cleanup": cleanup.SPEC,
    "webhook": webhook.SPEC,
}


def _load(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"'{path}' is not of the form 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import '{module_name}' for '{path}': {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"'{module_name}' has no attribute '{attr}'") from None


def strict(payload: type[BaseModel]) -> type[BaseModel]:
    """The operator's payload model refusing unknown fields, as the built-in ones do: a
    misspelt field must not be dropped silently. Same name, so errors and docs read alike."""
    if payload.model_config.get("extra") == "forbid":
        return payload
    namespace = {"model_config": ConfigDict(extra="forbid"), "__module__": payload.__module__}
    return types.new_class(payload.__name__, (payload,), exec_body=lambda ns: ns.update(namespace))


def validating(process: Processor, payload: type[BaseModel]) -> Processor:
    """Check job data other producers wrote before the operator's processor sees it: bad
    data fails the job for good, naming the field."""

    async def run(job: Any, ctx: JobContext) -> Any:
        validate_job_data(payload, job.data)
        return await process(job, ctx)

    run.__name__ = getattr(process, "__name__", "process")
    return run


def resolve_processor(
    queue_name: str, processor_path: str | None, payload_path: str | None
) -> ProcessorSpec | None:
    """The configured processor (and payload model) if given, else the built-in for the
    queue's name, else None: this process runs no worker for that queue."""
    payload = _load(payload_path) if payload_path else None
    if payload is not None and not (isinstance(payload, type) and issubclass(payload, BaseModel)):
        raise ValueError(f"Payload '{payload_path}' must be a pydantic BaseModel subclass")
    if payload is not None:
        payload = strict(payload)
    if processor_path:
        process = _load(processor_path)
        if not inspect.iscoroutinefunction(process):
            raise ValueError(f"Processor '{processor_path}' must be an async function")
        if payload is not None:
            process = validating(process, payload)
        return ProcessorSpec(process=process, payload=payload, default_job_name="job")
    builtin = BUILTIN_PROCESSORS.get(queue_name)
    if builtin is not None and payload is not None:
        # A stricter model of the operator's own for a built-in queue.
        process = validating(builtin.process, payload)
        return ProcessorSpec(process, payload, builtin.default_job_name)
    return builtin
