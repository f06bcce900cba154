"""Cache key names as clients see them, and their Redis keys under the cache prefix.

A client's key `k` is stored as `<cache_prefix>k` and nothing else: the queues' keys
(`<queue_prefix>:...`, kept apart by a settings check) can't be named. Names starting with
`__` are the cache's own (counters, locks, the Bloom filter) and are refused.

On a Redis Cluster the prefix is hash-tagged (`kk:cache:` becomes `{kk:cache:}`): a cache
Lua script touches a value, the shared counters and the Bloom filter in one call, which a
cluster only allows within one slot. The cache then lives on the node that owns that slot
(as the queues do under `{bull}`). Elsewhere key names are unchanged.
"""

from __future__ import annotations

import re

from redis.asyncio.cluster import RedisCluster

from kk.errors import AppError, ErrorCode
from kk.json_text import is_unicode

MAX_KEY_LENGTH = 256
RESERVED = "__"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_HASH_TAG = re.compile(r"\{[^{}]+\}")  # what Redis Cluster hashes instead of the whole key


def cache_prefix(prefix: str, cluster: bool) -> str:
    """The prefix every cache key starts with, on a cluster or not. A prefix that already
    holds a `{...}` hash tag is used as it is."""
    if cluster and not _HASH_TAG.search(prefix):
        return "{" + prefix + "}"
    return prefix


def stats_key(prefix: str) -> str:
    """The hash of shared counters (hits, misses, sets, deletes) under a cache prefix."""
    return f"{prefix}{RESERVED}stats"


def is_cluster(redis: object) -> bool:
    return isinstance(redis, RedisCluster)


def check_key(name: str, what: str = "key") -> str:
    if not name:
        raise AppError(ErrorCode.VALIDATION_ERROR, f"The {what} must not be empty")
    if len(name) > MAX_KEY_LENGTH:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, f"The {what} is longer than {MAX_KEY_LENGTH} characters"
        )
    if _CONTROL.search(name):
        raise AppError(ErrorCode.VALIDATION_ERROR, f"The {what} contains control characters")
    if not is_unicode(name):  # a lone surrogate from a JSON body
        raise AppError(ErrorCode.VALIDATION_ERROR, f"The {what} is not valid Unicode")
    if name.startswith(RESERVED):
        raise AppError(ErrorCode.VALIDATION_ERROR, f"Keys starting with '{RESERVED}' are reserved")
    return name


def check_pattern(pattern: str) -> str:
    if len(pattern) > MAX_KEY_LENGTH or _CONTROL.search(pattern):
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"The pattern must be at most {MAX_KEY_LENGTH} printable characters",
        )
    return pattern or "*"


def glob_escape(text: str) -> str:
    """`text` matched literally by Redis' MATCH (so a prefix can't act as a wildcard)."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)
