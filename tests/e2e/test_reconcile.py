"""`walsaga reconcile` against the real databases: clean when the services agree; every divergence kind injected by
direct SQL is found and classified; `--repair` sends the safe repairs and the participants apply them."""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.conftest import TEST_PORT_OFFSET
from tests.e2e.invariants import settled_order, sql
from tests.support import eventually
from walsaga.cli import main as walsaga_cli
from walsaga.client import Gateway
from walsaga.stack import apps, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def _subjects(report: dict, kind: str) -> set[str]:
    return {s["subject"] for s in report["samples"].get(kind, [])}


def test_reconcile_finds_every_injected_divergence_and_repairs_the_safe_ones(
        stack: StackConfig, gateway: Gateway, engines: dict[str, Engine], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WALSAGA_HOME", str(stack.home))
    monkeypatch.setenv("WALSAGA_PORT_OFFSET", str(TEST_PORT_OFFSET))
    # the continuous checks would repair the injected divergences before the report job sees them: pause them
    procs.stop(stack, "reconciler-0")
    try:
        _run(stack, gateway, engines, tmp_path, capsys)
    finally:
        apps.start_reconciler(stack)


def _run(stack: StackConfig, gateway: Gateway, engines: dict[str, Engine], tmp_path: Path,
         capsys: pytest.CaptureFixture[str]) -> None:
    since: datetime = sql(engines["orders"], "SELECT now()").scalar()

    def reconcile(*extra: str) -> tuple[int, dict]:
        rc = walsaga_cli(["reconcile", "--out", str(tmp_path), "--since", since.isoformat(), "--grace", "0",
                          *extra])
        return rc, json.loads((tmp_path / "reconciliation.json").read_text())

    sku = f"rec-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 20)
    amount, cancelled, unpaid, silent = (settled_order(gateway, engines, sku) for _ in range(4))
    declined = settled_order(gateway, engines, sku, "pm_card_chargeDeclined")

    rc, clean = reconcile()
    assert rc == 0 and clean["divergences"] == 0 and clean["orders_scanned"] >= 5, clean
    assert "reconcile: comparing about" in capsys.readouterr().err  # progress on the terminal

    orphan = str(uuid.uuid4())
    unpaid_row = sql(engines["payments"], "SELECT * FROM payments WHERE order_id = :o", o=unpaid).mappings().one()
    sql(engines["payments"], "UPDATE payments SET amount = amount + 1 WHERE order_id = :o", o=amount)
    sql(engines["orders"], "UPDATE orders SET status = 'CANCELLED', cancel_reason = 'TIMEOUT' WHERE order_id = :o",
         o=cancelled)
    sql(engines["payments"], "DELETE FROM payments WHERE order_id = :o", o=unpaid)
    sql(engines["notifications"], "DELETE FROM notifications WHERE order_id = :o", o=silent)
    sql(engines["saga"], "UPDATE saga_instance SET status = 'RUNNING', updated_at = now() - interval '1 hour' "
         "WHERE saga_id = :o", o=declined)
    sql(engines["payments"], "INSERT INTO payments (payment_id, order_id, amount, currency, status, version) "
         "VALUES (:p, :o, 3.00, 'EUR', 'AUTHORIZED', 1)", p=str(uuid.uuid4()), o=orphan)
    sql(engines["inventory"], "UPDATE stock SET reserved = reserved + 3 WHERE sku = :s", s=sku)
    try:
        rc, found = reconcile()
        assert rc == 1
        assert _subjects(found, "AMOUNT_MISMATCH") == {amount}
        assert _subjects(found, "CHARGE_ON_CANCELLED") == {cancelled}
        assert _subjects(found, "MISSING_PAYMENT") == {unpaid}
        assert _subjects(found, "NOTIFICATION_MISSING") == {cancelled, silent}
        assert _subjects(found, "NOTIFICATION_DOUBLED") == {cancelled}  # its OrderConfirmed no longer fits
        assert _subjects(found, "STUCK_SAGA") == {declined}
        assert _subjects(found, "ORPHAN_PAYMENT") == {orphan}
        assert {sku, cancelled} <= _subjects(found, "STOCK_DRIFT")
        page = (tmp_path / "reconciliation.html").read_text()
        assert page.count("<svg") == 2 and "CHARGE_ON_CANCELLED" in page

        rc, repaired = reconcile("--repair")
        assert rc == 1
        assert repaired["repairs_sent"] == {"RefundPayment": 1, "VoidPayment": 1, "SendNotification": 2}

        def applied() -> None:
            status = {r.order_id: r.status for r in sql(
                engines["payments"], "SELECT order_id, status FROM payments WHERE order_id IN (:a, :b)",
                a=cancelled, b=orphan)}
            assert status == {cancelled: "REFUNDED", orphan: "VOIDED"}
            sent = sql(engines["notifications"], "SELECT count(*) FROM notifications WHERE order_id IN (:a, :b) "
                        "AND type = 'OrderCancelled' OR order_id = :b AND type = 'OrderConfirmed'",
                        a=cancelled, b=silent).scalar()
            assert sent == 2

        eventually(applied, timeout=60, interval=0.5)
        rc, after = reconcile()
        for kind in ("CHARGE_ON_CANCELLED", "NOTIFICATION_MISSING"):
            assert after["by_kind"][kind] == 0, after["samples"].get(kind)
        # the orphan stays on the report (a payment without an order), but nothing is held any more
        (orphan_sample,) = after["samples"]["ORPHAN_PAYMENT"]
        assert "VOIDED" in orphan_sample["detail"] and orphan_sample["repair"] is None
    finally:
        sql(engines["inventory"], "UPDATE stock SET reserved = reserved - 3 WHERE sku = :s", s=sku)
        sql(engines["saga"], "UPDATE saga_instance SET status = 'FAILED' WHERE saga_id = :o", o=declined)
        sql(engines["payments"], "UPDATE payments SET amount = amount - 1 WHERE order_id = :o", o=amount)
        sql(engines["payments"], "INSERT INTO payments (payment_id, order_id, amount, currency, status, provider_ref, "
             "version) VALUES (:p, :o, :a, :c, :s, :r, :v) ON CONFLICT DO NOTHING", p=unpaid_row["payment_id"],
             o=unpaid, a=unpaid_row["amount"], c=unpaid_row["currency"], s=unpaid_row["status"],
             r=unpaid_row["provider_ref"], v=unpaid_row["version"])
