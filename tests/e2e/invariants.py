"""Cross-service checks after a batch of orders has settled: final states, payments, stock, notifications."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text

from tests.support import eventually
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


def sql(engine: Engine, statement: str, **params: Any) -> Any:
    """One statement in its own transaction: how the tests write behind the services' backs."""
    with engine.begin() as conn:
        return conn.execute(text(statement), params)


def settled_order(gw: Gateway, engines: dict[str, Engine], sku: str, pm: str = "pm_card_visa",
                  unit_price: str | None = None) -> str:
    """Places a one-unit order and waits until nothing about it still moves: the order is CONFIRMED or CANCELLED, its
    saga has finished and its notification is written (a test that then writes behind the services' backs must not
    race the saga's last step). Returns its id."""
    line: dict[str, Any] = {"sku": sku, "quantity": 1}
    if unit_price is not None:  # the price the client saw (it must be the SKU's); else the server's price
        line["unit_price"] = unit_price
    resp = gw.place_order(f"cust-{uuid.uuid4().hex[:6]}", [line], pm)
    assert resp.status_code == 202, resp.text
    order_id = resp.json()["order_id"]
    gw.wait_final(order_id)

    def quiet() -> None:
        saga = saga_statuses(engines["saga"], [order_id]).get(order_id)
        assert saga in ("COMPLETED", "FAILED"), f"saga of {order_id} is {saga}"
        notes = sql(engines["notifications"], "SELECT count(*) FROM notifications WHERE order_id = :o", o=order_id)
        assert notes.scalar() >= 1, f"no notification for {order_id} yet"

    eventually(quiet, timeout=30, interval=0.2)
    return order_id
