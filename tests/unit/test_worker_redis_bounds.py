"""A worker's Redis commands each have a deadline; a blocking wait gets its own timeout on
top, so it is never cut short, and a frozen server never holds a worker for ever."""

from __future__ import annotations

import asyncio
import socket

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from kk.infra.redis_client import WorkerRedis, worker_client


def test_each_command_gets_a_bound_and_a_blocking_wait_its_own_timeout_on_top():
    client = WorkerRedis()
    bound = client.command_bound_s
    assert client._bound(("EVALSHA", "abc", 3)) == bound
    assert client._bound(("BZPOPMIN", "marker", 5)) == 5 + bound
    assert client._bound(("BZPOPMIN", "marker", 0)) is None  # waits for ever by request
    assert client._bound(("BLMOVE", "a", "b", "LEFT", "RIGHT", 1.5)) == 1.5 + bound


async def test_a_server_that_never_answers_ends_a_command_within_its_bound(monkeypatch):
    # A listener that accepts and then says nothing, as a frozen Redis does.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = worker_client(f"redis://127.0.0.1:{port}/0", tuned=False)
    monkeypatch.setattr(WorkerRedis, "command_bound_s", 0.5)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(RedisTimeoutError):
            await client.get("anything")
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        await client.aclose()
        listener.close()
