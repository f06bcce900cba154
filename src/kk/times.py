"""Times as the contract writes them: ISO 8601 in UTC with a `Z`, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal


def iso_z(dt: datetime, timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """`2026-01-02T03:04:05.678Z`; a naive datetime is taken as UTC (SQLite keeps no zone)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_from_ms(ms: float) -> str:
    """An epoch time in milliseconds (BullMQ's timestamps, stream ids) as ISO 8601."""
    return iso_z(datetime.fromtimestamp(ms / 1000, UTC))


def utc_now_iso() -> str:
    return iso_z(datetime.now(UTC))
