"""docs/reliability/AVAILABILITY.md (and availability.json) from one availability run (bench/availability.py)."""
from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from walsaga.stack.config import DEBEZIUM_VERSION, KAFKA_VERSION, StackConfig

TARGET_PCT = 99.9


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} %"


def _failed(share: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(share["failed"].items())) or "none"


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    s, c = results["summary"], results["checks"]
    rows = []
    for what, value in (("writes answered without a 5xx or timeout (per attempt)", s["writes"]["available_pct"]),
                        ("reads answered without a 5xx or timeout", s["reads"]["available_pct"]),
                        ("orders accepted within the client's retries", s["orders_available_pct"])):
        met = value is not None and value >= TARGET_PCT
        rows.append((f"{what} ≥ {TARGET_PCT} %", _pct(value),
                     "met" if met else f"missed by {TARGET_PCT - (value or 0):.3f} points"))
    lost = c["accepted_not_stored"] + c["sagas_not_ended"]
    rows.append(("0 lost (accepted orders stored, every saga ended)", f"{lost}", "met" if lost == 0 else "missed"))
    extra = c["stored_not_accepted"]
    unanswered = s["unanswered_after_retries"]
    rows.append(("0 doubled (no order that no answer names, beyond the unanswered requests)",
                 f"{extra} unnamed orders, {unanswered} unanswered requests",
                 "met" if extra <= unanswered else "missed"))
    rows.append(("`walsaga reconcile` finds no divergence", f"{c['divergences']} {c['divergences_by_kind'] or ''}",
                 "met" if c["divergences"] == 0 else "missed"))
    return rows


def render(cfg: StackConfig, results: dict[str, Any]) -> str:
    plan, s, c = results["plan"], results["summary"], results["checks"]
    lines = [
        "# Availability under rotating faults (HA profile)",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `make availability` (bench/availability.py) on a "
        f"{os.cpu_count()}-core {platform.machine()} machine, Python {platform.python_version()}, Kafka "
        f"{KAFKA_VERSION}, Debezium {DEBEZIUM_VERSION}, PostgreSQL 15. Stack: {cfg.kafka_nodes} KRaft nodes "
        f"(replication {cfg.replication_factor}, min.insync {cfg.min_insync_replicas}), {cfg.connect_workers} Connect "
        f"workers, {cfg.api_instances} API instances per service, {cfg.faust_instances} orchestrators, "
        f"{cfg.consumer_instances} command consumers per service, {cfg.view_instances} view workers, "
        f"{cfg.reconciler_instances} reconcilers; "
        + (f"every database a Patroni pair ({cfg.postgres_members} members: primary + synchronous standby) behind "
           "HAProxy, with a 3-node etcd." if cfg.postgres_members > 1 else "one PostgreSQL per database."),
        "",
        f"Open loop for {plan['seconds']:.0f} s: {plan['order_rate']:g} orders/s and {plan['read_rate']:g} reads/s "
        f"through the gateway. From t={plan['first_fault_at_s']:.0f} s, one fault every "
        f"{plan['fault_every_s']:.0f} s in rotation; a killed process is started again "
        f"{results['heal_after_s']:.0f} s after the kill. A client gives an attempt {results['timeout_s']:.0f} s, "
        f"and retries a write that got a 5xx, a timeout or a refused connection (or a 409/429) with the same "
        f"Idempotency-Key, up to {results['attempts_per_write']} attempts in all, backing off 0.5-4 s (a 429's "
        "Retry-After when given).",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *[f"| {t} | {m} | {v} |" for t, m, v in verdicts(results)],
        "",
        f"Writes: {s['writes']['attempts']} attempts, unavailable: {_failed(s['writes'])}. Reads: "
        f"{s['reads']['attempts']} attempts, unavailable: {_failed(s['reads'])}. Orders: {s['orders']}, accepted "
        f"{s['accepted']}, unanswered after every retry {s['unanswered_after_retries']}. Saga latency (order commit "
        f"to saga end, ms): p50 {c['saga_ms']['p50']}, p95 {c['saga_ms']['p95']}, p99 {c['saga_ms']['p99']}, max "
        f"{c['saga_ms']['max']}. Orders by outcome: "
        f"{', '.join(f'{k} {v}' for k, v in c['order_outcomes'].items())} (payments are declined for every 10th "
        "order on purpose).",
        "",
        "## What each fault cost",
        "",
        f"The window runs from the fault to the next one, at most {plan['fault_every_s']:.0f} s (a fault comes no "
        f"sooner than {results['settle_s']:.0f} s after the previous one healed, so each meets a healed stack). "
        "Write outage: first to "
        "last failing write attempt in the window. "
        "Saga latency: of the orders placed in the window (the asynchronous path the fault stalls, while the "
        "request path answers).",
        "",
        "| t (s) | fault | what was broken | write attempts | unavailable | write outage (s) | read attempts "
        "| unavailable | saga p50 / p99 (ms) | healed at (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f, saga in zip(s["faults"], c["saga_ms_by_window"], strict=True):
        lines.append(f"| {f['at_s']:.0f} | {f['fault']} | {f.get('target', f.get('error', '?'))} | "
                     f"{f['writes']['attempts']} | {_failed(f['writes'])} | {f['write_outage_s']} | "
                     f"{f['reads']['attempts']} | {_failed(f['reads'])} | {saga['p50']} / {saga['p99']} | "
                     f"{f.get('healed_at_s', '-')} |")
    lines += ["", "Raw figures: [availability.json](availability.json).", ""]
    return "\n".join(lines)


def write(cfg: StackConfig, results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "availability.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "AVAILABILITY.md").write_text(render(cfg, results))
