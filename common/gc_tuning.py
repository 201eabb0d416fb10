"""Garbage-collector settings for the long-running services, applied once their clients and caches exist.

The engine allocates many short-lived objects per transition (messages, decisions, replies) while holding many
long-lived ones (cached IRs, pools, modules): with CPython's default thresholds a collection runs every 700
allocations and the older generations, full of objects that live for good, are walked again and again. Profiles
of the coordinator and the worker put that at about a quarter of their CPU per transition.
"""

from __future__ import annotations

import gc

# Net allocations between young collections: reference counting frees almost everything, cycles wait a little.
GEN0_THRESHOLD = 100_000


def settle_heap() -> None:
    """Move what exists now out of the collector's sight (it lives as long as the process) and collect the young
    generation less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
