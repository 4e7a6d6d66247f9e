"""Cross-service checks after a batch of orders has settled: final states, payments, stock, notifications."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine, text

from walsaga.client import Gateway


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    sku: str
    quantity: int
    unit_price: Decimal


def check_order_consistency(gw: Gateway, order_id: str) -> dict:
    """An order's final state agrees with its payment and its notifications; returns the order."""
    order = gw.order(order_id)
    assert order["status"] in ("CONFIRMED", "CANCELLED"), order
    payments = gw.payments(order_id)
    notes = gw.notifications(order_id)
    if order["status"] == "CONFIRMED":
        assert [p["status"] for p in payments] == ["CAPTURED"], payments
        assert Decimal(payments[0]["amount"]) == Decimal(order["total_amount"])
        assert [(n["type"], n["channel"]) for n in notes] == [("OrderConfirmed", "log")], notes
    elif [p["status"] for p in payments] == ["REFUNDED"]:  # confirmed, then cancelled by the customer
        assert order["cancel_reason"] == "CUSTOMER_CANCELLED", order
        assert sorted((n["type"], n["channel"]) for n in notes) == [("OrderCancelled", "log"),
                                                                    ("OrderConfirmed", "log")], notes
    else:
        assert all(p["status"] in ("DECLINED", "VOIDED") for p in payments), payments
        assert [(n["type"], n["channel"]) for n in notes] == [("OrderCancelled", "log")], notes
    return order


def check_stock_balance(gw: Gateway, sku: str, initial: int, confirmed_units: int) -> None:
    stock = gw.stock(sku)
    assert stock["reserved"] == 0, stock
    assert stock["committed"] == confirmed_units, stock
    assert stock["available"] + stock["reserved"] + stock["committed"] == initial, stock
    assert stock["available"] >= 0


def saga_statuses(saga_engine: Engine, order_ids: list[str]) -> dict[str, str]:
    with saga_engine.connect() as conn:
        rows = conn.execute(text("SELECT saga_id, status FROM saga_instance WHERE saga_id = ANY(:ids)"),
                            {"ids": order_ids}).all()
    return {r.saga_id: r.status for r in rows}
