"""The three journeys through the gateway, with every service's final state checked."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from tests.e2e.invariants import check_order_consistency, check_stock_balance, saga_statuses
from tests.support import eventually
from walsaga.client import Gateway

pytestmark = pytest.mark.stack


def _place(gw: Gateway, sku: str, quantity: int, pm: str) -> str:
    resp = gw.place_order(f"cust-{uuid.uuid4().hex[:6]}", [{"sku": sku, "quantity": quantity, "unit_price": "12.50"}],
                          pm)
    assert resp.status_code == 202, resp.text
    return resp.json()["order_id"]


def _settled(gw: Gateway, engines: dict[str, Engine], order_id: str) -> dict:
    def probe() -> dict:
        assert saga_statuses(engines["saga"], [order_id]).get(order_id) in ("COMPLETED", "FAILED")
        return check_order_consistency(gw, order_id)
    return eventually(probe, timeout=60)


def test_confirmed_journey(gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = f"j-ok-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="12.50")
    order_id = _place(gateway, sku, 2, "pm_card_visa")
    order = _settled(gateway, engines, order_id)
    assert order["status"] == "CONFIRMED" and order["cancel_reason"] is None
    assert order["version"] == 2
    assert gateway.payments(order_id)[0]["amount"] == "25.00"
    check_stock_balance(gateway, sku, initial=5, confirmed_units=2)
    assert saga_statuses(engines["saga"], [order_id]) == {order_id: "COMPLETED"}


def test_declined_journey_releases_the_reservation(gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = f"j-decl-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="12.50")
    order_id = _place(gateway, sku, 2, "pm_card_chargeDeclined")
    order = _settled(gateway, engines, order_id)
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "PAYMENT_DECLINED")
    assert [p["status"] for p in gateway.payments(order_id)] == ["DECLINED"]
    check_stock_balance(gateway, sku, initial=5, confirmed_units=0)
    assert gateway.stock(sku)["available"] == 5
    assert saga_statuses(engines["saga"], [order_id]) == {order_id: "FAILED"}


@pytest.mark.parametrize("initial", [1, 0], ids=["not-enough-stock", "none-in-stock"])
def test_out_of_stock_journey_charges_nothing(gateway: Gateway, engines: dict[str, Engine], initial: int) -> None:
    """The payment is authorized while the stock is reserved (place_order v2): out of stock, the authorization is
    voided, or, when the void overtook it, never made."""
    # a SKU inventory has never heard of has no price and cannot be ordered at all (tests/integration/test_prices.py)
    sku = f"j-oos-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, initial, unit_price="12.50")
    order_id = _place(gateway, sku, 3, "pm_card_visa")
    order = _settled(gateway, engines, order_id)
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "OUT_OF_STOCK")
    assert [p["status"] for p in gateway.payments(order_id)] in ([], ["VOIDED"])
    check_stock_balance(gateway, sku, initial=initial, confirmed_units=0)


def test_multi_line_order_reserves_all_or_nothing(gateway: Gateway, engines: dict[str, Engine]) -> None:
    plenty, scarce = f"j-a-{uuid.uuid4().hex[:8]}", f"j-b-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(plenty, 10, unit_price="1.00")
    gateway.set_stock(scarce, 1, unit_price="1.00")
    resp = gateway.place_order("cust-multi", [{"sku": plenty, "quantity": 4, "unit_price": "1.00"},
                                              {"sku": scarce, "quantity": 2, "unit_price": "1.00"}])
    order = _settled(gateway, engines, resp.json()["order_id"])
    assert order["cancel_reason"] == "OUT_OF_STOCK"
    assert gateway.stock(plenty)["available"] == 10  # the line that fit was not reserved either
    assert Decimal(order["total_amount"]) == Decimal("6.00")
