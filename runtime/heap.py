"""Python's garbage collector kept off the hot path of the long-running processes.

With the defaults (a collection every 700 new container objects) a worker batch of 10,000
decoded events, with their dicts and rows, sets off hundreds of collections, and each older-
generation pass walks every object the process ever made: half of what decoding an event cost.
The objects made while starting (modules, models, the apps) live as long as the process, so they
are frozen out of every pass, and collections of young objects wait for 50,000 of them. Memory is
still freed by reference counting as before; only cycles wait a little longer.
"""

from __future__ import annotations

import gc

YOUNG_OBJECTS = 50_000


def settle() -> None:
    """Call once the process has built what it runs, before it starts serving."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, middle, old)
