"""Screenshots of the dashboard for the README (`make screenshots`): a real `kk serve` on a
private Redis, a few queues with real jobs, Debian's Chromium driven by Playwright.

Writes docs/img/dashboard-{overview,failed,job,overview-zh}.png, reduced to 256 colours so
they stay small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
PROCESSOR = "bench.screenshots:demo"
QUEUES = {
    "notifications": {"processor": PROCESSOR, "attempts": 1},
    "webhooks": {
        "processor": PROCESSOR,
        "attempts": 3,
        "backoff_type": "fixed",
        "backoff_delay_ms": 0,
    },
    "image-resize": {"processor": PROCESSOR, "attempts": 1},
    "reports": {"attempts": 1},  # no worker: its waiting jobs raise an alert
}
SCHEDULES = {
    "nightly-report": {
        "queue": "reports",
        "job": "daily-summary",
        "cron": "0 2 * * *",
        "timezone": "Asia/Shanghai",
        "description": "Daily summary for the operations team",
    }
}


class DeliveryError(RuntimeError):
    pass


def _deliver(url: str) -> None:
    raise DeliveryError(f"POST {url} answered 503 Service Unavailable")


async def demo(job: Any, ctx: Any) -> dict[str, Any]:
    """The processor of the demo queues: a little work, a failure when the data asks."""
    await asyncio.sleep(0.02)
    if job.data.get("fail"):
        _deliver(job.data.get("url", "https://hooks.example.com/orders"))
    return {"delivered": True, "bytes": 512}


def _add(client: httpx.Client, queue: str, data: dict[str, Any], **options: Any) -> str:
    body: dict[str, Any] = {"data": data, **({"options": options} if options else {})}
    answer = client.post(f"/api/queues/{queue}/jobs", json=body)
    answer.raise_for_status()
    return answer.json()["jobId"]


def _wait(client: httpx.Client, queue: str, state: str, n: int) -> None:
    deadline = time.monotonic() + 30
    while client.get(f"/api/queues/{queue}/stats").json()["data"][state] < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{queue}: fewer than {n} {state} jobs after 30 s")
        time.sleep(0.2)


def seed(client: httpx.Client) -> str:
    """Jobs in every state worth showing; answers the id of a job that failed three times."""
    for n in range(40):
        _add(client, "notifications", {"user": 1000 + n, "template": "welcome"})
    for n in range(12):
        _add(client, "image-resize", {"image": f"uploads/{n}.jpg", "width": 640})
    failing = ""
    for n in range(4):
        failing = _add(
            client, "webhooks", {"fail": True, "url": f"https://hooks.example.com/orders/{n}"}
        )
    for n in range(9):
        _add(client, "webhooks", {"event": "order.paid", "order": 5000 + n})
    for n in range(6):
        _add(client, "reports", {"month": n + 1})
    _add(client, "notifications", {"user": 7, "template": "reminder"}, delay=3_600_000)
    _wait(client, "webhooks", "failed", 4)
    _wait(client, "notifications", "completed", 40)
    return failing


def shrink(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)


def shoot(url: str, failing: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = [
        ("dashboard-overview.png", "en-US", "#/", '#queues-body tr[data-queue="webhooks"]'),
        ("dashboard-failed.png", "en-US", "#/queue/webhooks/failed/0", "#jobs-body tr[data-job]"),
        ("dashboard-job.png", "en-US", f"#/queue/webhooks/job/{failing}", "#job-detail .attempt"),
        ("dashboard-overview-zh.png", "zh-CN", "#/", '#queues-body tr[data-queue="webhooks"]'),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        for name, locale, route, ready in shots:
            context = browser.new_context(
                viewport={"width": 1200, "height": 820}, locale=locale, color_scheme="light"
            )
            page = context.new_page()
            page.goto(f"{url}/dashboard{route}")
            page.locator(ready).first.wait_for(timeout=15_000)
            page.wait_for_timeout(800)  # sparklines and relative times settle
            path = OUT / name
            page.screenshot(path=str(path), full_page=False)
            shrink(path)
            written.append(path)
            context.close()
        browser.close()
    return written


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    from tests.support.server import start_server

    from bench._common import private_redis

    with private_redis() as redis_url, tempfile.TemporaryDirectory(prefix="kk-shots-") as tmp:
        env = {
            "KK_REDIS_URL": redis_url,
            "KK_QUEUE_PREFIX": "kk-shots",
            "KK_QUEUES": json.dumps(QUEUES),
            "KK_SCHEDULES": json.dumps(SCHEDULES),
        }
        with start_server(Path(tmp), env) as srv, srv.client as client:
            failing = seed(client)
            for path in shoot(srv.url, failing):
                print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
