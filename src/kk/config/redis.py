"""Redis and database settings: where the servers are and how long to wait for them."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field, ValidationInfo, field_validator

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def redis_mode_of(url: str) -> str:
    """How a URL connects: "sentinel", "cluster" or "standalone" (redis://, rediss://, unix://)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    return "standalone"


class RedisSettings(BaseModel):
    # Unset = start a private embedded server in the data dir.
    redis_url: str | None = None
    cache_redis_url: str | None = None
    # Longest an API call waits for Redis: a Redis that does not answer (hung, paused,
    # saturated) gets a 503 within this bound. KK_REDIS_ANSWER_TIMEOUT_S, or its older name
    # KK_REDIS_TIMEOUT_S (the first wins when both are set).
    redis_timeout_s: float = Field(
        3.0,
        gt=0,
        le=60,
        validation_alias=AliasChoices(
            "kk_redis_answer_timeout_s",
            "kk_redis_timeout_s",
            "redis_answer_timeout_s",
            "redis_timeout_s",
        ),
    )
    # Every queue key is `<queue_prefix>:<queue>:...` (BullMQ's `prefix`).
    queue_prefix: str = "bull"

    @field_validator("queue_prefix", mode="after")
    @classmethod
    def _hash_tag_on_cluster(cls, prefix: str, info: ValidationInfo) -> str:
        # BullMQ's Lua scripts touch many keys of a queue: on a cluster they must share a
        # slot, which a hash tag in the prefix guarantees.
        url = info.data.get("redis_url")
        if url and "{" not in prefix and redis_mode_of(url) == "cluster":
            return "{" + prefix + "}"
        return prefix


class DatabaseSettings(BaseModel):
    # Unset = SQLite file `kk.sqlite3` in the data dir.
    database_url: str | None = None
    db_connect_timeout_s: float = Field(3.0, gt=0, le=60)
    db_query_timeout_ms: int = Field(5000, ge=50, le=60_000)
    demo_users: int = Field(1000, ge=0, le=1_000_000)  # seeded once, into an empty table
