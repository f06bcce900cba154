"""Reading BullMQ's connection names and addresses for the workers list and panel (pure logic)."""

from __future__ import annotations

import base64

from kk.queues.workers_view import _address as _host
from kk.queues.workers_view import _owner as _queue_of

QUEUES = {"email", "image-processing"}


def test_connection_names_give_queue_and_worker():
    assert _queue_of("kk:email", "kk", QUEUES) == ("email", "")
    assert _queue_of("kk:email:w:box-1", "kk", QUEUES) == ("email", "box-1")
    node = base64.b64encode(b"image-processing").decode()  # the Node port's form
    assert _queue_of(f"kk:{node}:w:n1", "kk", QUEUES) == ("image-processing", "n1")


def test_other_connections_are_not_workers():
    assert _queue_of("", "kk", QUEUES) is None
    assert _queue_of("other:email", "kk", QUEUES) is None
    assert _queue_of("kk:unknown", "kk", QUEUES) is None
    assert _queue_of("kk-2:email", "kk", QUEUES) is None


def test_hosts_drop_the_port_and_socket_paths():
    assert _host("10.0.0.7:51234") == "10.0.0.7"
    assert _host("[::1]:6379") == "[::1]"
    assert _host("/var/run/redis/redis.sock:0") == "unix"
    assert _host("") == "unix"
