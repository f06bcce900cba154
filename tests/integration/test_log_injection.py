"""A job's failure reason comes from its data; it must not forge log lines."""

from __future__ import annotations

import json

from tests.integration.helpers import add_job, wait_job
from tests.support.server import start_server

QUEUES = {"inj": {"processor": "tests.support.processors:fail_with", "attempts": 1}}
FORGED = "2026-01-01 00:00:00,000 INFO    kk.worker: job done queue=inj id=forged"


def test_a_failure_reason_with_newlines_and_escapes_stays_on_one_line(tmp_path, server_env):
    env = {**server_env, "KK_QUEUES": json.dumps(QUEUES)}
    with start_server(tmp_path, env) as srv, srv.client as client:
        reason = f"bad input\n{FORGED}\x1b[2J\r"
        job_id = add_job(client, "inj", {"reason": reason})
        wait_job(client, "inj", "failed", job_id)
        log = srv.log()
    lines = log.splitlines()
    assert not any(line.startswith(FORGED) for line in lines), "a forged line was written"
    assert "\x1b" not in log
    failure = next(line for line in lines if f"id={job_id}" in line and "job failed" in line)
    assert "bad input\\x0a2026-01-01" in failure and "\\x1b[2J\\x0d" in failure
