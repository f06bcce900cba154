"""The async engine: SQLite in the data dir by default, PostgreSQL when configured.

Every statement is logged at DEBUG on `kk.db.sql` (with its parameters), so with
`KK_LOG_LEVEL=debug` the log shows exactly which queries reached the database.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kk.config import Settings

sql_log = logging.getLogger("kk.db.sql")

# Plain URLs get the async driver this project ships with.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def database_url(settings: Settings) -> URL:
    raw = settings.database_url or f"sqlite+aiosqlite:///{settings.data_dir / 'kk.sqlite3'}"
    url = make_url(raw)
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(
            f"Unsupported database URL scheme '{url.drivername}': use sqlite:/// or postgresql://"
        )
    return url.set(drivername=driver)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while another process writes (several `kk serve` on one file).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _log_statement(
    _conn: Any,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> None:
    if not sql_log.isEnabledFor(logging.DEBUG):
        return
    shown = f"<{len(parameters)} rows>" if executemany else repr(parameters)
    sql_log.debug("SQL %s | %s", " ".join(statement.split()), shown)


def create_engine(settings: Settings) -> AsyncEngine:
    """Lazy: nothing connects until first use. Pre-ping replaces connections a database
    restart has killed; the connect timeout keeps an unreachable host from hanging requests."""
    url = database_url(settings)
    timeout = settings.db_connect_timeout_s
    if url.get_backend_name() == "sqlite":
        # For sqlite3 `timeout` is how long to wait for another writer's lock.
        engine = create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": timeout})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            pool_timeout=timeout,
            connect_args={"timeout": timeout},
        )
    event.listen(engine.sync_engine, "before_cursor_execute", _log_statement)
    return engine
