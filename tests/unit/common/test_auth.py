"""KeyCache: a found key is trusted for its TTL only, a revocation drops it at once, and a lookup that raced one
caches nothing."""

from __future__ import annotations

import time

import pytest

from common.auth import KeyCache, Principal

PRINCIPAL = Principal("k1", "acme", "editor", "k")


def test_a_cached_key_expires_after_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = KeyCache(0.5)
    cache.put("h", PRINCIPAL, cache.generation)
    assert cache.get("h") == PRINCIPAL
    now[0] += 0.5
    assert cache.get("h") is None


def test_forget_drops_every_entry_of_that_key_and_only_those() -> None:
    cache = KeyCache(10)
    other = Principal("k2", "acme", "editor", "o")
    for key_hash, principal in (("h1", PRINCIPAL), ("h2", PRINCIPAL), ("h3", other)):
        cache.put(key_hash, principal, cache.generation)
    cache.forget_key("k1")
    assert cache.get("h1") is None and cache.get("h2") is None and cache.get("h3") == other


def test_a_lookup_that_started_before_a_revocation_is_not_cached() -> None:
    cache = KeyCache(10)
    generation = cache.generation
    cache.forget_key("k9")
    cache.put("h", PRINCIPAL, generation)
    assert cache.get("h") is None


def test_a_zero_ttl_caches_nothing() -> None:
    cache = KeyCache(0)
    cache.put("h", PRINCIPAL, cache.generation)
    assert cache.get("h") is None
