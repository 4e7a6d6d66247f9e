"""CPU cost per saga (bench/cost.py) and its targets in the report: what is counted where, and how it is judged."""
from __future__ import annotations

import subprocess
import sys
import time

from bench.cost import (
    COMPONENTS,
    Cost,
    by_component,
    component_of,
    cost,
    per_saga,
    statements_table,
    table,
    tree_seconds,
)
from bench.report import cost_section, cost_targets


def test_every_process_of_the_stack_has_its_component() -> None:
    assert component_of("processors-0") == "orchestrator + notification fan-out"
    assert component_of("payments-consumer") == component_of("inventory-consumer-1") == "participant consumers"
    assert component_of("views-1") == "views"
    assert component_of("reconciler-0") == "reconciler"
    assert component_of("postgres[saga]") == "PostgreSQL"
    assert component_of("kafka") == "Kafka broker"
    assert component_of("connect") == "Kafka Connect"
    assert component_of("orders-api-1") == component_of("queries-api-0") == "service APIs"
    assert component_of("gateway") == "gateway (nginx)"
    assert component_of("dtm") == "DTM server"
    assert component_of("something-else") == "other"


def test_components_add_up_and_unknown_processes_are_kept() -> None:
    grouped = by_component({"orders-consumer": 1.0, "payments-consumer": 2.0, "kafka": 0.5, "mystery": 0.25})
    assert grouped["participant consumers"] == 3.0
    assert grouped["Kafka broker"] == 0.5
    assert grouped["other"] == 0.25
    assert set(COMPONENTS) <= set(grouped)


def test_cost_per_saga_is_gross_and_net_of_the_idle_rate() -> None:
    before = (100.0, {"Kafka Connect": 10.0, "views": 1.0})
    after = (110.0, {"Kafka Connect": 13.0, "views": 2.0})
    c = cost("10/s", 10.0, 100, before, after, idle={"Kafka Connect": 0.2, "views": 0.0})
    assert c.gross_ms == {"Kafka Connect": 30.0, "views": 10.0}
    assert c.net_ms == {"Kafka Connect": 10.0, "views": 10.0}  # 3 s used, 2 s of them idling, over 100 sagas
    assert c.total_gross_ms == 40.0 and c.total_net_ms == 20.0
    assert c.idle_percent == {"Kafka Connect": 20.0, "views": 0.0}
    assert Cost.from_dict(c.as_dict()) == c


def test_statements_per_saga_are_the_counts_growth_over_the_completed_sagas() -> None:
    assert per_saga({"orders": 1000, "saga": 50}, {"orders": 1167, "saga": 286, "views": 9}, 10) == \
        {"orders": 16.7, "saga": 23.6}  # a database missing from the first count is left out
    assert per_saga({"orders": 5}, {"orders": 5}, 0) == {"orders": 0.0}


def test_the_statements_table_has_a_row_per_database_and_their_sum() -> None:
    c = cost("10/s", 10.0, 100, (0.0, {"views": 0.0}), (10.0, {"views": 1.0}), idle={})
    assert statements_table([c]) == []  # a report from before the count: no table
    c.statements = {"orders": 16.7, "saga": 23.6}
    rows = statements_table([c])
    assert rows[0] == "| database | 10/s |"
    assert "| orders | 16.7 |" in rows and "| saga | 23.6 |" in rows and "| views | 0.0 |" in rows
    assert rows[-1] == "| **all** | **40.3** |"
    assert Cost.from_dict(c.as_dict()) == c
    assert Cost.from_dict({k: v for k, v in c.as_dict().items() if k != "statements"}).statements == {}


def test_net_never_goes_negative_when_a_component_idled_more_than_usual() -> None:
    c = cost("x", 1.0, 10, (0.0, {"views": 1.0}), (10.0, {"views": 1.5}), idle={"views": 0.1})
    assert c.net_ms["views"] == 0.0


def test_a_process_tree_counts_its_children_live_and_reaped() -> None:
    # a parent that runs a busy child to completion (reaped: its time lands in the parent's cutime) and keeps a
    # second busy child alive (counted directly)
    code = ("import subprocess, sys, time\n"
            "busy = 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass\\n'\n"
            "subprocess.run([sys.executable, '-c', busy])\n"
            "live = subprocess.Popen([sys.executable, '-c', busy + 'time.sleep(30)'])\n"
            "print('ready', flush=True); live.wait()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline, used = time.monotonic() + 10, 0.0
        while used < 0.55 and time.monotonic() < deadline:  # the live child is still burning its 0.3 s
            used = tree_seconds({"tree": proc.pid})["tree"]
        assert used >= 0.55, used  # both children's 0.3 s each (minus clock-tick rounding)
    finally:
        subprocess.run(["pkill", "-P", str(proc.pid)], check=False)
        proc.kill()
        proc.wait()


def _step(offered: float, completed: float, p50: float, p99: float, total: float | None = None,
          idle_connect: float = 10.0, component: str = "views") -> dict:
    step = {"offered_per_s": offered, "completed_per_s": completed, "unfinished_after_drain": 0,
            "saga_ms": {"p50": p50, "p95": p99, "p99": p99, "max": p99}, "cdc_hop_ms": {"p50": 12.0, "p99": 20.0},
            "stack_rss_mib": 3000.0}
    if total is not None:
        step["cost"] = cost(f"{offered:g}/s", offered, int(completed * 20), (0.0, {component: 0.0}),
                            (20.0, {component: total * completed * 20 / 1000}),
                            {component: 0.0, "Kafka Connect": idle_connect / 100}).as_dict()
    return step


def _verdicts(steps: list[dict], dtm: dict) -> dict[str, str]:
    return {t: v for t, _, v in cost_targets(steps, dtm)}


def test_cost_targets_met() -> None:
    steps = [_step(10, 10, 80, 150, total=20.0), _step(50, 50, 120, 400), _step(100, 99, 200, 900)]
    dtm = {"steps": [_step(10, 10, 30, 60, total=30.0, component="service APIs"), _step(50, 50.4, 50, 90),
                     _step(100, 60, 90, 900)]}
    rows = _verdicts(steps, dtm)
    assert set(rows.values()) == {"met"}, rows


def test_cost_targets_missed_say_by_how_much() -> None:
    steps = [_step(10, 10, 300, 450, total=100.0, idle_connect=35.0), _step(20, 19.8, 500, 900),
             _step(50, 27, 9000, 20000)]
    dtm = {"steps": [_step(10, 10, 30, 60, total=50.0, component="DTM server"), _step(20, 20, 40, 80),
                     _step(50, 30, 9000, 30000)]}
    rows = _verdicts(steps, dtm)
    assert rows["whole stack ≤ 25 CPU-ms per completed saga at 10/s"] == "missed: 4.0x"
    assert rows["idle stack ≤ 20 % of one core"] == "missed: 15.0 points over"
    assert rows["≥ 100 completed sagas/s sustained"] == "missed: 5.0x short"
    assert rows["saga p50 ≤ 100 ms at 10/s"] == "missed: 200 ms over"
    assert rows["saga p99 ≤ 500 ms at 50/s"] == "missed: 50/s not sustained"
    assert rows["walsaga completes ≥ DTM's sagas/s at every offered rate (within 2 %)"] == "missed: behind at 1 rate(s)"
    assert rows["fewer CPU-ms per saga than DTM (10/s; DTM: its server, the service APIs and PostgreSQL)"] == \
        "missed: 2.0x DTM's"


def test_cost_section_has_a_row_per_component_and_the_total() -> None:
    steps = [_step(10, 10, 80, 150, total=20.0)]
    lines = cost_section(steps, {"steps": [_step(10, 10, 30, 60, total=30.0)]})
    assert any(line.startswith("| views | 0.0 | 20.0 | 20.0 |") for line in lines), lines
    assert any(line.startswith("| **whole stack** |") for line in lines)
    assert any("DTM's steps" in line for line in lines)
    assert cost_section([_step(10, 10, 80, 150)], {}) == []


def test_table_lists_only_components_that_used_cpu() -> None:
    c = cost("10/s", 10.0, 100, (0.0, {"views": 0.0, "reconciler": 0.0}), (10.0, {"views": 1.0, "reconciler": 0.0}),
             {})
    rows = table([c])
    assert [r.split(" | ")[0] for r in rows[2:-2]] == ["| views"]
