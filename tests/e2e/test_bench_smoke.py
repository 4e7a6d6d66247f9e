"""The benchmark harness on a tiny step (no thresholds: speed is measured by `make bench`, never asserted here)."""
from __future__ import annotations

import math

import pytest

from bench.run import run
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def test_benchmark_harness_measures_a_tiny_step(stack: StackConfig) -> None:
    (step,) = run(stack, [5.0], 2.0)
    assert step.accepted == 10 and step.errors == {}
    assert step.unfinished_after_drain == 0
    assert step.saga_ms["p50"] > 0 and step.saga_ms["max"] >= step.saga_ms["p50"]
    assert not math.isnan(step.cdc_hop_ms["p50"])
    assert step.stack_rss_mib > 0
