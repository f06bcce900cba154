"""Reads of the users table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kk.db.models import User


def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def find_user(engine: AsyncEngine, user_id: int) -> User | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(User).where(User.id == user_id))).first()
    if row is None:
        return None
    return User(id=row.id, name=row.name, email=row.email, created_at=as_utc(row.created_at))


async def user_id_chunks(engine: AsyncEngine, size: int = 10_000) -> AsyncIterator[list[int]]:
    """Every user id, in ascending chunks (keyset paging: no long-held cursor)."""
    last = 0
    while True:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(User.id).where(User.id > last).order_by(User.id).limit(size)
            )
            ids = list(result.scalars())
        if not ids:
            return
        yield ids
        last = ids[-1]
