"""The one place for error codes, the error envelope and the handlers that produce it.

Every failure a client can see leaves here as
`{"success": false, "error", "code", "timestamp", "path"}`; stack traces stay in the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kk.text import printable
from kk.times import utc_now_iso

log = logging.getLogger("kk.errors")


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    INVALID_QUEUE_NAME = "INVALID_QUEUE_NAME"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    QUEUE_NOT_FOUND = "QUEUE_NOT_FOUND"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    CACHE_KEY_NOT_FOUND = "CACHE_KEY_NOT_FOUND"
    SCHEDULE_NOT_FOUND = "SCHEDULE_NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    MISDIRECTED_REQUEST = "MISDIRECTED_REQUEST"  # a Host name this service does not serve
    JOB_NOT_RETRYABLE = "JOB_NOT_RETRYABLE"
    JOB_CONFLICT = "JOB_CONFLICT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    CACHE_OPERATION_FAILED = "CACHE_OPERATION_FAILED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    REDIS_CONNECTION_ERROR = "REDIS_CONNECTION_ERROR"
    DATABASE_CONNECTION_ERROR = "DATABASE_CONNECTION_ERROR"
    REDIS_OUT_OF_MEMORY = "REDIS_OUT_OF_MEMORY"


STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 400,
    ErrorCode.INVALID_QUEUE_NAME: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.QUEUE_NOT_FOUND: 404,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.USER_NOT_FOUND: 404,
    ErrorCode.CACHE_KEY_NOT_FOUND: 404,
    ErrorCode.SCHEDULE_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.MISDIRECTED_REQUEST: 421,
    ErrorCode.JOB_NOT_RETRYABLE: 409,
    ErrorCode.JOB_CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CACHE_OPERATION_FAILED: 500,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.REDIS_CONNECTION_ERROR: 503,
    ErrorCode.DATABASE_CONNECTION_ERROR: 503,
    ErrorCode.REDIS_OUT_OF_MEMORY: 507,
}


class AppError(Exception):
    """An error meant for the client: its code decides the HTTP status."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers  # e.g. Retry-After on RATE_LIMITED

    @property
    def status(self) -> int:
        return STATUS_OF[self.code]


def error_response(
    path: str,
    code: ErrorCode,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "success": False,
        "error": message,
        "code": code.value,
        "timestamp": utc_now_iso(),
        "path": path,
    }
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=STATUS_OF[code], headers=headers)


_HTTP_STATUS_CODES = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
}


def field_path(loc: Iterable[str | int], prefix: str = "") -> str:
    """A pydantic location as a form names the field: `jobs[2].data.url`."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def field_errors(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> list[dict[str, str]]:
    """The one formatter of pydantic errors: `{field, message, type}` each, the field under
    `prefix` (e.g. `jobs[2].data`). `input` and `ctx` are dropped: they may echo large or
    secret values."""
    return [
        {
            "field": field_path(err.get("loc", ()), prefix),
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]


def summary(details: list[dict[str, str]], what: str, root: str = "body") -> str:
    """One line naming the first field, e.g. `Invalid request: options.delay: ...`; `root`
    names an error about the whole input."""
    if not details:
        return f"{what}: invalid"
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{what}: {first['field'] or root}: {first['message']}{more}"


_REQUEST_PARTS = ("body", "query", "path", "header", "cookie")


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _part(err: Mapping[str, Any]) -> Any:
    """Which part of the request an error of FastAPI's is about: body, query, path..."""
    loc = err.get("loc") or ("",)
    return loc[0]


def _line_column(doc: Any, pos: int) -> tuple[int, int]:
    text = doc if isinstance(doc, str) else ""
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's request validation errors, said the way a client can act on them."""
    errors = exc.errors()
    path = request.url.path
    has_body_error = any(_part(e) == "body" for e in errors)
    content_type = request.headers.get("content-type")
    sent_other = content_type is not None or bool(exc.body)  # a body FastAPI did not parse
    if has_body_error and sent_other and not _is_json(content_type):
        media_type = (content_type or "no content type").split(";", 1)[0].strip()
        message = f"Send the body as application/json (got {media_type})"
        return error_response(path, ErrorCode.UNSUPPORTED_MEDIA_TYPE, message)
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        line, column = _line_column(exc.body, int(broken["loc"][-1]))
        reason = (broken.get("ctx") or {}).get("error", "")
        text = f"the body is not valid JSON (line {line}, column {column})"
        text += f": {reason}" if reason else ""
        details = [{"field": "", "message": text, "type": "json_invalid"}]
        return error_response(path, ErrorCode.VALIDATION_ERROR, f"Invalid request: {text}", details)
    # `body.options.delay` reads as `options.delay`, `query.start` as `start`.
    located = [{**e, "loc": e["loc"][1:]} if _part(e) in _REQUEST_PARTS else e for e in errors]
    details = field_errors(located)
    return error_response(
        path, ErrorCode.VALIDATION_ERROR, summary(details, "Invalid request"), details
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_response(
            request.url.path, exc.code, exc.message, exc.details, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_STATUS_CODES.get(exc.status_code)
        if code is None:
            code = ErrorCode.VALIDATION_ERROR if exc.status_code < 500 else ErrorCode.INTERNAL_ERROR
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route for {request.method} {request.url.path}"
        return error_response(request.url.path, code, message, headers=exc.headers)

    @app.exception_handler(OutOfMemoryError)
    async def _redis_oom(request: Request, exc: OutOfMemoryError) -> JSONResponse:
        log.error("Redis is out of memory: %s", exc)
        return error_response(
            request.url.path,
            ErrorCode.REDIS_OUT_OF_MEMORY,
            "Redis is out of memory; nothing was written. Retry later.",
        )

    async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
        # Said without the exception's text: redis-py's names hosts and ports.
        log.warning("Redis unavailable on %s: %s", printable(request.url.path), exc)
        if isinstance(exc, RedisTimeoutError):
            message = "Redis did not answer in time; retry later"
        else:
            message = "Redis is unavailable; retry later"
        return error_response(
            request.url.path,
            ErrorCode.REDIS_CONNECTION_ERROR,
            message,
            headers={"Retry-After": "1"},
        )

    # ReadOnlyError: a replica answered (the master changed over): retrying finds the new one.
    for exc_type in (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ReadOnlyError):
        app.add_exception_handler(exc_type, _redis_down)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this from its outermost layer, inside our RequestLog: name the request.
        request_id = getattr(request.state, "request_id", None)
        log.exception(
            "Unhandled error on %s %s",
            printable(request.method),
            printable(request.url.path),
            extra={"request_id": request_id} if request_id else None,
        )
        return error_response(request.url.path, ErrorCode.INTERNAL_ERROR, "Internal server error")
