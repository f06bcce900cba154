"""The `email` queue: render a template and send it over SMTP, or drop it in the outbox.

Without `smtp_url` messages are written as .eml files to `<data_dir>/outbox`, so the
service works (and can be checked) without a mail server.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from jinja2 import FileSystemLoader, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from kk.files import shown_path, write_atomic
from kk.processors.base import JobContext, ProcessorSpec, validate_job_data
from kk.processors.job_log import note, progress

if TYPE_CHECKING:
    from bullmq import Job

    from kk.config import Settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
SMTP_TIMEOUT_S = 30.0
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


def available_templates() -> list[str]:
    """Names with both a text and an HTML template; `_`-prefixed files are partials."""
    html = {p.name.removesuffix(".html.j2") for p in TEMPLATES_DIR.glob("*.html.j2")}
    text = {p.name.removesuffix(".txt.j2") for p in TEMPLATES_DIR.glob("*.txt.j2")}
    return sorted(n for n in html & text if not n.startswith("_"))


@cache
def _variables() -> dict[str, Any]:
    """What each template says it needs (`templates/variables.json`)."""
    return json.loads((TEMPLATES_DIR / "variables.json").read_text())


def template_variables(template: str) -> tuple[dict[str, str], dict[str, str]]:
    """(required, optional) variables of a template, name -> what it is for."""
    entry = _variables().get(template, {})
    return dict(entry.get("required", {})), dict(entry.get("optional", {}))


def template_catalog() -> list[dict[str, Any]]:
    """Every template with its variables, as `GET /api/queues/email/templates` lists them."""
    catalog = []
    for name in available_templates():
        required, optional = template_variables(name)
        catalog.append(
            {
                "name": name,
                "description": _variables().get(name, {}).get("description", ""),
                "required": [{"name": k, "description": v} for k, v in required.items()],
                "optional": [{"name": k, "description": v} for k, v in optional.items()],
            }
        )
    return catalog


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class EmailJobData(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # a misspelt field must not be silently dropped
        json_schema_extra={
            "examples": [
                {"to": "ada@example.com", "subject": "Welcome!", "template": "welcome",
                 "data": {"username": "Ada",
                          "activationLink": "https://example.com/activate?token=abc"}}
            ]
        },
    )  # fmt: skip
    type: Literal["send-email"] = "send-email"
    to: EmailStr
    subject: str = Field(min_length=1, max_length=300)
    template: str
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("subject")
    @classmethod
    def _single_line(cls, value: str) -> str:
        # CR/LF would let a client inject headers (Bcc: ...) into the message.
        if _CONTROL.search(value):
            raise ValueError("subject must be one line without control characters")
        return value

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        names = available_templates()
        if value not in names:
            raise ValueError(f"unknown template '{value}'; available: {', '.join(names)}")
        return value

    @field_validator("data")
    @classmethod
    def _required_variables(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # A missing variable would render empty: a welcome mail without its activation link.
        template = info.data.get("template")
        if template is None:
            return value  # the template itself was refused
        required, _ = template_variables(template)
        missing = [name for name in required if _blank(value.get(name))]
        if missing:
            error = PydanticCustomError(
                "missing_variable",
                "template '{template}' needs this variable",
                {"template": template},
            )
            raise ValidationError.from_exception_data(
                cls.__name__, [{"type": error, "loc": (name,), "input": value} for name in missing]
            )
        return value


def _link(value: Any) -> str:
    """Only http(s) and mailto links become buttons: escaping alone would let a
    `javascript:` URL from job data through into an href."""
    url = str(value or "").strip()
    return url if url.lower().startswith(("https://", "http://", "mailto:")) else ""


@cache
def _environment() -> SandboxedEnvironment:
    # Sandboxed although the templates are ours: a mistake in one must not reach Python
    # internals. Data values are never compiled as templates, only inserted (escaped in HTML).
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["link"] = _link
    return env


def render_email(template: str, data: dict[str, Any]) -> tuple[str, str]:
    """(text, html) of a template; missing variables render empty."""
    env = _environment()
    text = env.get_template(f"{template}.txt.j2").render(data)
    html = env.get_template(f"{template}.html.j2").render(data)
    return text, html


def message_id(job_id: str | None) -> str:
    # Derived from the job id so every retry of a job sends the same Message-ID and
    # receivers can spot a duplicate delivery.
    return f"<kk-email-{_UNSAFE_ID.sub('_', str(job_id))}@kk.local>"


def build_message(settings: Settings, job_id: str | None, data: EmailJobData) -> EmailMessage:
    text, html = render_email(data.template, data.data)
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = str(data.to)
    msg["Subject"] = data.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(job_id)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def _smtp_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise UnrecoverableError(
            "smtp_url must look like smtp://[user:pass@]host:port[?starttls=true] or smtps://..."
        )
    implicit_tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["false"])[-1].lower() in ("1", "true", "yes")
    return {
        "hostname": parts.hostname,
        "port": parts.port or (465 if implicit_tls else 587 if starttls else 25),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_tls": implicit_tls,
        # False, not None: a plain smtp:// URL must not silently try STARTTLS.
        "start_tls": starttls and not implicit_tls,
        "timeout": SMTP_TIMEOUT_S,
    }


async def _send_smtp(msg: EmailMessage, smtp_url: str) -> str:
    """The server's answer to the message ("250 ...")."""
    try:
        _, response = await aiosmtplib.send(msg, **_smtp_options(smtp_url))
    except aiosmtplib.SMTPRecipientsRefused as exc:
        if all(500 <= r.code < 600 for r in exc.recipients):
            raise UnrecoverableError(f"recipient refused: {exc.recipients[0].message}") from exc
        raise
    except aiosmtplib.SMTPResponseException as exc:
        # 5xx is a permanent refusal (bad address, auth); 4xx is worth another attempt.
        if 500 <= exc.code < 600:
            raise UnrecoverableError(f"SMTP server refused: {exc.code} {exc.message}") from exc
        raise
    return " ".join(str(response).split())[:200]


def _write_outbox(outbox: Path, job_id: str | None, msg: EmailMessage) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = outbox / f"{stamp}-{_UNSAFE_ID.sub('_', str(job_id))}.eml"
    # A message may hold a password-reset link: for this service's user only.
    write_atomic(path, msg.as_bytes(policy=email.policy.SMTP), mode=0o600)
    return path


async def process_email(job: Job, ctx: JobContext) -> dict[str, Any]:
    data = validate_job_data(EmailJobData, job.data)
    msg = build_message(ctx.settings, job.id, data)
    await note(job, f"template '{data.template}' rendered for {data.to}")
    path: Path | None = None
    if ctx.settings.smtp_url:
        answer = await _send_smtp(msg, ctx.settings.smtp_url)
        await note(job, f"SMTP accepted message {msg['Message-ID']}: {answer}")
    else:
        path = await asyncio.to_thread(_write_outbox, ctx.settings.outbox_dir, job.id, msg)
        shown = shown_path(path, ctx.settings.data_dir)
        await note(job, f"outbox file {shown} written (message {msg['Message-ID']})")
    await progress(job, 100)
    return {
        "messageId": msg["Message-ID"],
        "to": str(data.to),
        "template": data.template,
        "transport": "smtp" if path is None else "outbox",
        # Relative to the data dir ("outbox/....eml"): readers need not see server paths.
        "path": shown_path(path, ctx.settings.data_dir) if path else None,
    }


SPEC = ProcessorSpec(process=process_email, payload=EmailJobData, default_job_name="send-email")
