"""The orchestrator's cache of the sagas it wrote last (stream_processors/saga/cache.py): what it keeps and for how
long. Whether a cached copy may be used is the saga database's call (tests/integration/test_orchestrator_batches.py)."""
from __future__ import annotations

from stream_processors.saga.cache import SagaCache
from stream_processors.saga.model import SagaState, SagaStatus


def _saga(saga_id: str, status: SagaStatus = SagaStatus.RUNNING, version: int = 1) -> SagaState:
    return SagaState(saga_id, "place_order", status, 0, {}, (), version=version)


def test_it_keeps_the_last_write_of_each_saga() -> None:
    cache = SagaCache()
    cache.put_all({"a": (_saga("a", version=1), ()), "b": (_saga("b"), ())})
    cache.put_all({"a": (_saga("a", version=2), ())})
    found = cache.get("a")
    assert found is not None and found[0].version == 2
    assert cache.get("c") is None and len(cache) == 2


def test_a_saga_that_is_over_or_gone_is_not_kept() -> None:
    cache = SagaCache()
    cache.put_all({"a": (_saga("a"), ()), "b": (_saga("b"), ())})
    cache.put_all({"a": (_saga("a", SagaStatus.COMPLETED, 3), ()), "b": None})
    assert cache.get("a") is None and cache.get("b") is None and len(cache) == 0


def test_past_its_capacity_the_least_recently_written_go_first() -> None:
    cache = SagaCache(capacity=2)
    cache.put_all({"a": (_saga("a"), ()), "b": (_saga("b"), ())})
    cache.put_all({"a": (_saga("a", version=2), ())})  # written again: now the most recent
    cache.put_all({"c": (_saga("c"), ())})
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_dropped_is_gone() -> None:
    cache = SagaCache()
    cache.put_all({"a": (_saga("a"), ())})
    cache.drop("a")
    cache.drop("never-there")
    assert cache.get("a") is None
