"""Bring the schema to the newest revision and seed demo users, once, whoever starts first.

Several processes may start together on one database, so the work runs under a lock: a
transaction-scoped advisory lock on PostgreSQL, an exclusive lock on a file next to the
database on SQLite (whose DDL the driver does not run inside a transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kk.db.seed import seed_demo_users

log = logging.getLogger("kk.db")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x6B6B_6462  # "kkdb": an arbitrary, fixed advisory lock id


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # Blocking flock in a thread: the event loop keeps serving while we wait.
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


async def _migrate_and_seed(conn: AsyncConnection, demo_users: int) -> None:
    await conn.run_sync(_upgrade)
    seeded = await seed_demo_users(conn, demo_users)
    if seeded:
        log.info("Seeded %d demo users", seeded)


async def prepare_database(engine: AsyncEngine, demo_users: int) -> None:
    url = engine.url
    if url.get_backend_name() == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            await _migrate_and_seed(conn, demo_users)
        return
    database = url.database or ""
    lock: contextlib.AbstractAsyncContextManager[None]
    if database in ("", ":memory:") or database.startswith("file:"):
        lock = contextlib.nullcontext()
    else:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        lock = _file_lock(Path(f"{database}.lock"))
    async with lock, engine.begin() as conn:
        await _migrate_and_seed(conn, demo_users)
    if database and not database.startswith("file:"):
        # Users' rows, job history: readable by this service's user only, whatever the umask.
        await asyncio.to_thread(_private_file, Path(database))


def _private_file(path: Path) -> None:
    if path.is_file():
        path.chmod(0o600)
