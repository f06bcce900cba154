"""Commands packed with hiredis are byte for byte what redis-py's own packer writes."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from kk.compat.redis_pool import _hiredis_packing

COMMANDS = [
    ("SET", "key", "value"),
    ("CONFIG GET", "maxmemory-policy"),
    (b"CLIENT SETNAME", b"kk"),
    ("EVALSHA", "a" * 40, 2, "bull:q:wait", "bull:q:meta", b"\x93\x00\xff", 17, -3),
    ("ZADD", "k", 1.0000000000000002, "m", 0.1, "n", 1e20, "o"),
    ("HSET", "h", "é", "日本", "big", 2**70),
    ("SET", "k", bytearray(b"ab"), memoryview(b"cd")),
    ("SET", "k", "x" * 100_000),  # over redis-py's buffer cutoff, which splits chunks
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_same_bytes_as_redis_py(command):
    stock = Connection()
    fast = _hiredis_packing(Connection)()
    assert b"".join(fast.pack_command(*command)) == b"".join(stock.pack_command(*command))


@pytest.mark.parametrize("bad", [True, None, object()])
def test_values_redis_py_refuses_are_refused_the_same_way(bad):
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        _hiredis_packing(Connection)().pack_command("SET", "k", bad)
