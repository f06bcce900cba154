"""Which processor runs a queue: the queue's configured one, else the built-in of its name."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from pydantic import BaseModel

from kk.processors.base import ProcessorSpec


def _builtins() -> dict[str, ProcessorSpec]:
    specs: dict[str, ProcessorSpec] = {}
    for queue, module in (("email", "email"), ("image-processing", "image"),
                          ("cleanup", "cleanup"), ("webhook", "webhook")):  # fmt: skip
        try:
            specs[queue] = importlib.import_module(f"kk.processors.{module}").SPEC
        except ImportError:
            continue
    return specs


def _load(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"'{path}' is not of the form 'package.module:name'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"'{module_name}' has no attribute '{attr}'") from None


def resolve_processor(
    queue_name: str, processor_path: str | None, payload_path: str | None
) -> ProcessorSpec | None:
    if processor_path:
        process = _load(processor_path)
        if not inspect.iscoroutinefunction(process):
            raise ValueError(f"Processor '{processor_path}' must be an async function")
        payload = _load(payload_path) if payload_path else None
        if payload is not None and not (
            isinstance(payload, type) and issubclass(payload, BaseModel)
        ):
            raise ValueError(f"Payload '{payload_path}' must be a pydantic model")
        return ProcessorSpec(process=process, payload=payload, default_job_name="job")
    return _builtins().get(queue_name)
