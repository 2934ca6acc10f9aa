"""A Bloom filter of the (tenant, messageId) stored from one Kafka partition.

Almost every id a batch brings is new. Asking ClickHouse about each one costs more the more
events are stored (every id touches its own granule of the id-sorted projection: 24 ms per 2,000
ids at 100k stored, 2.8 s at 20M), so the store asks only about the ids this filter may hold:
copies and redeliveries, plus a false positive now and then. A filter never misses an id that
was added to it, so "not in the filter" is proof enough that an id is new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

HASHES = 7  # bit positions per id
BITS_PER_ID = 20  # with 7 positions: about 2 false positives in 10,000 at capacity
MIN_CAPACITY = 1_000_000

# The same 64-bit hash computed by ClickHouse, so a filter is loaded from a table in one query
ID_HASH_SQL = "reinterpretAsUInt64(MD5(concat(tenant, '\\0', message_id)))"

Hashes = npt.NDArray[np.uint64]


def id_hashes(keys: Iterable[tuple[str, str]]) -> Hashes:
    """ID_HASH_SQL of each (tenant, messageId), in Python."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.md5(f"{tenant}\0{message_id}".encode()).digest()[:8], "little")
            for tenant, message_id in keys
        ),
        dtype=np.uint64,
    )


class IdFilter:
    """Sized for `capacity` ids (BITS_PER_ID bits each, packed); past it false positives grow,
    nothing else changes, and `full` tells the owner to load a larger one."""

    def __init__(self, capacity: int = MIN_CAPACITY, hashes: Hashes | None = None) -> None:
        self.capacity = max(capacity, MIN_CAPACITY)
        self.count = 0
        self._bits = np.uint64(self.capacity * BITS_PER_ID)
        if hashes is None or not len(hashes):
            self._bytes = np.zeros((int(self._bits) + 7) // 8, dtype=np.uint8)
            return
        # a bulk load: one byte per bit while setting (fast), packed once at the end
        unpacked = np.zeros(int(self._bits), dtype=np.bool_)
        unpacked[self._positions(hashes).ravel()] = True
        self._bytes = np.packbits(unpacked, bitorder="little")
        self.count = len(hashes)

    @property
    def full(self) -> bool:
        return self.count > self.capacity

    def add(self, hashes: Hashes) -> None:
        positions = self._positions(hashes).ravel()
        masks = np.left_shift(np.uint8(1), (positions & np.uint64(7)).astype(np.uint8))
        np.bitwise_or.at(self._bytes, positions >> np.uint64(3), masks)
        self.count += len(hashes)

    def may_hold(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        """Per hash: False when the id was certainly never added."""
        if not len(hashes):
            return np.zeros(0, dtype=np.bool_)
        positions = self._positions(hashes)
        bits = (
            self._bytes[positions >> np.uint64(3)] >> (positions & np.uint64(7)).astype(np.uint8)
        ) & np.uint8(1)
        found: npt.NDArray[np.bool_] = bits.astype(np.bool_).all(axis=1)
        return found

    def _positions(self, hashes: Hashes) -> npt.NDArray[np.uint64]:
        # double hashing: position i = h1 + i·h2 (Kirsch and Mitzenmacher), both halves of one
        # 64-bit hash; h2 odd so the positions never collapse onto one
        h1 = hashes & np.uint64(0xFFFFFFFF)
        h2 = (hashes >> np.uint64(32)) | np.uint64(1)
        steps = np.arange(HASHES, dtype=np.uint64)
        positions: npt.NDArray[np.uint64] = (h1[:, None] + steps * h2[:, None]) % self._bits
        return positions
