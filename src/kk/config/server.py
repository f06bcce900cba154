"""Where the service listens, where it keeps its files, how it logs."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # The embedded Redis, SQLite, session secret, outbox, storage and temp files live here.
    data_dir: Path = Path("./data")
    log_level: str = "info"
    # A request's line and headers: larger heads get 431; a head not complete this long
    # after its first byte closes the connection (slow senders holding connections).
    max_header_bytes: int = Field(64 * 1024, ge=8 * 1024, le=1024 * 1024)
    http_head_timeout_s: float = Field(10.0, gt=0, le=300)
    log_json: bool = False

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"
