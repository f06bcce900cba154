"""The one place for error codes, the error envelope and the handlers that produce it.

Every failure a client can see leaves here as
`{"success": false, "error", "code", "timestamp", "path"}`; stack traces stay in the logs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import BusyLoadingError, OutOfMemoryError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_response(
    path: str, code: ErrorCode, message: str, details: Any = None, headers: dict | None = None
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


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Keep location and message; drop `input`/`ctx`, which may echo large or secret values.
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err["type"],
        }
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_response(
            request.url.path, exc.code, exc.message, exc.details, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:]) or "body"
        message = f"Invalid request: {where}: {first['msg']}"
        return error_response(request.url.path, ErrorCode.VALIDATION_ERROR, message, details)

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
        log.warning("Redis unavailable on %s: %s", request.url.path, exc)
        return error_response(
            request.url.path,
            ErrorCode.REDIS_CONNECTION_ERROR,
            "Redis is unavailable; retry later",
            headers={"Retry-After": "1"},
        )

    for exc_type in (RedisConnectionError, RedisTimeoutError, BusyLoadingError):
        app.add_exception_handler(exc_type, _redis_down)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this from its outermost layer, inside our RequestLog: name the request.
        request_id = getattr(request.state, "request_id", None)
        log.exception(
            "Unhandled error on %s %s",
            request.method,
            request.url.path,
            extra={"request_id": request_id} if request_id else None,
        )
        return error_response(request.url.path, ErrorCode.INTERNAL_ERROR, "Internal server error")
