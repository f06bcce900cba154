"""/api/queue-dashboard/queues/{queueName}/form: what the dashboard's "add job" form is
built from, the JSON Schema of the queue's job data model (a built-in queue's own, or the
operator's configured `payload`), the default job name and an example.

The form posts to the real add route (`POST /api/queues/{queueName}/jobs`), so the data is
judged there exactly as any client's; this route only describes it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from pydantic.errors import PydanticInvalidForJsonSchema

from kk.dashboard.schemas import JobForm
from kk.queues.router import CheckedQueue, Service
from kk.schemas import Envelope
from kk.security.access import require_read

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/queue-dashboard", tags=["queue-dashboard"])

# Queues whose add route takes the data's fields at the top level (`{to, subject, ...,
# options}`), not `{name, data, options}`: the email route (`kk.processors.add_routes`).
FIELDS_BODY = frozenset({"email"})


def data_schema(model: type[BaseModel] | None) -> dict[str, Any] | None:
    """The model's JSON Schema as a client sends the data; None (a plain JSON form) when
    there is no model or pydantic cannot describe one of its types."""
    if model is None:
        return None
    try:
        return model.model_json_schema(mode="validation")
    except PydanticInvalidForJsonSchema as exc:
        log.warning("No JSON Schema for %s: %s", model.__name__, exc)
        return None


def first_example(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The first of the model's `examples` (`json_schema_extra`), when it is an object."""
    examples = (schema or {}).get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], dict):
        return examples[0]
    return None


@router.get("/queues/{queueName}/form", dependencies=[Depends(require_read)])
async def get_job_form(queueName: CheckedQueue, service: Service) -> Envelope[JobForm]:
    """The queue's job data model as JSON Schema (null when the queue takes any JSON
    object), the job name used when the form gives none, and an example of the data."""
    schema = data_schema(service.data_model(queueName))
    form = JobForm(
        queue=queueName,
        dataSchema=schema,
        defaultJobName=service.default_job_name(queueName),
        example=first_example(schema),
        body="fields" if queueName in FIELDS_BODY else "job",
    )
    return Envelope(data=form)
