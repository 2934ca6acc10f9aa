"""The Bloom filter of stored ids: never a false "not stored", few false "maybe"."""

from __future__ import annotations

import uuid

import numpy as np

from processors.storage.id_filter import MIN_CAPACITY, IdFilter, id_hashes


def keys(n: int, tenant: str = "acme") -> list[tuple[str, str]]:
    return [(tenant, str(uuid.uuid4())) for _ in range(n)]


def test_every_added_id_may_be_held_and_few_others_are() -> None:
    added, others = id_hashes(keys(50_000)), id_hashes(keys(50_000))
    known = IdFilter(100_000)
    for start in range(0, len(added), 2000):  # as batches add them
        known.add(added[start : start + 2000])
    assert known.may_hold(added).all()
    assert known.may_hold(others).mean() < 0.001
    assert known.count == 50_000 and not known.full


def test_a_bulk_load_holds_what_adding_one_by_one_holds() -> None:
    hashes = id_hashes(keys(5_000))
    loaded, added = IdFilter(10_000, hashes), IdFilter(10_000)
    added.add(hashes)
    probe = np.concatenate([hashes, id_hashes(keys(5_000))])
    assert (loaded.may_hold(probe) == added.may_hold(probe)).all()
    assert loaded.count == added.count == 5_000


def test_past_its_capacity_a_filter_says_so_and_still_misses_nothing() -> None:
    known = IdFilter(MIN_CAPACITY)
    hashes = np.random.default_rng(7).integers(0, 2**63, MIN_CAPACITY + 1, dtype=np.uint64)
    known.add(hashes)
    assert known.full and known.may_hold(hashes).all()


def test_the_hash_keeps_tenants_apart() -> None:
    [a, b] = id_hashes([("acme", "m-1"), ("globex", "m-1")])
    assert a != b
    assert len(id_hashes([])) == 0
