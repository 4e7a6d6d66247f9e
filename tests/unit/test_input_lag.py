"""The orchestrator's deadline sweep holds off while its own input is behind (pure: time is the only input)."""
from __future__ import annotations

import time

from stream_processors.app import InputLag


def test_a_worker_taking_old_records_is_behind() -> None:
    lag = InputLag()
    lag.saw(time.time() - 8.0)  # the newest record of the batch was written 8 s ago
    assert lag.behind(2.5)
    assert not lag.behind(10.0)


def test_a_worker_taking_fresh_records_is_not_behind() -> None:
    lag = InputLag()
    lag.saw(time.time() - 0.05)
    assert not lag.behind(2.5)


def test_a_worker_that_took_nothing_lately_is_idle_not_behind() -> None:
    lag = InputLag()
    assert not lag.behind(2.5)  # nothing taken yet
    lag.saw(time.time() - 8.0)
    lag.taken_at -= 5.0  # that batch was taken 5 s ago and nothing came since
    assert not lag.behind(2.5, idle_after_s=2.0)


def test_a_record_without_a_timestamp_counts_as_fresh() -> None:
    lag = InputLag()
    lag.saw(None)
    assert not lag.behind(0.0)
