"""The OpenAPI document, made for typed clients: every operation has a method-like
`operationId`, schemas have names that read well in generated code (`JobListResponse`,
not `Envelope_list_JobView__`), every error answer is the contract's envelope with the
statuses an operation can really answer, and validation errors are 400, not FastAPI's 422."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

try:  # recent FastAPI nests included routers; their contexts carry the full paths
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI: routes are flat

    def iter_route_contexts(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


from kk.schemas import ErrorBody
from kk.security.access import require_admin, require_read

_REF = "#/components/schemas/"
# Endpoint names that say too little as a method name on a client.
_OPERATION_IDS = {
    "metrics": "getMetrics",
    "health": "getHealth",
    "health_redis": "getRedisHealth",
    "live": "getLiveness",
    "ready": "getReadiness",
    "all_stats": "getAllQueueStats",
    "queue_stats": "getQueueStats",
    "basic": "cacheDemoBasic",
    "protection": "cacheDemoProtection",
    "batch": "cacheDemoBatch",
    "stats": "getCacheStats",
    "list_keys": "listCacheKeys",
    "get_key": "getCacheKey",
    "put_key": "putCacheKey",
    "delete_key": "deleteCacheKey",
    "overview": "getDashboardOverview",
    "queues_health": "getQueuesHealth",
    "throughput_all": "getThroughput",
    "queue_throughput": "getQueueThroughput",
    "scheduled_jobs": "listScheduledJobs",
    "job_logs": "getJobLogs",
    "retry_failed": "retryFailedJobs",
    "email_templates": "listEmailTemplates",
    "login": "dashboardLogin",
    "logout": "dashboardLogout",
    "session": "getDashboardSession",
}
_ERRORS = {
    "400": "Invalid request (`VALIDATION_ERROR`, with `details` per field; `INVALID_QUEUE_NAME`)",
    "401": "No key, or a wrong one (`UNAUTHORIZED`)",
    "403": "The key's role may not do this, or a browser change lacks its CSRF token",
    "404": "No such queue, job, key, ... (`*_NOT_FOUND`)",
    "413": "The body or the job data is over the limit (`PAYLOAD_TOO_LARGE`)",
    "415": "The body is not application/json (`UNSUPPORTED_MEDIA_TYPE`)",
    "429": "Too many requests (`RATE_LIMITED`); see Retry-After",
    "503": "Redis or the database is unavailable; see Retry-After",
}
_AUTH = {require_read, require_admin}
_NAMED_QUEUE = re.compile(r"^/api/queues/[a-z0-9_-]+/")  # e.g. the email queue's routes


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def readable_name(name: str) -> str:
    """`Envelope_list_JobView__` -> `JobListResponse`, `Envelope_BasicDemo_` ->
    `BasicDemoResponse`, `MessageEnvelope_PutResult_` -> `PutResponse`."""
    match = re.fullmatch(r"(?:Message)?Envelope_(list_)?([A-Za-z0-9]+)_+", name)
    if match is None:
        return name
    inner = re.sub(r"(?<=.)(View|Result)$", "", match.group(2))
    return f"{inner}{'List' if match.group(1) else ''}Response"


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] in renames:
            node["$ref"] = _REF + renames[ref[len(_REF) :]]
        for value in node.values():
            _rename_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rename_refs(value, renames)
    return node


def _rename_schemas(schema: dict[str, Any]) -> None:
    schemas = schema["components"]["schemas"]
    renames: dict[str, str] = {}
    for old in list(schemas):
        new = readable_name(old)
        if new != old and new not in schemas and new not in renames.values():
            renames[old] = new
    for old, new in renames.items():
        schemas[new] = schemas.pop(old)
        schemas[new]["title"] = new
    _rename_refs(schema, renames)


def _needs_key(dependant: Dependant) -> bool:
    return any(d.call in _AUTH or _needs_key(d) for d in dependant.dependencies)


def _name_operations(app: FastAPI, schema: dict[str, Any]) -> set[tuple[str, str]]:
    """Set each operation's id from its endpoint; answer the operations that need a key."""
    seen: set[str] = set()
    secured: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        if not isinstance(getattr(route, "original_route", route), APIRoute):
            continue
        if not route.include_in_schema:
            continue
        path: str = route.path_format or ""
        path_item = schema["paths"].get(path, {})
        for method in sorted(route.methods or ()):
            operation = path_item.get(method.lower())
            if operation is None:
                continue
            name: str = getattr(route.endpoint, "__name__", "operation")
            op_id = _OPERATION_IDS.get(name) or camel_case(name)
            if op_id in seen:  # two endpoints of one name: say which router
                op_id = camel_case(f"{(route.tags or ['api'])[0]}_{name}".replace("-", "_"))
            seen.add(op_id)
            operation["operationId"] = op_id
            if _needs_key(route.dependant):
                secured.add((path, method.lower()))
    return secured


def _declare_errors(schema: dict[str, Any], secured: set[tuple[str, str]], keyed: bool) -> None:
    """`keyed`: this server has API keys, so the operations that check one require it (an
    open server's document says they are open, as they are)."""

    def error(description: str) -> dict[str, Any]:
        content = {"application/json": {"schema": {"$ref": f"{_REF}ErrorBody"}}}
        return {"description": description, "content": content}

    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses = ["400"] if operation.get("parameters") or "requestBody" in operation else []
            if (path, method) in secured:
                statuses.append("429")
                if keyed:
                    statuses += ["401", "403"]
                    operation["security"] = [{"bearerKey": []}, {"apiKeyHeader": []}]
            if "{" in path or _NAMED_QUEUE.match(path):  # an unknown queue, job, key...
                statuses.append("404")
            if "requestBody" in operation:
                statuses += ["413", "415"]
            if path.startswith("/api/"):
                statuses.append("503")
            for status in sorted(statuses):
                responses.setdefault(status, error(_ERRORS[status]))
            # Anything else (405, 409, 500, 507...) is still the envelope.
            responses.setdefault("4XX", error("Other client errors"))
            responses.setdefault("5XX", error("Server errors"))


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template=_REF + "{model}")
        schemas.update(error_schema.pop("$defs", {}))
        schemas["ErrorBody"] = error_schema
        settings = getattr(app.state, "settings", None)
        keyed = bool(settings is not None and settings.auth_enabled)
        if keyed:
            components["securitySchemes"] = {
                "bearerKey": {"type": "http", "scheme": "bearer", "description": "an API key"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        _declare_errors(schema, _name_operations(app, schema), keyed)
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        _rename_schemas(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
