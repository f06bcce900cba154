"""A Bloom filter of user ids, kept in Redis as a plain bitmap (GETBIT/SET).

Built in memory from the users table and written with one SET, so readers never see half a
filter. "Absent" is certain; "maybe present" goes on to the cache and the database. Sizes
come from the configured capacity, so every process computes the same bits and key.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

ERROR_RATE = 0.01


@dataclass(frozen=True)
class BloomFilter:
    bits: int
    hashes: int

    @classmethod
    def for_capacity(cls, capacity: int, error_rate: float = ERROR_RATE) -> BloomFilter:
        bits = math.ceil(-capacity * math.log(error_rate) / math.log(2) ** 2)
        hashes = max(1, round(bits / capacity * math.log(2)))
        return cls(bits=bits, hashes=hashes)

    @property
    def name(self) -> str:
        return f"{self.bits}:{self.hashes}"

    def offsets(self, item: int | str) -> list[int]:
        # Double hashing (Kirsch-Mitzenmacher) from one 128-bit digest: k positions.
        digest = hashlib.blake2b(str(item).encode(), digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "big")
        h2 = int.from_bytes(digest[8:], "big") | 1
        return [(h1 + i * h2) % self.bits for i in range(self.hashes)]

    def new_bitmap(self) -> bytearray:
        return bytearray((self.bits + 7) // 8)

    def add_all(self, bitmap: bytearray, items: Iterable[int | str]) -> None:
        for item in items:
            for offset in self.offsets(item):
                bitmap[offset >> 3] |= 0x80 >> (offset & 7)  # Redis: bit 0 is the MSB
