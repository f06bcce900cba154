"""The Redis cache: its key namespace, TTLs, sizes and stampede protection."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CacheSettings(BaseModel):
    # Every cache key lives under this prefix, apart from the queues' `<queue_prefix>:` keys.
    cache_prefix: str = Field("kk:cache:", min_length=1, max_length=64)
    cache_default_ttl_s: int = Field(300, ge=1, le=30 * 86_400)
    cache_max_ttl_s: int = Field(30 * 86_400, ge=1)
    cache_ttl_jitter: float = Field(0.1, ge=0, le=0.5)  # +-10 %: entries don't expire together
    cache_max_value_bytes: int = Field(512 * 1024, ge=64)
    cache_max_batch: int = Field(1000, ge=1, le=100_000)
    cache_max_scan_count: int = Field(500, ge=1, le=10_000)
    cache_negative_ttl_s: int = Field(60, ge=1, le=86_400)  # how long a missing id is remembered
    cache_lock_ms: int = Field(3000, ge=100, le=60_000)  # cross-process single-flight lock
    # Bloom filter of existing user ids; 0 disables it (negative caching still applies).
    cache_bloom_capacity: int = Field(100_000, ge=0, le=100_000_000)
    cache_bloom_refresh_s: int = Field(600, ge=0)  # rebuild period; 0 = only at start
