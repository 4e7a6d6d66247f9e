"""The stream processors' settings come from the environment, with the shipped values as defaults."""
from __future__ import annotations

import pytest

from stream_processors.app import ORCHESTRATOR_BATCH, ORCHESTRATOR_BATCH_WAIT_S, ProcessorSettings

REQUIRED = {"WALSAGA_KAFKA_BOOTSTRAP": "127.0.0.1:1", "WALSAGA_SAGA_DB_URL": "postgresql://x"}


def test_the_orchestrator_tuning_knobs_default_to_the_shipped_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("WALSAGA_SAGA_BATCH", "WALSAGA_SAGA_BATCH_WAIT_MS", "WALSAGA_PRODUCER_LINGER_MS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    s = ProcessorSettings.from_env()
    assert (s.batch, s.batch_wait_s, s.producer_linger_ms) == (ORCHESTRATOR_BATCH, ORCHESTRATOR_BATCH_WAIT_S, 1)


def test_the_orchestrator_tuning_knobs_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**REQUIRED, "WALSAGA_SAGA_BATCH": "0", "WALSAGA_SAGA_BATCH_WAIT_MS": "2",
                       "WALSAGA_PRODUCER_LINGER_MS": "20"}.items():
        monkeypatch.setenv(key, value)
    s = ProcessorSettings.from_env()
    assert (s.batch, s.batch_wait_s, s.producer_linger_ms) == (1, 0.002, 20)  # a batch is never below one record


def test_a_zero_batch_window_is_raised_to_a_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**REQUIRED, "WALSAGA_SAGA_BATCH_WAIT_MS": "0"}.items():
        monkeypatch.setenv(key, value)
    assert ProcessorSettings.from_env().batch_wait_s == 0.001  # Faust waits for a full batch when the window is 0
