"""redis-py connection pools for a busy service: commands packed by hiredis, a lean pool for
workers, and a check that an idle connection was not reset before it is reused.

These reach into redis-py's private parts (the pools' connection lists, a connection's
stream): written for the version in `kk.compat.TUNED_ONLY`, except `was_reset`, which
only reads attributes it finds and is used in stock mode too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    ConnectionPool,
)
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection
from redis.exceptions import DataError


def _pack_with_hiredis(self: AbstractConnection, *args: Any) -> list[bytes]:
    """redis-py's sync connections pack commands with hiredis, its asyncio ones in Python
    (about 8 µs for a BullMQ script call against 1 µs); the bytes are the same."""
    if isinstance(args[0], str):  # 'CONFIG GET' and the like go as separate words
        args = (*args[0].encode().split(), *args[1:])
    elif b" " in args[0]:
        args = (*args[0].split(), *args[1:])
    try:
        return [hiredis.pack_command(args)]
    except TypeError:
        pass
    args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
    try:
        return [hiredis.pack_command(args)]
    except TypeError as exc:  # what redis-py raises for a bool, None, ...
        raise DataError(f"Invalid input in a Redis command: {exc}") from None


_PACKING_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """The connection class with hiredis packing, one per base class (made once)."""
    packing = _PACKING_CLASSES.get(connection_class)
    if packing is None:
        packing = type(
            connection_class.__name__, (connection_class,), {"pack_command": _pack_with_hiredis}
        )
        _PACKING_CLASSES[connection_class] = packing
    return packing


class _HiredisPacking(ConnectionPool):
    """A pool whose connections pack commands with hiredis."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_class = _hiredis_packing(self.connection_class)


def was_reset(connection: AbstractConnection) -> bool:
    """True when the peer reset or closed this idle connection (Redis restarted, a proxy
    or load balancer dropped it). redis-py's check before reuse looks for pending bytes or an EOF,
    but a reset sets the stream's exception instead, so the next command would be written
    to a dead socket and fail after it may count as sent. Checked here, nothing has left
    yet: reconnecting is safe, and a command is never sent twice."""
    reader = getattr(connection, "_reader", None)
    writer = getattr(connection, "_writer", None)
    if reader is None or writer is None:
        return False
    # A server that exited closes with a FIN: the stream is at EOF, the transport still open.
    return reader.exception() is not None or reader.at_eof() or writer.transport.is_closing()


class ResetCheckingBlockingPool(BlockingConnectionPool):
    """redis-py's blocking pool (stock mode), with the reset check before reuse."""

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        if was_reset(connection):
            await connection.disconnect()
        await super().ensure_connection(connection)


class FastBlockingConnectionPool(_HiredisPacking, ResetCheckingBlockingPool):
    """The API's pool: blocking (a burst waits for a free connection), hiredis packing."""


class LeanConnectionPool(_HiredisPacking, ConnectionPool):
    """redis-py 8's pool takes a lock, emits observability events and polls the socket for
    stray bytes around every command: a large share of a busy worker's time. A connection
    interrupted mid-command is disconnected by redis-py itself, so the poll is redundant;
    this pool just hands connections out and takes them back."""

    async def get_connection(self, command_name=None, *keys, **options):
        try:
            connection = self._available_connections.pop()
        except IndexError:  # none idle: let the base class create one (and count it)
            return await super().get_connection(command_name, *keys, **options)
        self._in_use_connections.add(connection)
        if was_reset(connection):
            await connection.disconnect()
        if not connection.is_connected:
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        self._in_use_connections.discard(connection)
        if connection.should_reconnect():
            await connection.disconnect()
        self._available_connections.append(connection)


async def drop_connections(pool: ConnectionPool) -> None:
    """Closes every connection of `pool`, busy ones included, without waiting for the peer.

    `ConnectionPool.disconnect` waits (up to the connect timeout) for each socket to close:
    against a frozen server that is seconds during which a busy connection still counts as
    connected, and a command retried on it fails again. `disconnect(nowait=True)` closes at
    once; the pool's connection lists are private, hence here."""
    connections = [*pool._available_connections, *pool._in_use_connections]
    await asyncio.gather(
        *(connection.disconnect(nowait=True) for connection in connections),
        return_exceptions=True,
    )


class _AsksBeforeReconnecting:
    """redis-py 8's Sentinel connection asks for the master in `connect()`, but a command on
    a connection that was dropped reconnects through `connect_check_health()`, which goes
    straight back to the last host: after a failover, the demoted master, for ever (retries
    included). Asking there too is what makes a dropped connection follow the master.
    Written for redis-py in `kk.compat.SENTINEL`; used only with Sentinel URLs."""

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self.is_connected and self.connection_pool.is_master:  # type: ignore[attr-defined]
            address = await self.connection_pool.get_master_address()  # type: ignore[attr-defined]
            self.host, self.port = address
        await super().connect_check_health(check_health, retry_socket_connect)  # type: ignore[misc]


class MasterFollowingConnection(_AsksBeforeReconnecting, SentinelManagedConnection):
    pass


class MasterFollowingSSLConnection(_AsksBeforeReconnecting, SentinelManagedSSLConnection):
    pass
