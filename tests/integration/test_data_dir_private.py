"""What the service writes under its data dir is for its own user only, whatever the
umask: the session and webhook keys, the outbox (reset links), the SQLite database."""

from __future__ import annotations

import json
import os
import stat
import uuid

from tests.integration.helpers import wait_job
from tests.support.server import start_server


def test_the_data_dir_and_its_secrets_are_private(tmp_path, server_env):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as a person's `mkdir` leaves it
    env = {k: v for k, v in server_env.items() if k != "KK_SMTP_URL"}  # emails to the outbox
    env["KK_QUEUES"] = json.dumps({})
    # A prefix of its own: no other server's email worker may take (and write) this email.
    env["KK_QUEUE_PREFIX"] = f"kkp-{uuid.uuid4().hex[:8]}"
    old_umask = os.umask(0o022)
    try:
        with start_server(data, env) as srv, srv.client as client:
            added = client.post("/api/queues/email/jobs", json={
                "type": "send-email", "to": "ada@example.com", "subject": "Reset",
                "template": "password-reset",
                "data": {"username": "Ada", "resetLink": "https://example.com/r/secret-token"},
            })  # fmt: skip
            assert added.status_code == 201, added.text
            job_id = added.json()["jobId"]
            wait_job(client, "email", "completed", job_id)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    emails = list((data / "outbox").glob("*.eml"))
    assert emails and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in emails)
    database = data / "kk.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
