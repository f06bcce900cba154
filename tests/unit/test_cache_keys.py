"""Cache key names: hash-tagged on a Redis Cluster only, unchanged elsewhere."""

from __future__ import annotations

from kk.cache.keys import cache_prefix, stats_key


def test_the_prefix_is_hash_tagged_on_a_cluster_only() -> None:
    assert cache_prefix("kk:cache:", cluster=False) == "kk:cache:"
    assert cache_prefix("kk:cache:", cluster=True) == "{kk:cache:}"
    assert cache_prefix("{app}:cache:", cluster=True) == "{app}:cache:"  # tagged already
    assert stats_key("kk:cache:") == "kk:cache:__stats"
    assert stats_key("{kk:cache:}") == "{kk:cache:}__stats"
