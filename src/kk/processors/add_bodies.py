"""Add bodies of the built-in queues, typed by their job data models.

The generic `POST /api/queues/{queueName}/jobs` takes any JSON object as `data` and checks
it against the queue's model when it runs; these bodies exist so that each built-in queue
has its own documented add route, with a named schema (`CleanupJobData`, ...) and an
example that works as pasted into /docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from kk.json_text import shallow
from kk.processors.cleanup import CleanupJobData
from kk.processors.image import ImageJobData
from kk.processors.webhook import WebhookJobData
from kk.queues.schemas import JobName, JobOptions


@dataclass(frozen=True)
class BuiltinAdd:
    queue: str
    body: type[BaseModel]
    example: dict[str, Any]
    summary: str


def _example(model: type[BaseModel]) -> dict[str, Any]:
    # Every job data model sets `json_schema_extra` to a dict with its examples.
    extra = cast(dict[str, Any], model.model_config["json_schema_extra"])
    return extra["examples"][0]


def _body(queue: str, model: type[BaseModel], summary: str, optional: bool) -> BuiltinAdd:
    data: Any = Annotated[model, BeforeValidator(shallow)]
    default = Field(default_factory=model) if optional else ...
    body = create_model(
        "Add" + "".join(part.title() for part in queue.split("-")) + "Job",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"A job for the `{queue}` queue: its data and, optionally, a name and options.",
        __module__=__name__,
        name=(JobName | None, None),
        data=(data, default),
        options=(JobOptions | None, None),
    )
    return BuiltinAdd(queue, body, {"data": _example(model)}, summary)


BUILTIN_ADDS = [
    _body("cleanup", CleanupJobData, "Add a cleanup job (temp files, finished jobs)", True),
    _body("image-processing", ImageJobData, "Add an image job (resize, thumbnail, convert)", False),
    _body("webhook", WebhookJobData, "Add a webhook delivery (signed POST)", False),
]
