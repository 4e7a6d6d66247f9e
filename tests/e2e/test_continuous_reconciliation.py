"""The continuous checks on the real stack: plain SQL behind a service's API is published by its triggers as a
DirectWrite event, flows through CDC, and is caught within the grace period; a safe repair is made, anything else is
left for an operator; a violation that goes away is resolved."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.support import eventually
from walsaga.client import Gateway

pytestmark = pytest.mark.stack


def _sql(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.begin() as conn:
        return conn.execute(text(sql), params)


def _settled(gateway: Gateway, sku: str, pm: str = "pm_card_visa") -> str:
    resp = gateway.place_order(f"cust-{uuid.uuid4().hex[:6]}", [{"sku": sku, "quantity": 1, "unit_price": "6.00"}],
                               pm)
    assert resp.status_code == 202, resp.text
    order_id = resp.json()["order_id"]
    gateway.wait_final(order_id)
    return order_id


def _violation(engines: dict[str, Engine], subject: str, kind: str) -> Any:
    return _sql(engines["views"], "SELECT * FROM violation WHERE subject = :s AND kind = :k", s=subject, k=kind).first()


def _counter(engines: dict[str, Engine], name: str) -> int:
    return _sql(engines["views"], "SELECT coalesce(sum(value), 0) FROM delivery_counter WHERE consumer = 'reconciler' "
                "AND counter = :c", c=name).scalar_one()


def test_a_capture_written_behind_the_api_on_a_cancelled_order_is_found_and_refunded(
        gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = f"cr-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5)
    order_id = _settled(gateway, sku, "pm_card_chargeDeclined")
    before = _counter(engines, "violations")
    _sql(engines["payments"], "UPDATE payments SET status = 'CAPTURED' WHERE order_id = :o", o=order_id)

    def refunded() -> None:
        status = _sql(engines["payments"], "SELECT status FROM payments WHERE order_id = :o", o=order_id).scalar()
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
    gateway.set_stock(sku, 5)
    order_id = _settled(gateway, sku)
    _sql(engines["payments"], "UPDATE payments SET amount = amount + 2 WHERE order_id = :o", o=order_id)
    _sql(engines["inventory"], "UPDATE stock SET reserved = reserved + 1 WHERE sku = :s", s=sku)

    def flagged() -> None:
        mismatch, drift = _violation(engines, order_id, "AMOUNT_MISMATCH"), _violation(engines, sku, "STOCK_DRIFT")
        assert mismatch is not None and mismatch.status == "NEEDS_OPERATOR" and mismatch.repair is None
        assert drift is not None and drift.status == "NEEDS_OPERATOR"

    eventually(flagged, timeout=90, interval=0.5)
    # the operator fixes it (by hand, behind the API again): the checks see it and resolve the violations
    _sql(engines["payments"], "UPDATE payments SET amount = amount - 2 WHERE order_id = :o", o=order_id)
    _sql(engines["inventory"], "UPDATE stock SET reserved = reserved - 1 WHERE sku = :s", s=sku)

    def resolved() -> None:
        assert _violation(engines, order_id, "AMOUNT_MISMATCH").status == "RESOLVED"
        assert _violation(engines, sku, "STOCK_DRIFT").status == "RESOLVED"

    eventually(resolved, timeout=90, interval=0.5)


def test_writes_through_the_services_are_not_reported_as_direct_writes(gateway: Gateway,
                                                                      engines: dict[str, Engine]) -> None:
    sku = f"cr-ok-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5)
    order_id = _settled(gateway, sku)
    with engines["payments"].connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM outbox WHERE aggregatetype = 'direct-writes' "
                                 "AND aggregateid = :o"), {"o": order_id}).scalar()
    assert rows == 0
    assert all(e["event_type"] != "DirectWrite" for e in gateway.timeline(order_id))
