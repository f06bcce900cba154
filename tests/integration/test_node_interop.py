"""Node's BullMQ and this service read and write the same queues."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import add_job, job_in, wait_job

INTEROP = Path(__file__).resolve().parents[1] / "interop"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (INTEROP / "node_modules" / "bullmq").is_dir(),
    reason="Node's BullMQ is not installed: needs node, then `npm install --prefix tests/interop`",
)


def node_bullmq(*args: str, redis_url: str, prefix: str) -> dict:
    result = subprocess.run(
        [NODE, str(INTEROP / "bullmq-cli.mjs"), args[0], redis_url, prefix, *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_job_added_by_node_is_listed_and_processed_here(server, redis_url, queue_prefix):
    added = node_bullmq(
        "add", "t-basic", "from-node", json.dumps({"value": 4}), redis_url=redis_url,
        prefix=queue_prefix,
    )  # fmt: skip
    with server.client as client:
        job = wait_job(client, "t-basic", "completed", added["id"])
    assert job["name"] == "from-node"
    assert job["returnValue"] == {"doubled": 8}
    seen = node_bullmq("read", "t-basic", added["id"], redis_url=redis_url, prefix=queue_prefix)
    assert seen["state"] == "completed"
    assert seen["job"]["returnvalue"] == {"doubled": 8}


def test_a_job_added_here_is_read_and_processed_by_node(server, redis_url, queue_prefix):
    with server.client as client:
        job_id = add_job(client, "t-node", {"hello": "node"}, attempts=4)
        seen = node_bullmq("read", "t-node", job_id, redis_url=redis_url, prefix=queue_prefix)
        assert seen["state"] == "waiting"
        assert seen["job"]["data"] == {"hello": "node"}
        assert seen["job"]["opts"]["attempts"] == 4
        result = node_bullmq("work", "t-node", job_id, redis_url=redis_url, prefix=queue_prefix)
        assert result == {"seenByNode": {"hello": "node"}}
        done = job_in(client, "t-node", "completed", job_id)
        assert done is not None and done["returnValue"] == {"seenByNode": {"hello": "node"}}
