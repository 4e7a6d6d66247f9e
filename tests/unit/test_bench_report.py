"""The benchmark report's targets table judges what was measured (pure: dicts in, rows out)."""
from __future__ import annotations

from bench.report import dtm_section, gateway_targets, targets, tuning_section


def _step(offered: float, completed: float, unfinished: int = 0, p99: float = 400.0, hop: float = 12.0) -> dict:
    return {"offered_per_s": offered, "completed_per_s": completed, "unfinished_after_drain": unfinished,
            "saga_ms": {"p50": p99 / 2, "p95": p99, "p99": p99, "max": p99}, "cdc_hop_ms": {"p50": hop, "p99": hop},
            "stack_rss_mib": 3000.0}


def _conc(server_errors: int = 0, lost: int = 0, reads_p99: float = 40.0) -> dict:
    return {"clients": 10_000, "server_errors": server_errors, "lost_orders": lost, "lost_cancels": 0,
            "reads": {"latency_ms": {"p50": 5.0, "p95": 20.0, "p99": reads_p99, "max": 90.0}}}


def _verdicts(steps: list[dict], conc: dict) -> dict[str, str]:
    return {target: verdict for target, _, verdict in targets(steps, conc)}


def test_a_step_counts_as_sustained_only_without_backlog() -> None:
    rows = _verdicts([_step(20, 19.8), _step(40, 25.0), _step(60, 59.0, unfinished=30), _step(80, 80.0, p99=3000.0)],
                     _conc())
    assert rows["≥ 300 completed sagas/s sustained"] == "missed: 15x short"
    assert rows["saga p99 ≤ 500 ms at 100 sagas/s"].startswith("missed")


def test_every_target_met() -> None:
    rows = _verdicts([_step(100, 99.0), _step(300, 296.0)], _conc())
    assert set(rows.values()) == {"met"}, rows


def test_errors_lost_updates_and_slow_reads_are_misses() -> None:
    rows = _verdicts([_step(10, 10.0, hop=25.0)], _conc(server_errors=3, lost=1, reads_p99=120.0))
    assert rows["10,000 concurrent clients: zero 5xx"] == "missed: 3 5xx"
    assert rows["10,000 concurrent clients: zero lost updates"] == "missed: updates lost"
    assert rows["GET p99 ≤ 50 ms during that run"] == "missed: 2.4x"
    assert rows["CDC hop p50 ≤ 20 ms"] == "missed: 5.0 ms over"


def test_memory_counts_the_clients_run_too() -> None:
    rows = _verdicts([_step(10, 10.0)], {**_conc(), "stack_rss_mib": 7000.0})
    assert rows["whole stack ≤ 6 GiB RSS"] == "missed: 856 MiB over"


def _dtm_step(offered: float, completed: float) -> dict:
    return {"offered_per_s": offered, "completed_per_s": completed, "unfinished_after_drain": 0,
            "saga_ms": {"p50": 90.0, "p95": 150.0, "p99": 200.0, "max": 250.0}, "outcomes": {"succeed": 9, "failed": 1}}


def test_dtm_is_set_beside_walsaga_at_the_same_offered_rates() -> None:
    lines = dtm_section([_step(10, 10.0), _step(20, 19.0)],
                        {"version": "v1.19.0", "go": "go1.x", "steps": [_dtm_step(10, 9.9), _dtm_step(20, 15.2)]})
    rows = [line for line in lines if line.startswith("| 1") or line.startswith("| 2")]
    assert rows == ["| 10 | 10.0 | 200.0 | 400.0 | 0 | 9.9 | 90.0 | 200.0 | 0 | failed 1, succeed 9 |",
                    "| 20 | 19.0 | 200.0 | 400.0 | 0 | 15.2 | 90.0 | 200.0 | 0 | failed 1, succeed 9 |"]


def test_a_dtm_that_could_not_run_is_reported_with_its_reason() -> None:
    lines = dtm_section([_step(10, 10.0)], {"unavailable": "no Go toolchain on PATH"})
    assert any("Not measured in this run: no Go toolchain on PATH" in line for line in lines)


def test_each_tried_setting_is_a_row_under_the_shipped_reference() -> None:
    step = {**_step(20, 19.5), "seconds": 15.0}
    rows = [{"setting": "(shipped settings)", "shipped": "", "tried": "", "step": step,
             "cpu_percent": {"connect": 20.0, "orchestrator": 35.5, "apis": 12.0}},
            {"setting": "Debezium poll.interval.ms", "shipped": "20", "tried": "500", "step": step,
             "cpu_percent": {"connect": 8.0, "orchestrator": 30.0, "apis": 12.0}}]
    lines = tuning_section(rows)
    assert "| Debezium poll.interval.ms | 20 | 500 | 19.5 | 200.0 | 400.0 | 12.0 | 12.0 | 0 | 8.0 | 30.0 | 12.0 |" \
        in lines
    assert sum(line.startswith("| ") and "---" not in line for line in lines) == 3  # header + 2 rows
    assert tuning_section([]) == []


def _gateway(p99: float, write_max: float, timed_out: int = 0) -> dict:
    summary = {"count": 600, "statuses": {"200": 600}, "request_ms": {"p50": 5.0, "p95": 9.0, "p99": p99, "max": p99},
               "upstream_ms": {"p50": 4.0, "p95": 8.0, "p99": p99, "max": p99}}
    writes = {**summary, "statuses": {"202": 900, "429": 9000, "499": 12, "504": timed_out},
              "request_ms": {"p50": 20.0, "p95": 900.0, "p99": 2000.0, "max": write_max}}
    return {**_conc(), "gateway": {"reads": summary, "writes": writes}}


def test_the_clients_run_is_judged_from_the_gateways_own_request_times() -> None:
    met = {t: v for t, _, v in gateway_targets(_gateway(120.0, 4200.0))}
    assert set(met.values()) == {"met"}, met
    missed = {t: v for t, _, v in gateway_targets(_gateway(900.0, 12_000.0, timed_out=3))}
    assert missed["server-side GET p99 < 300 ms during that run (gateway's request time)"] == "missed: 3.0x"
    assert missed["every write answered (202/409/429) within 5 s"] == "missed: slowest 12.0 s, 3 504s"
    # clients that hung up (499: wrk closing its connections at the end) are the client's doing
    assert {t: v for t, _, v in gateway_targets(_gateway(120.0, 4200.0))}[
        "every write answered (202/409/429) within 5 s"] == "met"
    assert gateway_targets(_conc()) == []  # a run without the gateway's log is not judged on it
