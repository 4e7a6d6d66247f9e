"""The soak's verdict: a table that levelled off over the last third of the run is flat, one that kept climbing is
not, and the report marks each and says whether every bounded table levelled off."""
from __future__ import annotations

from bench.soak import BOUNDED, GROWING, Sample, report, soak_config, verdict


def _samples(level: dict[tuple[str, str], list[int]]) -> list[Sample]:
    n = len(next(iter(level.values())))
    return [Sample(30.0 * i, {key: values[i] for key, values in level.items()}) for i in range(n)]


def test_a_table_that_stops_climbing_is_flat_and_one_that_climbs_is_not() -> None:
    samples = _samples({("orders", "outbox"): [0, 50, 90, 100, 104, 98, 101, 103, 40],
                        ("orders", "inbox"): [0, 90, 80, 70, 60, 55, 50, 45, 10],
                        ("orders", "idempotency_key"): [0] * 9,
                        ("orders", "orders"): [0, 50, 100, 150, 200, 250, 300, 350, 360]})
    assert verdict(samples, ("orders", "outbox"))[0] == "levelled off"
    assert verdict(samples, ("orders", "inbox"))[0] == "levelled off"  # shrinking is bounded too
    assert verdict(samples, ("orders", "idempotency_key"))[0] == "unused"
    state, change = verdict(samples, ("orders", "orders"))
    assert state == "growing" and change > 0.3


def test_the_report_names_every_table_and_the_overall_verdict() -> None:
    flat = [0, 40, 80, 100, 100, 101, 99, 100, 100]
    climbing = [0, 40, 80, 120, 160, 200, 240, 280, 320]
    samples = _samples({**{k: flat for k in BOUNDED}, **{k: climbing for k in GROWING}})
    text = report(soak_config(), samples, 15, 4, 3600, {})
    assert all(f"| {db}.{table} (bounded) |" in text for db, table in BOUNDED)
    assert "every bounded table levelled off" in text
    samples[-2].counts[BOUNDED[0]] = 200  # the last sample during the load
    assert "NOT every bounded table levelled off" in report(soak_config(), samples, 15, 4, 3600, {})


def test_the_soak_stack_compresses_retention_and_prunes_often() -> None:
    cfg = soak_config()
    assert cfg.retention_scale < 1 / 1000 and cfg.prune_interval <= 10
