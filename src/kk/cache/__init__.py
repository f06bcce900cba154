"""The Redis cache: JSON values under a key namespace of its own, shared hit/miss counters,
and a cache-aside read of database users protected against penetration and stampedes."""
