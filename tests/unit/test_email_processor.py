from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from pydantic import ValidationError

from kk.config import Settings
from kk.processors.base import JobContext
from kk.processors.email import (
    EmailJobData,
    available_templates,
    process_email,
    render_email,
)

TEMPLATE_DATA: dict[str, dict[str, Any]] = {
    "welcome": {"username": "<script>alert(1)</script>", "activationLink": "https://e.com/a/1"},
    "password-reset": {
        "username": "<script>alert(1)</script>",
        "resetLink": "https://e.com/r/1",
        "expiresInMinutes": 15,
    },
    "notification": {
        "username": "<script>alert(1)</script>",
        "title": "Build finished",
        "body": "All green.\n\nSee the report.",
        "actionUrl": "https://e.com/builds/7",
    },
}


def context(settings: Settings) -> JobContext:
    return JobContext(settings=settings, redis=None, queues=None)  # type: ignore[arg-type]


def job(job_id: str, data: dict[str, Any]) -> Any:
    return SimpleNamespace(id=job_id, name="send-email", data=data, attemptsMade=0)


def test_the_three_templates_are_available() -> None:
    assert set(available_templates()) >= {"welcome", "password-reset", "notification"}
    assert not any(name.startswith("_") for name in available_templates())


@pytest.mark.parametrize("template", sorted(TEMPLATE_DATA))
def test_templates_render_and_escape_html(template: str) -> None:
    data = TEMPLATE_DATA[template]
    text, html = render_email(template, data)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" in text, "plain text is not HTML-escaped"
    for value in data.values():
        if isinstance(value, str) and value.startswith("https://"):
            assert value in text and value in html
    assert html.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("template", sorted(TEMPLATE_DATA))
def test_templates_render_without_any_data(template: str) -> None:
    text, html = render_email(template, {})
    assert "None" not in text and "None" not in html
    assert html.strip()


def test_data_is_inserted_not_evaluated() -> None:
    payload = "{{ ''.__class__.__mro__ }}"
    text, html = render_email("notification", {"title": payload, "body": payload})
    assert payload in text
    assert "__mro__" in html and "<class" not in html and "<class" not in text


def test_only_web_links_become_buttons() -> None:
    _, html = render_email("welcome", {"activationLink": "javascript:alert(1)"})
    assert "javascript:" not in html and "<a " not in html


def test_notification_accepts_message_instead_of_body() -> None:
    text, _ = render_email("notification", {"title": "t", "message": "from message"})
    assert "from message" in text


GOOD = {
    "to": "user@example.com",
    "subject": "Hi",
    "template": "welcome",
    "data": {"username": "Ada", "activationLink": "https://e.com/a/1"},
}


@pytest.mark.parametrize(
    "change",
    [
        {"template": "no-such-template"},
        {"template": "_layout"},
        {"to": "not-an-address"},
        {"subject": "a\r\nBcc: evil@example.com"},
        {"subject": "a\nb"},
        {"subject": ""},
        {"subject": "x" * 301},
        {"type": "other"},
    ],
)
def test_bad_payloads_are_validation_errors(change: dict[str, Any]) -> None:
    EmailJobData.model_validate(GOOD)
    with pytest.raises(ValidationError):
        EmailJobData.model_validate({**GOOD, **change})


async def test_invalid_job_data_fails_for_good(tmp_path: Path) -> None:
    with pytest.raises(UnrecoverableError, match="template"):
        await process_email(
            job("1", {**GOOD, "template": "nope"}), context(Settings(data_dir=tmp_path))
        )


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, _Collect]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", handler
    finally:
        controller.stop()


async def test_job_is_delivered_over_smtp(tmp_path: Path, smtp_server) -> None:
    url, handler = smtp_server
    settings = Settings(data_dir=tmp_path, smtp_url=url, mail_from="KK <kk@example.org>")
    data = {**GOOD, "subject": "Welcome aboard", "data": TEMPLATE_DATA["welcome"]}
    result = await process_email(job("42", data), context(settings))

    assert result == {
        "messageId": "<kk-email-42@kk.local>",
        "to": "user@example.com",
        "template": "welcome",
        "transport": "smtp",
        "path": None,
    }
    [(mail_from, rcpt_tos, raw)] = handler.messages
    assert mail_from == "kk@example.org" and rcpt_tos == ["user@example.com"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"] == "user@example.com"
    assert message["Subject"] == "Welcome aboard"
    assert message["Message-ID"] == "<kk-email-42@kk.local>"
    assert message["Date"]
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "https://e.com/a/1" in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script>" in text


async def test_without_smtp_the_message_lands_in_the_outbox(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    data = {**GOOD, "template": "password-reset", "data": TEMPLATE_DATA["password-reset"]}
    result = await process_email(job("custom/id 7", data), context(settings))

    assert result["transport"] == "outbox"
    shown = Path(result["path"])
    assert shown.parent == Path("outbox")  # relative to the data dir: no server path shown
    path = settings.data_dir / shown
    assert path.name.endswith("-custom_id_7.eml")
    assert [p.name for p in settings.outbox_dir.iterdir()] == [path.name]
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Message-ID"] == "<kk-email-custom_id_7@kk.local>"
    assert message["Subject"] == "Hi"
    assert "expires in 15 minutes" in message.get_body(("plain",)).get_content()
