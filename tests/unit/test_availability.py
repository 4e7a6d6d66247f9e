"""The availability run's arithmetic (bench/availability.py, bench/availability_report.py): which answers count as
unavailable, each fault window's cost, and the verdicts against 99.9 %, 0 lost and 0 doubled."""
from __future__ import annotations

from pathlib import Path

from bench.availability import Attempt, Plan, Run, saga_ms_by_window, summarize, unavailable, windows
from bench.availability_report import render, verdicts
from bench.measure import percentiles
from walsaga.stack.config import Ports, StackConfig


def test_only_5xx_timeouts_and_refused_connections_are_unavailable() -> None:
    assert [unavailable(Attempt(0, "write", o)) for o in ("ok", "4xx:429", "4xx:409", "5xx:502", "timeout",
                                                          "connection")] == [False, False, False, True, True, True]


def _run() -> Run:
    run = Run()
    run.attempts = [Attempt(float(t), "write", "ok") for t in range(100)]
    run.attempts += [Attempt(35.0, "write", "5xx:502"), Attempt(38.5, "write", "timeout"),
                     Attempt(36.0, "read", "connection"), Attempt(100.0, "read", "ok")]
    run.accepted = {f"k{i}": f"o{i}" for i in range(100)}
    run.faults = [{"fault": "kill -9 something", "at_s": 30.0, "target": "x", "healed_at_s": 60.0},
                  {"fault": "pause something", "at_s": 90.0, "target": "y", "healed_at_s": 120.0}]
    return run


def test_summary_counts_attempts_orders_and_each_fault_window() -> None:
    s = summarize(_run(), Plan(fault_every_s=60.0))
    assert s["writes"] == {"attempts": 102, "failed": {"5xx:502": 1, "timeout": 1},
                           "available_pct": round(100 * 100 / 102, 3)}
    assert s["reads"]["available_pct"] == 50.0
    assert s["orders"] == 100 and s["orders_available_pct"] == 100.0
    first, second = s["faults"]
    assert first["write_outage_s"] == 3.5 and first["writes"]["attempts"] == 62  # t=30..89 and the two failures
    assert second["write_outage_s"] == 0.0 and second["writes"]["failed"] == {}


def _results(writes: float, lost: int = 0, unnamed: int = 0, unanswered: int = 0,
             divergences: int = 0) -> dict[str, object]:
    share = {"attempts": 1000, "failed": {}, "available_pct": writes}
    return {"summary": {"writes": share, "reads": share, "orders_available_pct": 100.0,
                        "unanswered_after_retries": unanswered},
            "checks": {"accepted_not_stored": lost, "sagas_not_ended": 0, "stored_not_accepted": unnamed,
                       "divergences": divergences, "divergences_by_kind": {}}}


def test_verdicts() -> None:
    assert all(v == "met" for _, _, v in verdicts(_results(99.95)))
    rows = {t: v for t, _, v in verdicts(_results(99.5, lost=1, unnamed=2, unanswered=1, divergences=3))}
    assert rows["writes answered without a 5xx or timeout (per attempt) ≥ 99.9 %"] == "missed by 0.400 points"
    assert rows["0 lost (accepted orders stored, every saga ended)"] == "missed"
    assert rows["0 doubled (no order that no answer names, beyond the unanswered requests)"] == "missed"
    assert rows["`walsaga reconcile` finds no divergence"] == "missed"


def test_saga_latency_per_fault_window_and_the_report_renders(tmp_path: Path) -> None:
    run, plan = _run(), Plan(fault_every_s=60.0)
    run.accepted_at = {f"o{i}": float(i) for i in range(100)}
    latency = {f"o{i}": 100.0 + i for i in range(100)}
    first, second = saga_ms_by_window(run, plan, latency)
    assert first["p50"] == 159.0 and second["max"] == 199.0  # o30..o89, then o90..o99
    results = {"plan": plan.__dict__, "heal_after_s": 30.0, "settle_s": 20.0, "attempts_per_write": 5,
               "timeout_s": 10.0,
               "summary": summarize(run, plan),
               "checks": {"accepted_orders": 100, "accepted_not_stored": 0, "stored_not_accepted": 0,
                          "sagas_not_ended": 0, "saga_ms": percentiles(latency.values()),
                          "saga_ms_by_window": [first, second], "order_outcomes": {"CONFIRMED": 90},
                          "divergences": 0, "divergences_by_kind": {}}}
    text = render(StackConfig(home=tmp_path, ports=Ports(5000)), results)
    assert "| 30 | kill -9 something | x | 62 | 5xx:502 1, timeout 1 | 3.5 |" in text
    assert "159.0 / " in text and "Orders by outcome: CONFIRMED 90" in text


def test_a_window_ends_at_the_next_fault() -> None:
    run = Run()
    run.faults = [{"at_s": 30.0}, {"at_s": 70.0}, {"at_s": 150.0}]
    assert windows(run, Plan(fault_every_s=60.0)) == [(30.0, 70.0), (70.0, 130.0), (150.0, 210.0)]
