"""Bodies and answers of /api/cache-demo and /api/cache."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from kk.json_text import shallow
from kk.schemas import Envelope

# A value as a client sends it: any JSON of bounded nesting.
JsonValue = Annotated[Any, BeforeValidator(shallow)]

T = TypeVar("T")


class MessageEnvelope(Envelope[T], Generic[T]):
    message: str


class CacheCounters(BaseModel):
    hits: int
    misses: int
    sets: int
    deletes: int
    hitRate: float = Field(description="hits / (hits + misses) * 100, one decimal; 0 if none")
    totalOperations: int = Field(description="hits + misses + sets + deletes")


class DemoValue(BaseModel):
    message: str
    timestamp: str
    random: float


class BasicDemo(BaseModel):
    original: DemoValue
    cached: Any = Field(description="the value read back (null if it was already gone)")
    exists: bool
    ttl: int = Field(description="seconds left; -2 when the key is gone")
    stats: CacheCounters


class UserView(BaseModel):
    id: str
    name: str
    email: str
    createdAt: str


class ProtectedLookup(BaseModel):
    user: UserView
    duration: str = Field(examples=["15ms"])
    fromCache: bool


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str] = Field(description="cache keys, unique")
    values: list[JsonValue] = Field(description="JSON values, one per key")
    ttl: int | None = Field(None, ge=1, description="seconds (default from settings), +- jitter")


class BatchResult(BaseModel):
    count: int
    keys: list[str]
    ttl: int = Field(description="base TTL in seconds; each key gets it +- jitter")


class RedisBrief(BaseModel):
    version: str
    uptime: int
    memory: str = Field(examples=["2.50MB"])
    clients: int
    operations: int


class CacheStats(BaseModel):
    cache: CacheCounters
    redis: RedisBrief


class PutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: JsonValue = Field(description="any JSON value, null included")
    ttl: int | None = Field(None, ge=1, description="seconds; default from settings")


class CacheEntry(BaseModel):
    key: str
    value: Any
    ttl: int = Field(description="seconds left; -1 without expiry")


class PutResult(BaseModel):
    key: str
    ttl: int


class DeleteResult(BaseModel):
    key: str
    deleted: Literal[True] = True


class KeyPage(BaseModel):
    keys: list[str]
    cursor: str = Field(description="pass back to continue; '0' when the scan is complete")
    done: bool
