from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from pydantic import ValidationError

from kk.config import Settings
from kk.processors.base import JobContext
from kk.processors.webhook import (
    WebhookDeliveryError,
    WebhookJobData,
    process_webhook,
    sign,
    verify,
    webhook_secret,
)
from tests.unit.helpers_http import Reply, local_server


def context(tmp_path: Path, **overrides: Any) -> JobContext:
    settings = Settings(data_dir=tmp_path, **overrides)
    return JobContext(settings=settings, redis=None, queues=None)  # type: ignore[arg-type]


def job(job_id: str, data: dict[str, Any], attempts_made: int = 0) -> Any:
    return SimpleNamespace(id=job_id, name="deliver", data=data, attemptsMade=attempts_made)


async def test_delivery_is_signed_and_idempotent(tmp_path: Path) -> None:
    ctx = context(tmp_path, ssrf_allow=["127.0.0.1"], webhook_secret="s3cret")
    payload = {"order": 42, "status": "paid", "items": [1, 2]}
    with local_server() as server:
        data = {"url": f"{server.url}/hooks", "payload": payload, "event": "order.paid",
                "headers": {"X-Tenant": "acme"}}  # fmt: skip
        result = await process_webhook(job("77", data, attempts_made=2), ctx)
    assert result == {"status": 200, "url": f"{server.url}/hooks", "attempt": 3}

    [request] = server.received("/hooks")
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert request.method == "POST"
    assert json.loads(request.body) == payload
    assert request.body == b'{"items":[1,2],"order":42,"status":"paid"}'
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "kk-backend-webhook/1"
    assert headers["x-kk-event"] == "order.paid"
    assert headers["idempotency-key"] == "webhook-77"
    assert headers["x-kk-delivery-attempt"] == "3"
    assert headers["x-tenant"] == "acme"
    assert verify("s3cret", headers["x-kk-timestamp"], request.body, headers["x-kk-signature"])
    assert not verify("wrong", headers["x-kk-timestamp"], request.body, headers["x-kk-signature"])
    assert not verify("s3cret", headers["x-kk-timestamp"], b"{}", headers["x-kk-signature"])


def test_verify_rejects_old_timestamps_and_other_schemes() -> None:
    now = int(time.time())
    assert verify("k", now, "body", f"sha256={sign('k', now, 'body')}")
    old = now - 3600
    assert not verify("k", old, "body", f"sha256={sign('k', old, 'body')}")
    assert verify("k", old, "body", f"sha256={sign('k', old, 'body')}", tolerance_s=7200)
    assert not verify("k", now, "body", sign("k", now, "body"))
    assert not verify("k", "not-a-number", "body", "sha256=00")


async def test_server_errors_are_retried(tmp_path: Path) -> None:
    ctx = context(tmp_path, ssrf_allow=["127.0.0.1"])
    with local_server() as server:
        for status in (500, 503, 429, 408):
            server.replies["/h"] = [Reply(status)]
            with pytest.raises(WebhookDeliveryError) as caught:
                await process_webhook(job("1", {"url": f"{server.url}/h"}), ctx)
            assert not isinstance(caught.value, UnrecoverableError)


async def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    ctx = context(tmp_path, ssrf_allow=["127.0.0.1"])
    with local_server() as server:
        server.replies["/gone"] = [Reply(404)]
        with pytest.raises(UnrecoverableError, match="404"):
            await process_webhook(job("1", {"url": f"{server.url}/gone"}), ctx)


async def test_network_errors_are_retried(tmp_path: Path) -> None:
    ctx = context(tmp_path, ssrf_allow=["127.0.0.1"])
    with local_server() as server:
        url = server.url
    # The server is closed now: connection refused.
    with pytest.raises(WebhookDeliveryError):
        await process_webhook(job("1", {"url": f"{url}/h"}), ctx)


async def test_private_address_without_allow_list_is_refused(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with local_server() as server:
        with pytest.raises(UnrecoverableError, match="refused"):
            await process_webhook(job("1", {"url": f"{server.url}/h"}), ctx)
        assert server.requests == []


def test_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = webhook_secret(settings)
    path = tmp_path / "webhook.secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(first) >= 32
    assert webhook_secret(Settings(data_dir=tmp_path)) == first
    assert webhook_secret(Settings(data_dir=tmp_path, webhook_secret="configured")) == "configured"


async def test_generated_secret_signs_deliveries(tmp_path: Path) -> None:
    ctx = context(tmp_path, ssrf_allow=["127.0.0.1"])
    with local_server() as server:
        await process_webhook(job("1", {"url": f"{server.url}/h", "payload": [1]}), ctx)
    [request] = server.requests
    secret = (tmp_path / "webhook.secret").read_text().strip()
    assert verify(secret, request.headers["X-KK-Timestamp"], request.body,
                  request.headers["X-KK-Signature"])  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [{"url": "ftp://example.com/"}, {"url": "http:///x"}, {"url": "https://e.com/" + "a" * 2048},
     {"event": "bad event"}, {"event": "x" * 101},
     {"headers": {"Host": "evil"}}, {"headers": {"content-type": "text/plain"}},
     {"headers": {"X-KK-Signature": "x"}}, {"headers": {"Idempotency-Key": "x"}},
     {"headers": {"Bad Name": "x"}}, {"headers": {"X-A": "a\r\nX-B: b"}},
     {"headers": {f"X-H{i}": "v" for i in range(21)}}, {"payload": "text"}],
)  # fmt: skip
def test_invalid_payloads(change: dict[str, Any]) -> None:
    good = {"url": "https://example.com/hook"}
    WebhookJobData.model_validate(good)
    with pytest.raises(ValidationError):
        WebhookJobData.model_validate({**good, **change})
