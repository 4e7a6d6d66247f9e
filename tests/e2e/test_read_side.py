"""The read side through the gateway: GETs of orders come from the order view (built from every service's change
stream), with read-your-writes tokens, a timeline of every step, and a customer's order list."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from schemas.consistency import STATE_HEADER, TOKEN_HEADER
from tests.e2e.invariants import saga_statuses
from tests.support import eventually
from walsaga.client import Gateway

pytestmark = pytest.mark.stack

CONFIRMED_STEPS = ["OrderCreated", "StockReserved", "PaymentAuthorized", "OrderConfirmed", "PaymentCaptured",
                   "StockCommitted", "NotificationSent"]


def _place(gw: Gateway, sku: str, customer: str = "", pm: str = "pm_card_visa"):  # type: ignore[no-untyped-def]
    resp = gw.place_order(customer or f"cust-{uuid.uuid4().hex[:6]}",
                          [{"sku": sku, "quantity": 1, "unit_price": "4.20"}], pm)
    assert resp.status_code == 202, resp.text
    return resp


def test_a_write_token_makes_the_next_read_see_that_write(gateway: Gateway) -> None:
    sku = f"r-ryw-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="4.20")
    placed = _place(gateway, sku)
    order_id, token = placed.json()["order_id"], placed.headers[TOKEN_HEADER]
    assert token == f"{order_id}@1"
    read = gateway.http.get(f"/orders/{order_id}", headers={TOKEN_HEADER: token})
    assert read.status_code == 200 and read.headers[STATE_HEADER] == "fresh"
    body = read.json()
    assert body["version"] >= 1 and body["total_amount"] == "4.20" and body["items"][0]["sku"] == sku
    assert "payment_status" in body

    done = gateway.wait_final(order_id)
    cancel = gateway.cancel(order_id, if_match=done["version"])
    assert cancel.status_code == 202, cancel.text
    after = gateway.http.get(f"/orders/{order_id}", headers={TOKEN_HEADER: cancel.headers[TOKEN_HEADER]})
    assert after.headers[STATE_HEADER] == "fresh"
    assert after.json()["status"] in ("CANCELLING", "CANCELLED")
    assert after.json()["version"] >= done["version"] + 1


def test_a_token_the_view_cannot_reach_in_time_is_answered_as_stale(gateway: Gateway) -> None:
    sku = f"r-stale-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="4.20")
    order_id = _place(gateway, sku).json()["order_id"]
    gateway.wait_final(order_id)
    stale = gateway.http.get(f"/orders/{order_id}", headers={TOKEN_HEADER: f"{order_id}@99"})
    assert stale.status_code == 200 and stale.headers[STATE_HEADER] == "stale"
    assert stale.json()["version"] < 99
    missing = gateway.http.get(f"/orders/{uuid.uuid4()}", headers={TOKEN_HEADER: f"{uuid.uuid4()}@1"})
    assert missing.status_code == 404 and missing.headers[STATE_HEADER] == "stale"
    assert gateway.http.get(f"/orders/{order_id}", headers={TOKEN_HEADER: "no-version"}).status_code == 400
    plain = gateway.http.get(f"/orders/{order_id}")
    assert plain.status_code == 200 and STATE_HEADER not in plain.headers


def test_the_timeline_lists_every_step_with_its_commit_and_kafka_time(gateway: Gateway,
                                                                    engines: dict[str, Engine]) -> None:
    sku = f"r-tl-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="4.20")
    order_id = _placed_and_settled(gateway, engines, sku)

    def complete() -> list[dict]:
        steps = gateway.timeline(order_id)
        assert sorted(s["event_type"] for s in steps) == sorted(CONFIRMED_STEPS), steps
        return steps

    steps = eventually(complete, timeout=30)
    assert [s["event_type"] for s in steps][0] == "OrderCreated"
    for s in steps:
        written, kafka = datetime.fromisoformat(s["written_at"]), datetime.fromisoformat(s["kafka_at"])
        assert written <= kafka + timedelta(seconds=1), s  # a record reaches Kafka after its transaction
    view = gateway.order(order_id)
    assert (view["status"], view["payment_status"], view["stock_status"]) == ("CONFIRMED", "CAPTURED", "COMMITTED")


def _placed_and_settled(gw: Gateway, engines: dict[str, Engine], sku: str, customer: str = "") -> str:
    order_id = _place(gw, sku, customer).json()["order_id"]
    eventually(lambda: _assert_done(engines, order_id), timeout=60, interval=0.2)
    return order_id


def _assert_done(engines: dict[str, Engine], order_id: str) -> None:
    assert saga_statuses(engines["saga"], [order_id]).get(order_id) in ("COMPLETED", "FAILED")


def test_a_customer_lists_their_orders_newest_first(gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = f"r-list-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5, unit_price="4.20")
    customer = f"cust-list-{uuid.uuid4().hex[:6]}"
    ids = [_placed_and_settled(gateway, engines, sku, customer) for _ in range(3)]

    def listed() -> list[dict]:
        resp = gateway.orders_of(customer)
        assert resp.status_code == 200
        assert len(resp.json()) == 3, resp.json()
        return resp.json()

    orders = eventually(listed, timeout=30)
    assert [o["order_id"] for o in orders] == list(reversed(ids))
    assert {o["customer_id"] for o in orders} == {customer}
    assert gateway.orders_of(f"nobody-{uuid.uuid4().hex[:6]}").json() == []
