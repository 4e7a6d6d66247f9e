"""`walsaga reconcile`: compares the service databases (the sources of truth) order by order and SKU by SKU,
classifies every divergence, optionally sends the safe repairs, and writes the JSON + HTML report."""
from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from reconciliation import checks, scan
from reconciliation.repair import Repairer
from reconciliation.report import Report
from services.common.kafka_access import KafkaAccess


def reconcile(src: scan.Sources, out_dir: Path, *, since: datetime | None = None, grace_s: float = 60.0,
              saga_sla_s: float = 300.0, channels: tuple[str, ...] = ("log",), repair_kafka: KafkaAccess | None = None,
              progress_every: int = 10_000) -> Report:
    now = datetime.now(UTC)
    report = Report(now, f"orders created since {since.isoformat()}" if since else "every order")
    repairer = Repairer(repair_kafka, str(uuid.uuid4())) if repair_kafka else None
    expected = scan.estimated_orders(src.orders, since)
    _say(f"comparing about {expected} orders across orders, payments, inventory, notifications and saga")
    for facts in scan.order_facts(src, since):
        report.orders_scanned += 1
        if report.orders_scanned % progress_every == 0:
            pct = f" ({100 * report.orders_scanned / expected:.0f}%)" if expected else ""
            _say(f"{report.orders_scanned}/{expected} orders{pct}, {report.total} divergences so far")
        last = facts.last_change()
        if last is not None and (now - last).total_seconds() < grace_s:
            report.in_flight += 1
            continue
        for d in checks.check_order(facts, channels, now, saga_sla_s):
            _record(report, d, now, repairer)
    for balance in scan.sku_balances(src.inventory):
        report.skus_scanned += 1
        if (now - balance.updated_at).total_seconds() < grace_s:
            continue
        for d in checks.check_sku(balance):
            _record(report, d, now, None)
    if repairer:
        repairer.flush()
    report.finished_at = datetime.now(UTC)
    json_path, html_path = report.write(out_dir)
    _say(f"{report.orders_scanned} orders, {report.skus_scanned} SKUs: {report.total} divergences "
         f"{dict(report.by_kind)}; repairs sent {dict(report.repairs) or 'none'}; report {json_path}, {html_path}")
    return report


def _record(report: Report, d: checks.Divergence, now: datetime, repairer: Repairer | None) -> None:
    repaired = False
    if repairer and d.repair:
        repairer.send(d)
        repaired = True
    report.add(d, now, repaired)


def _say(msg: str) -> None:
    print(f"reconcile: {msg}", file=sys.stderr, flush=True)
