"""Demo users for the cache demo: user N is "User N", userN@example.com."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from kk.db.models import User

_CHUNK = 5000  # rows per INSERT: bounded memory and statement size


async def seed_demo_users(conn: AsyncConnection, count: int) -> int:
    """Fill an empty users table with `count` users; a table with rows is left alone."""
    if count <= 0 or await conn.scalar(select(func.count()).select_from(User)):
        return 0
    now = datetime.now(UTC)
    for first in range(1, count + 1, _CHUNK):
        rows = [
            {"id": i, "name": f"User {i}", "email": f"user{i}@example.com", "created_at": now}
            for i in range(first, min(first + _CHUNK, count + 1))
        ]
        await conn.execute(insert(User), rows)
    if conn.dialect.name == "postgresql":
        # Explicit ids don't advance the serial sequence: move it past them.
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence('users', 'id'), :last)"), {"last": count}
        )
    return count
