"""Databases and servers for the cache and database tests.

`database` is parametrized: SQLite always, PostgreSQL when KK_TEST_DATABASE_URL names a
server. On PostgreSQL every use gets a database of its own (`kk_test_<random>`), created
here and dropped here; nothing else on that server is touched.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.server import KKServer

PG_ENV = "KK_TEST_DATABASE_URL"
# The statement the protection route runs, as the server logs it at DEBUG (kk.db.sql):
# "SQL SELECT users.id, ... FROM users WHERE users.id = ? | (123,)" ($1::INTEGER on PG).
USER_QUERY = re.compile(
    r"kk\.db\.sql: SQL SELECT users\.id, users\.name, users\.email, users\.created_at "
    r"FROM users WHERE users\.id = \S+ \| \((\d+),\)"
)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from sync or async test code (in a thread of its own,
    so it never meets the test's event loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


@dataclass
class Database:
    kind: str  # "sqlite" | "postgresql"
    url: str

    async def _query(self, sql: str, params: dict[str, Any] | None) -> list[tuple[Any, ...]]:
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return run(self._query(sql, params))

    def scalar(self, sql: str, **params: Any) -> Any:
        rows = self.query(sql, **params)
        return rows[0][0] if rows else None


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def fresh_postgres(base_url: str) -> Iterator[str]:
    base = make_url(base_url).set(drivername="postgresql+asyncpg")
    name = f"kk_test_{uuid.uuid4().hex[:12]}"
    admin = base.render_as_string(hide_password=False)
    run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def make_database(kind: str, directory: Path) -> Iterator[Database]:
    if kind == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        yield Database("sqlite", f"sqlite+aiosqlite:///{directory / 'kk.sqlite3'}")
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    with fresh_postgres(base) as url:
        yield Database("postgresql", url)


DB_KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def cache_env(base: dict[str, str], database: Database, **extra: str) -> dict[str, str]:
    """A server of the cache tests: no workers (it must not take the suite's jobs), its own
    cache namespace on the shared Redis, the given database, SQL logged at DEBUG."""
    env = {
        **base,
        "KK_RUN_WORKERS": "false",
        "KK_CACHE_PREFIX": f"kkc-{uuid.uuid4().hex[:8]}:",
        "KK_DATABASE_URL": database.url,
        "KK_LOG_LEVEL": "debug",
    }
    env.update(extra)
    return env


def user_queries(*servers: KKServer) -> Counter[int]:
    """How many times each user id was queried from the database, per the servers' logs."""
    counts: Counter[int] = Counter()
    for srv in servers:
        counts.update(int(m.group(1)) for m in USER_QUERY.finditer(srv.log()))
    return counts
