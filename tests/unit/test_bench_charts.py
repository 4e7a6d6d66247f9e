"""The benchmark's charts render from a results list (so `make bench` never fails at its last step)."""
from __future__ import annotations

from pathlib import Path

from bench import charts


def _step(rate: float) -> dict:
    return {"offered_per_s": rate, "completed_per_s": rate * 0.9, "stack_rss_mib": 2000.0 + rate,
            "saga_ms": {"p50": 100.0, "p95": 300.0, "p99": 500.0 + rate},
            "cdc_hop_ms": {"p50": 7.0, "p99": 30.0}}


def test_every_chart_is_a_png(tmp_path: Path) -> None:
    written = charts.render([_step(10), _step(20), _step(40)], tmp_path)
    assert sorted(p.name for p in written) == sorted(charts.CHARTS)
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
