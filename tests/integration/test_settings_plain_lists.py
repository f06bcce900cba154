"""Key lists as a person first types them: `KK_READ_API_KEYS=<key>`, `KK_API_KEYS=a,b`."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.server import ROOT, start_server

ADMIN, OTHER = "admin-key-0123456789abcdef0123456789", "other-key-0123456789abcdef012345678"
READER = "read-key-0123456789abcdef0123456789"


def test_plain_and_comma_separated_keys_are_taken(tmp_path, server_env):
    env = {**server_env, "KK_API_KEYS": f"{ADMIN}, {OTHER}", "KK_READ_API_KEYS": READER}
    with start_server(tmp_path, env) as srv, srv.client as client:
        assert client.get("/api/queues/stats").status_code == 401
        for key in (ADMIN, OTHER, READER):
            headers = {"Authorization": f"Bearer {key}"}
            assert client.get("/api/queues/stats", headers=headers).status_code == 200
        reader = {"Authorization": f"Bearer {READER}"}
        assert client.post("/api/queues/email/pause", headers=reader).status_code == 403


def test_a_list_that_is_not_valid_json_stops_with_one_line_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KK_")}
    env.update({"KK_DATA_DIR": str(tmp_path), "KK_READ_API_KEYS": '["unclosed'})
    done = subprocess.run(
        [sys.executable, "-m", "kk", "serve"], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "read_api_keys: not a valid JSON list" in done.stderr
    assert "Traceback" not in done.stderr and "default factory" not in done.stderr
