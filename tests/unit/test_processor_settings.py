"""The stream processors' settings come from the environment, with the shipped values as defaults."""
from __future__ import annotations

import pytest

from stream_processors.app import ORCHESTRATOR_BATCH, ProcessorSettings, start_versions
from stream_processors.saga.orchestrator import Orchestrator

REQUIRED = {"WALSAGA_KAFKA_BOOTSTRAP": "127.0.0.1:1", "WALSAGA_SAGA_DB_URL": "postgresql://x"}


def test_the_orchestrator_tuning_knobs_default_to_the_shipped_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("WALSAGA_SAGA_BATCH", "WALSAGA_PRODUCER_LINGER_MS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    s = ProcessorSettings.from_env()
    assert (s.batch, s.producer_linger_ms) == (ORCHESTRATOR_BATCH, 1)


def test_the_orchestrator_tuning_knobs_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**REQUIRED, "WALSAGA_SAGA_BATCH": "0", "WALSAGA_PRODUCER_LINGER_MS": "20"}.items():
        monkeypatch.setenv(key, value)
    s = ProcessorSettings.from_env()
    assert (s.batch, s.producer_linger_ms) == (1, 20)  # a batch is never below one record


def test_new_sagas_can_be_pinned_to_a_version_of_the_catalog() -> None:
    assert start_versions(" place_order=1, refund_order=1 ") == {"place_order": 1, "refund_order": 1}
    assert start_versions("") == {}
    with pytest.raises(ValueError, match="not <saga>=<version>"):
        start_versions("place_order")
    pinned = Orchestrator(None, start_versions={"place_order": 1})  # type: ignore[arg-type]  # no database needed
    assert pinned.starting["place_order"].version == 1
    assert Orchestrator(None).starting["place_order"].version == 2  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot start on v7"):
        Orchestrator(None, start_versions={"place_order": 7})  # type: ignore[arg-type]
