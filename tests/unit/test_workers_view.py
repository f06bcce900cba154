"""Worker connections grouped into processes, from CLIENT LIST rows."""

from __future__ import annotations

import base64
import os

from kk.queues.workers_view import clients, process_counts, worker_name, worker_processes

QUEUES = ["email", "webhook"]


def test_connections_of_one_kk_process_make_one_row():
    started = 1_700_000_000_000
    email, hook = worker_name("email", 4, started), worker_name("webhook", 2, started)
    listed = clients(
        f"id=1 addr=10.0.0.5:1111 name=kk:email:w:{email} age=9 idle=3\n"
        f"id=2 addr=10.0.0.5:1112 name=kk:email:w:{email} age=9 idle=0\n"
        f"id=3 addr=10.0.0.5:1113 name=kk:webhook:w:{hook} idle=7\n"
        "id=4 addr=10.0.0.5:1114 name=kk:email idle=1\n"
    )
    rows = worker_processes(listed, "kk", QUEUES, now_ms=1_700_000_100_000)
    ours = [r for r in rows if r.pid == os.getpid()]
    assert len(ours) == 1
    row = ours[0]
    assert row.queues == ["email", "webhook"] and row.concurrency == {"email": 4, "webhook": 2}
    assert row.connections == 3 and row.idleSeconds == 0
    assert row.started == "2023-11-14T22:13:20.000Z"
    assert row.lastSeen == "2023-11-14T22:15:00.000Z"
    assert " " not in email and email.count(":") == 5
    # An unnamed worker (another program) is a row of its own, without a pid.
    other = [r for r in rows if r.pid is None]
    assert len(other) == 1 and other[0].host == "10.0.0.5" and other[0].queues == ["email"]
    assert process_counts(rows, QUEUES) == {"email": 2, "webhook": 1}


def test_node_names_and_foreign_prefixes():
    node = base64.b64encode(b"webhook").decode()
    listed = clients(
        [
            {"name": f"kk:{node}:w:n1", "addr": "/tmp/redis.sock", "idle": "2"},
            {"name": "kk-2:email:w:x", "addr": "1.2.3.4:5"},
            {"name": "kk:unknown:w:x", "addr": "1.2.3.4:5"},
        ]
    )
    rows = worker_processes(listed, "kk", QUEUES, now_ms=0)
    assert [(r.queues, r.address, r.name) for r in rows] == [(["webhook"], "unix", "n1")]


def test_a_process_reads_the_same_whatever_the_connection_order():
    started = 1_700_000_000_000
    email, hook = worker_name("email", 4, started), worker_name("webhook", 2, started)
    lines = [
        f"id=1 addr=10.0.0.5:1111 name=kk:webhook:w:{hook} idle=3",
        f"id=2 addr=10.0.0.5:1112 name=kk:email:w:{email} idle=0",
    ]
    one = worker_processes(clients("\n".join(lines)), "kk", QUEUES, now_ms=started)
    other = worker_processes(clients("\n".join(reversed(lines))), "kk", QUEUES, now_ms=started)
    assert one == other and one[0].name == email
