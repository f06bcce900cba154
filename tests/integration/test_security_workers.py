"""Worker-side attacks through the real API against a real `kk serve`: credentials carried
across a redirect, an image job that would allocate gigabytes, and server paths shown to
readers in stack traces and return values."""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from tests.integration.helpers import add_job, wait_job
from tests.support.server import ROOT, KKServer, start_server
from tests.unit.helpers_http import LocalServer, Reply, local_server


@pytest.fixture(scope="module")
def srv(server_env, tmp_path_factory) -> Iterator[KKServer]:
    env = {k: v for k, v in server_env.items() if k != "KK_SMTP_URL"}  # mail to the outbox
    env["KK_QUEUE_PREFIX"] = f"kkw-{uuid.uuid4().hex[:8]}"
    with start_server(tmp_path_factory.mktemp("workers"), env) as server:
        yield server


@pytest.fixture
def http(srv: KKServer) -> Iterator[httpx.Client]:
    with srv.client as client:
        yield client


@pytest.fixture
def two_hosts() -> Iterator[tuple[LocalServer, LocalServer]]:
    with local_server() as first, local_server() as second:
        yield first, second


SECRET_HEADERS = {"Authorization": "Bearer job-secret-token", "X-Api-Token": "t0ps3cret"}


def test_a_redirect_to_another_origin_carries_no_credentials(http, two_hosts):
    first, second = two_hosts
    first.replies["/hook"] = [Reply(307, headers={"Location": f"{second.url}/elsewhere"})]
    job_id = add_job(
        http,
        "webhook",
        {"url": f"{first.url}/hook", "payload": {"n": 1}, "headers": SECRET_HEADERS},
        attempts=1,
    )
    wait_job(http, "webhook", "completed", job_id)

    (original,) = first.received("/hook")
    assert original.headers["Authorization"] == "Bearer job-secret-token"
    assert original.headers["X-Api-Token"] == "t0ps3cret"
    (redirected,) = second.received("/elsewhere")
    names = {name.lower() for name in redirected.headers}
    assert "authorization" not in names and "x-api-token" not in names
    assert not any(name.startswith("x-kk-") for name in names), "no signature replayable"
    assert redirected.body == original.body, "307 repeats the request itself"
    assert redirected.headers["Content-Type"] == "application/json"


def test_a_redirect_on_the_same_origin_keeps_the_headers(http, two_hosts):
    first, _ = two_hosts
    first.replies["/old"] = [Reply(308, headers={"Location": "/new"})]
    job_id = add_job(
        http,
        "webhook",
        {"url": f"{first.url}/old", "payload": {}, "headers": SECRET_HEADERS},
        attempts=1,
    )
    wait_job(http, "webhook", "completed", job_id)
    (moved,) = first.received("/new")
    assert moved.headers["Authorization"] == "Bearer job-secret-token"
    assert moved.headers["X-KK-Signature"].startswith("sha256=")


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (10, 4), "red").save(out, format="PNG")
    return out.getvalue()


def test_a_huge_upscale_is_refused_before_any_pixel_is_allocated(http, srv):
    storage = srv.data_dir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "tiny.png").write_bytes(_tiny_png())
    assert (storage / "tiny.png").stat().st_size < 200
    process = psutil.Process(srv.proc.pid)
    before = process.memory_info().rss
    body = {"source": "tiny.png", "output": "huge.png", "operation": "resize",
            "width": 10_000, "height": 4_000}  # fmt: skip

    with ThreadPoolExecutor(5) as pool:
        ids = list(
            pool.map(lambda _: add_job(http, "image-processing", body, attempts=1), range(5))
        )
    jobs = [wait_job(http, "image-processing", "failed", job_id) for job_id in ids]

    for job in jobs:
        reason = job["failedReason"]
        assert "output of 10000x4000" in reason and "25000000-pixel output limit" in reason
    assert not (storage / "huge.png").exists()
    grown = process.memory_info().rss - before
    # Five 40 Mpx RGB resizes would take well over a gigabyte; a refusal takes nothing.
    assert grown < 100 * 1024 * 1024, f"RSS grew by {grown / 1e6:.0f} MB"


def test_an_image_in_a_format_the_queue_does_not_accept_is_not_decoded(http, srv):
    storage = srv.data_dir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), "blue").save(storage / "photo.tiff", format="TIFF")
    body = {"source": "photo.tiff", "output": "photo.png", "operation": "convert"}
    job = wait_job(http, "image-processing", "failed", add_job(http, "image-processing", body))
    assert "not a readable image" in job["failedReason"]


def _server_prefixes(srv: KKServer) -> list[str]:
    return [
        str(srv.data_dir.resolve()),
        str(ROOT),
        sys.prefix,
        sys.base_prefix,
        str(Path(httpx.__file__).resolve().parent.parent),  # site-packages
    ]


def test_stack_traces_show_no_server_paths(http, srv):
    job_id = add_job(http, "t-basic", {"fail": True, "value": 3})
    job = wait_job(http, "t-basic", "failed", job_id)
    trace = "\n".join(job["stacktrace"])
    assert "requested failure for value 3" in trace, "still a useful trace"
    assert 'File "' in trace and 'File "/' not in trace, trace
    for prefix in _server_prefixes(srv):
        assert prefix not in trace, (prefix, trace)
    # The list endpoint shows the same job the same way.
    listed = http.get("/api/queues/t-basic/jobs", params={"status": "failed", "end": 999})
    assert 'File "/' not in listed.text


def test_the_email_outbox_path_is_relative_to_the_data_dir(http, srv):
    body = {"type": "send-email", "to": "user@example.com", "subject": "Hi",
            "template": "welcome",
            "data": {"username": "Ada", "activationLink": "https://example.com/a"}}  # fmt: skip
    response = http.post("/api/queues/email/jobs", json=body)
    assert response.status_code == 201, response.text
    job = wait_job(http, "email", "completed", response.json()["jobId"])
    path = job["returnValue"]["path"]
    assert path.startswith("outbox/") and path.endswith(".eml"), path
    assert (srv.data_dir / path).is_file()
    for prefix in _server_prefixes(srv):
        assert prefix not in str(job), prefix
