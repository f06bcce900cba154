"""JSON logs (KK_LOG_JSON=true): every line of a request carries its request id, and job
lines carry queue, job id, attempt, outcome and duration as fields."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import TEST_QUEUES
from tests.integration.helpers import add_job, wait_job
from tests.support.private_redis import proxied_redis
from tests.support.server import KKServer, start_server, wait_for


def records(srv: KKServer) -> list[dict[str, Any]]:
    out = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def find(srv: KKServer, **fields: Any) -> list[dict[str, Any]]:
    return [r for r in records(srv) if all(r.get(k) == v for k, v in fields.items())]


def test_json_logs_carry_request_and_job_fields(tmp_path: Path):
    with proxied_redis(tmp_path / "redis") as redis:
        env = {
            "KK_REDIS_URL": redis.url,
            "KK_QUEUE_PREFIX": f"kkl-{uuid.uuid4().hex[:8]}",
            "KK_QUEUES": json.dumps(TEST_QUEUES),
            "KK_LOG_JSON": "true",
            "KK_SHUTDOWN_GRACE_S": "2",
        }
        with start_server(tmp_path / "kk", env) as srv, srv.client as client:
            # One line per request, with the id the client sent.
            client.get("/api/queues/stats", headers={"X-Request-ID": "req-stats-1"})
            [line] = wait_for(lambda: find(srv, request_id="req-stats-1"), what="request line")
            assert line["logger"] == "kk.http" and line["status"] == 200
            assert line["path"] == "/api/queues/stats" and line["duration_ms"] >= 0

            # Job lines: start, then done or failed, all with the job's fields.
            ok = add_job(client, "t-basic", {"value": 2})
            bad = add_job(client, "t-basic", {"fail": True})
            wait_job(client, "t-basic", "completed", ok)
            wait_job(client, "t-basic", "failed", bad)
            for job_id, outcome in ((ok, "completed"), (bad, "failed")):
                lines = wait_for(
                    lambda job_id=job_id: len(find(srv, job_id=job_id)) >= 2 and
                    find(srv, job_id=job_id),
                    what=f"log lines of job {job_id}",
                )  # fmt: skip
                for line in lines:
                    assert line["queue"] == "t-basic" and line["attempt"] == 1, line
                    assert line["job_name"]
                [end] = [line for line in lines if "outcome" in line]
                assert end["outcome"] == outcome and end["duration_ms"] >= 0, end

            # A failure inside a request is logged with that request's id too.
            redis.proxy.stop()
            try:
                answer = client.get("/api/queues/stats", headers={"X-Request-ID": "req-down-2"})
                assert answer.status_code == 503
                assert answer.headers["x-request-id"] == "req-down-2"
            finally:
                redis.proxy.start()
            lines = wait_for(lambda: find(srv, request_id="req-down-2"), what="lines")
            loggers = {line["logger"] for line in lines}
            assert {"kk.errors", "kk.http"} <= loggers, lines
