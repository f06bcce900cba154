"""hitRate and totalOperations as the contract defines them, and the Bloom filter's maths."""

from __future__ import annotations

import pytest

from kk.cache.bloom import BloomFilter
from kk.cache.service import Counters


@pytest.mark.parametrize(
    ("hits", "misses", "rate"),
    [(150, 25, 85.7), (0, 0, 0.0), (0, 5, 0.0), (5, 0, 100.0), (1, 7, 12.5), (1, 15, 6.3),
     (2, 1, 66.7), (1, 2, 33.3)],
)  # fmt: skip
def test_hit_rate_is_one_decimal_rounded_half_up(hits, misses, rate):
    assert Counters(hits, misses, 0, 0).hit_rate == rate


def test_total_operations_counts_every_kind():
    assert Counters(150, 25, 100, 10).total == 285  # the contract's example


def test_bloom_filter_has_no_false_negatives_and_few_false_positives():
    bloom = BloomFilter.for_capacity(10_000)
    assert bloom.hashes == 7 and 95_000 < bloom.bits < 96_000
    bitmap = bloom.new_bitmap()
    bloom.add_all(bitmap, range(1, 10_001))

    def maybe(item: int) -> bool:
        return all(bitmap[o >> 3] & (0x80 >> (o & 7)) for o in bloom.offsets(item))

    assert all(maybe(i) for i in range(1, 10_001))
    false_positives = sum(maybe(i) for i in range(1_000_000, 1_020_000))
    assert false_positives < 20_000 * 0.02  # designed for 1 %
