"""Peak memory of `kk serve` while N image jobs upscale a tiny PNG in parallel.

Starts a real `kk serve` (embedded Redis, own temp data dir), adds the jobs through the API
and samples the server's RSS every 20 ms until they finish. With the default output limit
(25 Mpx) a 10000x4000 upscale is refused before any pixel is allocated; raise the limit
(`--max-output-pixels 40000000`) to see what the jobs would cost otherwise.

    .venv/bin/python -m bench.image_memory --jobs 5 --width 10000 --height 4000
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from PIL import Image
from tests.support.server import start_server

MB = 1024 * 1024


def _finished(client: httpx.Client, ids: list[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    for status in ("completed", "failed"):
        page = client.get(
            "/api/queues/image-processing/jobs", params={"status": status, "end": 999}
        ).json()["data"]
        states.update({j["id"]: j.get("failedReason") or status for j in page if j["id"] in ids})
    return states


def run(jobs: int, width: int, height: int, max_output_pixels: int | None) -> None:
    with tempfile.TemporaryDirectory(prefix="kk-img-") as tmp:
        data_dir = Path(tmp)
        storage = data_dir / "storage"
        storage.mkdir()
        png = io.BytesIO()
        Image.new("RGB", (10, 4), "red").save(png, format="PNG")
        (storage / "tiny.png").write_bytes(png.getvalue())
        env = {"KK_QUEUES": json.dumps({"image-processing": {"concurrency": jobs, "attempts": 1}})}
        if max_output_pixels is not None:
            env["KK_IMAGE_MAX_OUTPUT_PIXELS"] = str(max_output_pixels)
        with start_server(data_dir, env) as srv, srv.client as client:
            process = psutil.Process(srv.proc.pid)
            base = peak = process.memory_info().rss
            body = {"source": "tiny.png", "output": "out.png", "operation": "resize",
                    "width": width, "height": height}  # fmt: skip
            ids = [
                client.post("/api/queues/image-processing/jobs", json={"data": body}).json()[
                    "jobId"
                ]
                for _ in range(jobs)
            ]
            started = time.monotonic()
            while len(states := _finished(client, ids)) < jobs:
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.02)
            took = time.monotonic() - started
            after = process.memory_info().rss
        print(f"{jobs} jobs of {width}x{height} from a {png.tell()}-byte PNG in {took:.1f} s")
        rss = f"before {base / MB:.0f} MB, peak {peak / MB:.0f} MB, after {after / MB:.0f} MB"
        print(f"  RSS {rss}")
        for reason in sorted(set(states.values())):
            print(f"  {sum(v == reason for v in states.values())}x {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--width", type=int, default=10_000)
    parser.add_argument("--height", type=int, default=4_000)
    parser.add_argument("--max-output-pixels", type=int, default=None)
    args = parser.parse_args()
    run(args.jobs, args.width, args.height, args.max_output_pixels)


if __name__ == "__main__":
    main()
