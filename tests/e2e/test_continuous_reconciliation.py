"""The continuous checks on the real stack: plain SQL behind a service's API is published by its triggers as a
DirectWrite event, flows through CDC, and is caught within the grace period; a safe repair is made, anything else is
left for an operator; a violation that goes away is resolved."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.e2e.invariants import settled_order, sql
from tests.support import eventually
from walsaga.client import Gateway

pytestmark = pytest.mark.stack


def _violation(engines: dict[str, Engine], subject: str, kind: str) -> Any:
    return sql(engines["views"], "SELECT * FROM violation WHERE subject = :s AND kind = :k", s=subject, k=kind).first()


def _counter(engines: dict[str, Engine], name: str) -> int:
    return sql(engines["views"], "SELECT coalesce(sum(value), 0) FROM delivery_counter WHERE consumer = 'reconciler' "
                "AND counter = :c", c=name).scalar_one()


def test_a_capture_written_behind_the_api_on_a_cancelled_order_is_found_and_refunded(
        gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = f"cr-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="6.00")
    order_id = settled_order(gateway, engines, sku, "pm_card_chargeDeclined", "6.00")
    before = _counter(engines, "violations")
    sql(engines["payments"], "UPDATE payments SET status = 'CAPTURED' WHERE order_id = :o", o=order_id)

    def refunded() -> None:
        status = sql(engines["payments"], "SELECT status FROM payments WHERE order_id = :o", o=order_id).scalar()
        assert status == "REFUNDED"
        row = _violation(engines, order_id, "CHARGE_ON_CANCELLED")
        assert row is not None and row.status == "RESOLVED" and row.repairs_sent >= 1, row

    eventually(refunded, timeout=90, interval=0.5)
    assert _counter(engines, "violations") > before
    timeline = [(e["event_type"], e["detail"]) for e in gateway.timeline(order_id)]
    assert ("DirectWrite", "payments UPDATE behind the API") in timeline


def test_a_divergence_without_a_safe_repair_waits_for_an_operator_until_it_is_fixed(
        gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = f"cr-op-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="6.00")
    order_id = settled_order(gateway, engines, sku, unit_price="6.00")
    sql(engines["payments"], "UPDATE payments SET amount = amount + 2 WHERE order_id = :o", o=order_id)
    sql(engines["inventory"], "UPDATE stock SET reserved = reserved + 1 WHERE sku = :s", s=sku)

    def flagged() -> None:
        mismatch, drift = _violation(engines, order_id, "AMOUNT_MISMATCH"), _violation(engines, sku, "STOCK_DRIFT")
        assert mismatch is not None and mismatch.status == "NEEDS_OPERATOR" and mismatch.repair is None
        assert drift is not None and drift.status == "NEEDS_OPERATOR"

    eventually(flagged, timeout=90, interval=0.5)
    # the operator fixes it (by hand, behind the API again): the checks see it and resolve the violations
    sql(engines["payments"], "UPDATE payments SET amount = amount - 2 WHERE order_id = :o", o=order_id)
    sql(engines["inventory"], "UPDATE stock SET reserved = reserved - 1 WHERE sku = :s", s=sku)

    def resolved() -> None:
        assert _violation(engines, order_id, "AMOUNT_MISMATCH").status == "RESOLVED"
        assert _violation(engines, sku, "STOCK_DRIFT").status == "RESOLVED"

    eventually(resolved, timeout=90, interval=0.5)


def test_writes_through_the_services_are_not_reported_as_direct_writes(gateway: Gateway,
                                                                      engines: dict[str, Engine]) -> None:
    sku = f"cr-ok-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="6.00")
    order_id = settled_order(gateway, engines, sku, unit_price="6.00")
    with engines["payments"].connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM outbox WHERE aggregatetype = 'direct-writes' "
                                 "AND aggregateid = :o"), {"o": order_id}).scalar()
    assert rows == 0
    assert all(e["event_type"] != "DirectWrite" for e in gateway.timeline(order_id))


def test_every_other_divergence_kind_made_by_plain_sql_is_caught(gateway: Gateway,
                                                                engines: dict[str, Engine]) -> None:
    """The kinds the two tests above do not make: an orphan payment (voided), a missing payment, a missing and an
    extra notification (the missing one is sent again), and a saga stuck past its SLA (found by the overdue-saga
    scan: a saga that stopped moving produces no records)."""
    sku = f"cr-all-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 10, unit_price="6.00")
    unpaid, silent, noisy, stuck = (settled_order(gateway, engines, sku, unit_price="6.00") for _ in range(4))
    orphan = str(uuid.uuid4())
    unpaid_row = sql(engines["payments"], "SELECT * FROM payments WHERE order_id = :o", o=unpaid).mappings().one()
    customer = sql(engines["orders"], "SELECT customer_id FROM orders WHERE order_id = :o", o=noisy).scalar()
    sql(engines["payments"], "INSERT INTO payments (payment_id, order_id, amount, currency, status, version) "
         "VALUES (:p, :o, 3.00, 'USD', 'AUTHORIZED', 1)", p=str(uuid.uuid4()), o=orphan)
    sql(engines["payments"], "DELETE FROM payments WHERE order_id = :o", o=unpaid)
    sql(engines["notifications"], "DELETE FROM notifications WHERE order_id = :o", o=silent)
    sql(engines["notifications"], "INSERT INTO notifications (notification_id, order_id, customer_id, type, channel, "
         "status, text) VALUES (:n, :o, :c, 'OrderCancelled', 'log', 'SENT', 'x')", n=str(uuid.uuid4()), o=noisy,
         c=customer)
    sql(engines["saga"], "UPDATE saga_instance SET status = 'RUNNING', updated_at = now() - interval '1 hour' "
         "WHERE saga_id = :o", o=stuck)
    try:
        def caught() -> None:
            expected = {(orphan, "ORPHAN_PAYMENT"), (unpaid, "MISSING_PAYMENT"), (silent, "NOTIFICATION_MISSING"),
                        (noisy, "NOTIFICATION_DOUBLED"), (stuck, "STUCK_SAGA")}
            missing = {e for e in expected if _violation(engines, *e) is None}
            assert not missing, f"not caught yet: {missing}"

        eventually(caught, timeout=150, interval=1.0)

        def repaired() -> None:
            assert sql(engines["payments"], "SELECT status FROM payments WHERE order_id = :o", o=orphan).scalar() \
                == "VOIDED"
            assert sql(engines["notifications"], "SELECT count(*) FROM notifications WHERE order_id = :o",
                        o=silent).scalar() == 1
            assert _violation(engines, silent, "NOTIFICATION_MISSING").status == "RESOLVED"

        eventually(repaired, timeout=90, interval=0.5)
        for subject, kind in ((unpaid, "MISSING_PAYMENT"), (noisy, "NOTIFICATION_DOUBLED"), (stuck, "STUCK_SAGA")):
            row = _violation(engines, subject, kind)
            assert row.status == "NEEDS_OPERATOR" and row.repair is None, row
    finally:
        sql(engines["saga"], "UPDATE saga_instance SET status = 'COMPLETED' WHERE saga_id = :o", o=stuck)
        sql(engines["payments"], "INSERT INTO payments (payment_id, order_id, amount, currency, status, "
             "provider_ref, version) VALUES (:p, :o, :a, :c, :s, :r, :v) ON CONFLICT DO NOTHING",
             p=unpaid_row["payment_id"], o=unpaid, a=unpaid_row["amount"], c=unpaid_row["currency"],
             s=unpaid_row["status"], r=unpaid_row["provider_ref"], v=unpaid_row["version"])
        sql(engines["notifications"], "DELETE FROM notifications WHERE order_id = :o AND type = 'OrderCancelled'",
             o=noisy)
