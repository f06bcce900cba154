"""The built-in queues' own add routes, each documented with its queue's data model:
`POST /api/queues/{email,cleanup,image-processing,webhook}/jobs` and the email templates.

They sit above `kk.queues` because the models are the processors' (the webhook model checks
URLs with the processor's network guard). The app includes this router before the generic
`/api/queues/{queueName}/jobs`, so these literal paths win; the add fast lane serves the
routes marked `FAST_LANE` (same dependencies, same `add_one`) and leaves the others here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.openapi.models import Example

from kk.processors.add_bodies import BUILTIN_ADDS, BuiltinAdd
from kk.processors.email import EmailJobData, template_catalog
from kk.queues.router import Service, add_one, add_result, get_queue_service
from kk.queues.schemas import AddEmailJob, AddJob, AddJobResult, EmailTemplate
from kk.schemas import Envelope
from kk.security.access import require_admin, require_read

router = APIRouter(prefix="/api/queues", tags=["queues"])
# Endpoints the fast lane may answer in the route's place (`kk.queues.hot_add`).
FAST_LANE: set[Any] = set()


_EMAIL_EXAMPLE = {
    "default": {
        "summary": "works as pasted",
        "value": EmailJobData.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
    }
}


@router.get("/email/templates", dependencies=[Depends(require_read)])
async def email_templates(service: Service) -> Envelope[list[EmailTemplate]]:
    service.queue("email")
    return Envelope(data=[EmailTemplate(**entry) for entry in template_catalog()])


@router.post(
    "/email/jobs",
    status_code=201,
    dependencies=[Depends(require_admin)],
    responses={200: {"description": "`options.jobId` named an existing job (`duplicate`)"}},
)
async def add_email_job(
    body: Annotated[AddEmailJob, Body(openapi_examples=_EMAIL_EXAMPLE)],
    service: Service,
    response: Response,
) -> AddJobResult:
    # The body is the job data: its errors name `data.activationLink`, not `data.data...`.
    fields = body.model_dump(mode="json", exclude={"options"})
    data = service.validate_payload("email", fields, "")
    added = await service.add("email", body.type, data, body.options)
    result = add_result(added, "Email job added to the queue")
    response.status_code = result.status_code
    return result


def _builtin_add_route(spec: BuiltinAdd) -> None:
    """`POST /api/queues/<queue>/jobs` documented with the queue's own data model. The fast
    lane answers well-formed adds before routing, through `add_one` like the generic route
    (the queue's model checks the data there too); this route answers the rest with errors
    that name the model's fields."""
    queue = spec.queue

    async def registered(request: Request) -> None:
        # An unconfigured queue is a 404 before the body is judged. It takes the request
        # alone, as the fast lane calls the route's dependencies.
        (await get_queue_service(request)).queue(queue)

    async def endpoint(body: Any, service: Service, response: Response) -> AddJobResult:
        data = body.data.model_dump(mode="json", exclude_unset=True)
        plain = AddJob(name=body.name, data=data, options=body.options)
        result = await add_one(service, queue, plain)
        response.status_code = result.status_code
        return result

    example: dict[str, Example] = {"default": {"summary": "works as pasted", "value": spec.example}}
    endpoint.__annotations__ = {
        "body": Annotated[spec.body, Body(openapi_examples=example)],
        "service": Service,
        "response": Response,
        "return": AddJobResult,
    }
    endpoint.__name__ = f"add_{queue.replace('-', '_')}_job"
    FAST_LANE.add(endpoint)
    router.add_api_route(
        f"/{queue}/jobs",
        endpoint,
        methods=["POST"],
        status_code=201,
        summary=spec.summary,
        dependencies=[Depends(require_admin), Depends(registered)],
        responses={200: {"description": "`options.jobId` named an existing job (`duplicate`)"}},
    )


for _spec in BUILTIN_ADDS:
    _builtin_add_route(_spec)
