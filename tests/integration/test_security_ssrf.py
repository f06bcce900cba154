"""Job data is untrusted: SSRF, path escapes and template injection driven through the HTTP
API against real `kk serve` processes (the unit tests cover the guards one by one)."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy

import httpx
import pytest
from PIL import Image

from tests.integration.helpers import add_job, wait_job
from tests.support.server import KKServer, start_server, wait_for
from tests.unit.helpers_http import LocalServer, Reply, local_server


@pytest.fixture(scope="module")
def target() -> Iterator[LocalServer]:
    """A live HTTP server on loopback: whatever reaches it is recorded."""
    with local_server() as srv:
        yield srv


def _env(server_env: dict[str, str], allow: list[str]) -> dict[str, str]:
    env = {k: v for k, v in server_env.items() if k != "KK_SMTP_URL"}  # mail goes to outbox
    env.update(KK_QUEUE_PREFIX=f"kkf-{uuid.uuid4().hex[:8]}", KK_SSRF_ALLOW=json.dumps(allow))
    return env


@pytest.fixture(scope="module")
def strict(server_env, tmp_path_factory) -> Iterator[KKServer]:
    with start_server(tmp_path_factory.mktemp("ssrf"), _env(server_env, [])) as srv:
        yield srv


@pytest.fixture
def http(strict: KKServer) -> Iterator[httpx.Client]:
    with strict.client as client:
        yield client


def _webhook_fails(http: httpx.Client, url: str) -> str:
    job_id = add_job(http, "webhook", {"url": url, "payload": {"x": 1}}, attempts=1)
    return wait_job(http, "webhook", "failed", job_id)["failedReason"]


def test_webhooks_to_private_addresses_are_refused(http, target):
    port = int(target.url.rsplit(":", 1)[1])
    # Address literals can never pass: refused when added, naming the setting that allows them.
    literals = {
        f"http://127.0.0.1:{port}/": "127.0.0.1 is a loopback",
        "http://[::1]/": "::1 is a loopback",
        "http://169.254.169.254/latest/meta-data": "169.254.169.254 is a link-local",
        "http://10.0.0.1/": "10.0.0.1 is a private",
        "http://[fec0::1]/": "fec0::1 is a site-local",
    }
    for url, why in literals.items():
        response = http.post("/api/queues/webhook/jobs", json={"data": {"url": url}})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert "data.url" in error and why in error and "KK_SSRF_ALLOW" in error, (url, error)
    # Names are resolved, and refused, when the job runs.
    names = {
        "http://localhost/": "loopback",
        "http://2130706433/": "127.0.0.1 is a loopback",  # 127.0.0.1 as one decimal number
    }
    for url, why in names.items():
        reason = _webhook_fails(http, url)
        assert reason.startswith("refused:") and why in reason, (url, reason)
        assert "KK_SSRF_ALLOW" in reason, reason
    assert target.requests == []  # the live one was never reached


class Listener:
    """A bare TCP listener that counts the connections it accepts."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def test_a_redirect_from_an_allowed_host_to_a_forbidden_one_is_refused(
    server_env, tmp_path, target
):
    hidden = Listener("127.0.0.2")  # what the redirect points at; must never be reached
    try:
        port = int(target.url.rsplit(":", 1)[1])
        target.replies["/hop-loopback"] = [
            Reply(307, headers={"Location": f"http://127.0.0.2:{hidden.port}/"})
        ]
        target.replies["/hop-metadata"] = [
            Reply(307, headers={"Location": "http://169.254.169.254/latest/meta-data"})
        ]
        # Only the redirector's exact address is allowed.
        with (
            start_server(tmp_path, _env(server_env, ["127.0.0.1"])) as srv,
            srv.client as http,
        ):
            loopback = _webhook_fails(http, f"http://127.0.0.1:{port}/hop-loopback")
            metadata = _webhook_fails(http, f"http://127.0.0.1:{port}/hop-metadata")
        assert "refused:" in loopback and "127.0.0.2 is a loopback" in loopback
        assert "refused:" in metadata and "169.254.169.254 is a link-local" in metadata
        assert len(target.received("/hop-loopback")) == 1  # the allowed hop was made
        assert len(target.received("/hop-metadata")) == 1
        assert hidden.accepted == 0
    finally:
        hidden.sock.close()


def test_an_image_source_symlinked_outside_storage_is_refused(http, strict):
    storage = strict.data_dir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    outside = strict.data_dir / "outside"
    outside.mkdir(exist_ok=True)
    Image.new("RGB", (40, 20), "red").save(outside / "secret.png")
    (storage / "innocent.png").symlink_to(outside / "secret.png")
    (storage / "exit").symlink_to(outside, target_is_directory=True)
    Image.new("RGB", (40, 20), "blue").save(storage / "ok.png")

    source = add_job(http, "image-processing", {"source": "innocent.png", "output": "x.png",
                                                "width": 10})  # fmt: skip
    reason = wait_job(http, "image-processing", "failed", source)["failedReason"]
    assert "refused path" in reason and "outside the root" in reason, reason
    output = add_job(http, "image-processing", {"source": "ok.png", "output": "exit/y.png",
                                                "width": 10})  # fmt: skip
    reason = wait_job(http, "image-processing", "failed", output)["failedReason"]
    assert "refused path" in reason and "outside the root" in reason, reason
    assert sorted(p.name for p in outside.iterdir()) == ["secret.png"]
    assert not (storage / "x.png").exists()


def test_template_syntax_in_email_data_stays_inert_text(http, strict):
    payload = "{{ ''.__class__.__mro__ }}"
    body = {
        "to": "user@example.com",
        "subject": "Hello {{ 7*7 }}",
        "template": "welcome",
        "data": {"username": payload, "activationLink": "{% for x in range(3) %}x{% endfor %}"},
    }
    added = http.post("/api/queues/email/jobs", json=body)
    assert added.status_code == 201, added.text
    job = wait_job(http, "email", "completed", added.json()["jobId"])
    assert job["returnValue"]["transport"] == "outbox"
    outbox = strict.data_dir / "outbox"
    eml = wait_for(lambda: next(iter(outbox.glob(f"*-{job['id']}.eml")), None), what="the .eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Hello {{ 7*7 }}"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert payload in text and "{% for x in range(3) %}x{% endfor %}" in text
    assert "{{ &#39;&#39;.__class__.__mro__ }}" in html
    for rendered in (text, html):
        assert "<class" not in rendered and "&lt;class" not in rendered and "xxx" not in rendered
    assert "49" not in message["Subject"]
