"""The benchmark harness, every part tiny (no thresholds: speed is measured by `make bench`, never asserted here)."""
from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bench import dtm, dual_write, tuning
from bench.concurrency import run_concurrency
from bench.cost import stack_meter
from bench.run import measure_step, run, say
from cdc.connectors import identity
from walsaga.client import Gateway
from walsaga.stack import kafka_acls, procs
from walsaga.stack.config import StackConfig, db_url
from walsaga.stack.kafka import connect_client, consumer_lag

pytestmark = pytest.mark.stack


def test_benchmark_harness_measures_a_tiny_step(stack: StackConfig) -> None:
    (step,) = run(stack, [5.0], 2.0, meter=stack_meter(stack), idle_s=1.0)
    assert step.accepted == 10 and step.errors == {}
    # what each component spent on these 10 sagas: every part of the saga's path did some work
    assert step.cost is not None and step.cost["completed"] == 10, step.cost
    for component in ("participant consumers", "orchestrator + notification fan-out", "PostgreSQL", "Kafka broker",
                      "Kafka Connect", "service APIs", "views"):
        assert step.cost["gross_ms"][component] > 0, (component, step.cost)
    assert 0 < step.cost["total_net_ms"] <= step.cost["total_gross_ms"], step.cost
    assert step.unfinished_after_drain == 0
    assert step.saga_ms["p50"] > 0 and step.saga_ms["max"] >= step.saga_ms["p50"]
    assert not math.isnan(step.cdc_hop_ms["p50"])
    assert step.stack_rss_mib > 0
    lag = consumer_lag(kafka_acls.admin(stack))  # what wait_quiet waits on between parts
    assert {"walsaga-processors", "walsaga-views", "walsaga-orders", "walsaga-inventory"} <= set(lag), lag
    assert all(isinstance(n, int) and n >= 0 for n in lag.values()), lag


def test_dual_write_baseline_counts_what_a_killed_writer_committed_and_shipped(stack: StackConfig,
                                                                               engines: dict[str, Engine]) -> None:
    dual_write.prepare(db_url(stack, "orders", "owner"), kafka_acls.admin(stack))
    dual, outbox = (dual_write.run_writer(mode, db_url(stack, "orders"), engines["orders"], kafka_acls.admin(stack),
                                          0.5, say) for mode in ("dual", "outbox"))
    for report in (dual, outbox):
        assert report.committed > 0, report
        assert report.events + report.lost == report.committed, report
    assert outbox.lost == 0, outbox  # the outbox's guarantee: what committed is shipped, whatever killed the writer


def test_concurrent_clients_run_checks_every_answer_against_the_databases(stack: StackConfig,
                                                                          engines: dict[str, Engine],
                                                                          tmp_path: Path) -> None:
    report = run_concurrency(stack, engines["orders"], clients=40, seconds=3, tmp=tmp_path, say=say, targets_n=8,
                             reads_per_s=10)
    assert report.orders["statuses"].get("202", 0) > 0, report.orders
    assert report.cancels["statuses"].get("202", 0) > 0, report.cancels
    assert report.server_errors == 0, report
    assert report.lost_orders == 0 and report.lost_cancels == 0, report
    assert sum(report.reads["statuses"].values()) == 30 and report.reads["statuses"].get("200") == 30, report.reads


def test_dtm_baseline_runs_the_same_saga_on_the_same_participants(stack: StackConfig,
                                                                   engines: dict[str, Engine]) -> None:
    meter = stack_meter(stack)
    meter.measure_idle(1.0)
    result = dtm.run_baseline(stack, [5.0], 2.0, say, meter=meter)
    assert "unavailable" not in result, result  # Go is part of the machine: DTM must build and run here
    (step,) = result["steps"]
    assert step["cost"]["gross_ms"]["DTM server"] > 0, step["cost"]  # DTM's own process is measured too
    assert step["submitted"] == 10 and step["errors"] == {} and step["unfinished_after_drain"] == 0, step
    assert step["outcomes"] == {"succeed": 9, "failed": 1}, step  # every 10th order pays with a declined card
    assert step["saga_ms"]["p50"] > 0
    with engines["orders"].connect() as c:
        states = dict(c.execute(text(
            "SELECT o.status || ':' || coalesce(o.cancel_reason, ''), count(*) FROM orders o "
            "JOIN order_lines l USING (order_id) WHERE l.sku LIKE 'dtm-%' GROUP BY 1")).all())
    assert states == {"CONFIRMED:": 9, "CANCELLED:PAYMENT_DECLINED": 1}, states
    with engines["payments"].connect() as c:
        payments = dict(c.execute(text("SELECT status, count(*) FROM payments WHERE order_id = ANY(:ids) GROUP BY 1"),
                                  {"ids": _dtm_orders(engines)}).all())
    assert payments == {"CAPTURED": 9, "DECLINED": 1}, payments


def _dtm_orders(engines: dict[str, Engine]) -> list[str]:
    with engines["orders"].connect() as c:
        return list(c.execute(text("SELECT order_id FROM order_lines WHERE sku LIKE 'dtm-%'")).scalars())


def test_tuning_applies_each_setting_for_its_step_and_puts_it_back(stack: StackConfig, engines: dict[str, Engine],
                                                                   gateway: Gateway) -> None:
    client = connect_client(stack, stack.connect_url)
    connector, _ = identity("orders")
    poll_500, batch_1 = (next(v for v in tuning.variants(stack) if v.tried.startswith(t)) for t in ("500", "1 "))
    seen: dict[str, str] = {}

    def observed(variant: tuning.Variant, look: Callable[[], str]) -> tuning.Variant:
        def apply(cfg: StackConfig) -> None:
            variant.apply(cfg)
            seen[variant.setting] = look()
        return replace(variant, apply=apply)

    skus = [f"tune-smoke-{uuid.uuid4().hex[:6]}"]
    gateway.set_stock(skus[0], 1_000)
    rows = tuning.run_tuning(
        stack, lambda rate, secs: measure_step(stack, engines, rate, secs, skus), lambda: None, 5.0, 2.0, say,
        only=[observed(poll_500, lambda: client.config(connector)["poll.interval.ms"]),
              observed(batch_1, lambda: _env_of(stack, "processors-0").get("WALSAGA_SAGA_BATCH", ""))])
    assert [r["setting"] for r in rows] == ["(shipped settings)", poll_500.setting, batch_1.setting]
    assert all(r["step"]["accepted"] == 10 and r["step"]["unfinished_after_drain"] == 0 for r in rows), rows
    assert all(set(r["cpu_percent"]) == {"connect", "orchestrator", "apis"} for r in rows)
    assert seen == {poll_500.setting: "500", batch_1.setting: "1"}  # in effect during its step
    assert client.config(connector)["poll.interval.ms"] == identity("orders")[1]["poll.interval.ms"]  # put back
    assert "WALSAGA_SAGA_BATCH" not in _env_of(stack, "processors-0")


def _env_of(stack: StackConfig, name: str) -> dict[str, str]:
    pid = procs.read_pid(stack, name)
    assert pid is not None, f"{name} is not running"
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)
