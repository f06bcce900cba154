"""The `webhook` queue: POST a signed JSON payload to a receiver.

Receivers check `X-KK-Signature: sha256=<hex>`, an HMAC-SHA256 over
`"<X-KK-Timestamp>.<raw body>"`, with `verify()` (or its equivalent) and de-duplicate
retries by `Idempotency-Key`, which stays the same for every attempt of a job.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kk.files import create_exclusive
from kk.processors.base import JobContext, ProcessorSpec, validate_job_data
from kk.processors.job_log import note, progress
from kk.processors.net_guard import (
    BlockedURLError,
    ResponseTooLargeError,
    TooManyRedirectsError,
    blocked_reason,
)

if TYPE_CHECKING:
    from bullmq import Job

    from kk.config import Settings

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "kk-backend-webhook/1"
RETRYABLE_STATUSES = {408, 425, 429}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_EVENT = re.compile(r"^[A-Za-z0-9._:-]+$")
# Set by the service; a caller overriding them would break signing, framing or routing.
_RESERVED = {"host", "content-length", "content-type", "idempotency-key",
             "transfer-encoding", "connection"}  # fmt: skip


def literal_address_refusal(url: str, allow: list[str]) -> str | None:
    """Why a URL whose host is an IP address can never pass the SSRF guard, else None.
    Host names are resolved (and checked) only when the job runs."""
    host = (urlsplit(url).hostname or "").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    reason = blocked_reason(ip)
    if reason is None:
        return None
    for entry in allow:
        try:
            network = ipaddress.ip_network(entry.strip().strip("[]"), strict=False)
            if network.version == ip.version and ip in network:
                return None
        except (ValueError, TypeError):
            continue  # a host name entry: it cannot match an address literal
    return f"{reason}; deliveries to it are refused unless KK_SSRF_ALLOW lists it"


class WebhookDeliveryError(RuntimeError):
    """A delivery that may succeed later; BullMQ retries it with backoff."""


class WebhookJobData(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # a misspelt field must not be silently dropped
        json_schema_extra={
            "examples": [
                {"url": "https://example.com/hooks/orders", "event": "order.created",
                 "payload": {"orderId": 42, "total": 19.9}}
            ]
        },
    )  # fmt: skip
    url: str = Field(max_length=2048)
    payload: dict[str, Any] | list[Any] = Field(default_factory=dict)
    event: str = Field("event", min_length=1, max_length=100)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http(s) URL with a host")
        return value

    def refusals(self, settings: Settings) -> list[tuple[tuple[str, ...], str]]:
        """Refused when added, not when run: a literal private, loopback or link-local
        address that KK_SSRF_ALLOW does not cover can never be delivered to."""
        reason = literal_address_refusal(self.url, settings.ssrf_allow)
        return [(("url",), reason)] if reason else []

    @field_validator("event")
    @classmethod
    def _event_name(cls, value: str) -> str:
        if not _EVENT.match(value):
            raise ValueError("event may only contain letters, digits and . _ : -")
        return value

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            lowered = name.lower()
            if not _TOKEN.match(name):
                raise ValueError(f"'{name}' is not a valid header name")
            if lowered in _RESERVED or lowered.startswith("x-kk-"):
                raise ValueError(f"header '{name}' is set by the service and cannot be given")
            if any(c in header_value for c in "\r\n\x00"):
                raise ValueError(f"header '{name}' contains a line break")
        return value


# The generated secret of each data dir, once read: it changes only when its file is
# deleted, and a process started after that reads the new one.
_SECRETS: dict[Path, str] = {}


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else one generated on first use and kept in the data dir so
    it survives restarts and is shared by every process using that dir."""
    if settings.webhook_secret:
        return settings.webhook_secret
    path = settings.data_dir / "webhook.secret"
    if not path.exists():
        create_exclusive(path, secrets.token_hex(32).encode(), mode=0o600)
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty; delete it to generate a new secret")
    return secret


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"`."""
    message = f"{timestamp}.".encode() + _as_bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature_header: str,
    tolerance_s: int = 300,
) -> bool:
    """True if `signature_header` ("sha256=<hex>") signs this body and timestamp, and the
    timestamp is within `tolerance_s` of now (a captured request cannot be replayed later)."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - sent_at) > tolerance_s:
        return False
    scheme, _, given = signature_header.strip().partition("=")
    if scheme != "sha256":
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), given.strip().lower())


def build_request(
    job_id: str | None, attempt: int, data: WebhookJobData, secret: str
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) for one delivery attempt; the service's headers win over the job's."""
    body = json.dumps(data.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    ours = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-KK-Event": data.event,
        "X-KK-Timestamp": str(timestamp),
        "X-KK-Signature": f"sha256={sign(secret, timestamp, body)}",
        "X-KK-Delivery-Attempt": str(attempt),
        "Idempotency-Key": f"webhook-{job_id}",
    }
    taken = {name.lower() for name in ours}
    extra = {name: value for name, value in data.headers.items() if name.lower() not in taken}
    return body, {**extra, **ours}


async def process_webhook(job: Job, ctx: JobContext) -> dict[str, Any]:
    data = validate_job_data(WebhookJobData, job.data)
    settings = ctx.settings
    attempt = job.attemptsMade + 1
    secret = settings.webhook_secret or _SECRETS.get(settings.data_dir)
    if secret is None:  # read (or made) once per process: not a thread hop per delivery
        secret = _SECRETS[settings.data_dir] = await asyncio.to_thread(webhook_secret, settings)
    body, headers = build_request(job.id, attempt, data, secret)
    # Without query or credentials: a token in the URL has no business in a log.
    parts = urlsplit(data.url)
    shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
    started = time.perf_counter()
    try:
        status, final_url = await _deliver(data, ctx, body, headers)
    except Exception as exc:
        ms = (time.perf_counter() - started) * 1000
        await note(job, f"attempt {attempt}: POST {shown} failed after {ms:.0f} ms: {exc}")
        raise
    ms = (time.perf_counter() - started) * 1000
    await note(job, f"attempt {attempt}: POST {shown} answered {status} in {ms:.0f} ms")
    if 200 <= status < 300:
        await progress(job, 100)
        return {"status": status, "url": final_url, "attempt": attempt}
    if status in RETRYABLE_STATUSES or status >= 500:
        raise WebhookDeliveryError(f"receiver answered {status}")
    raise UnrecoverableError(f"receiver answered {status}; not retried")


async def _deliver(
    data: WebhookJobData, ctx: JobContext, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    """(status, final URL) of one POST; errors mapped to retry or fail-for-good."""
    try:
        result = await ctx.http.fetch(
            data.url,
            timeout_s=ctx.settings.webhook_timeout_s,
            max_bytes=MAX_RESPONSE_BYTES,
            method="POST",
            content=body,
            headers=headers,
        )
    except BlockedURLError as exc:
        raise UnrecoverableError(f"refused: {exc}") from None
    except TooManyRedirectsError as exc:
        raise UnrecoverableError(str(exc)) from None
    except ResponseTooLargeError as exc:
        # The receiver answered; only its (ignored) body was too long.
        return exc.status, data.url
    except (OSError, TimeoutError) as exc:  # FetchError is an OSError
        why = str(exc) or ("no answer in time" if isinstance(exc, TimeoutError) else repr(exc))
        raise WebhookDeliveryError(f"delivery failed: {why}") from exc
    return result.status, result.final_url


SPEC = ProcessorSpec(process=process_webhook, payload=WebhookJobData, default_job_name="deliver")
