"""Prices come from the server: inventory owns each SKU's price (versioned, announced as PriceChanged), the orders
service keeps a copy and prices every order from it. A client can name a price only to have it checked; the attack
from issue 12 (10 units at 0.01) is refused."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from sqlalchemy import Engine, text

from schemas import codec, topics
from schemas.headers import Envelope, for_confluent
from tests.support import TopicTail, eventually, headers_of
from walsaga.client import Gateway
from walsaga.stack import kafka_acls
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def _sku() -> str:
    return f"price-{uuid.uuid4().hex[:8]}"


def _order(gw: Gateway, sku: str, quantity: int, unit_price: str | None = None, currency: str = "USD"):  # type: ignore[no-untyped-def]
    line: dict = {"sku": sku, "quantity": quantity}
    if unit_price is not None:
        line["unit_price"] = unit_price
    return gw.place_order(f"cust-{uuid.uuid4().hex[:6]}", [line], currency=currency)


def _copy(engines: dict[str, Engine], sku: str) -> tuple[Decimal, int] | None:
    with engines["orders"].connect() as c:
        row = c.execute(text("SELECT unit_price, version FROM catalog_price WHERE sku = :s"), {"s": sku}).first()
    return (row.unit_price, row.version) if row else None


def test_a_price_is_versioned_and_announced_once_per_change(stack: StackConfig, gateway: Gateway) -> None:
    sku = _sku()
    tail = TopicTail(kafka_acls.admin(stack), topics.INVENTORY_PRICES)
    try:
        first = gateway.set_stock(sku, 5, unit_price="10.00")
        same = gateway.set_stock(sku, 6, unit_price="10.00")
        moved = gateway.set_stock(sku, 6, unit_price="12.00")
        kept = gateway.set_stock(sku, 7, unit_price=None)
        assert [r["price_version"] for r in (first, same, moved, kept)] == [1, 1, 2, 2]
        assert (kept["unit_price"], kept["currency"], kept["available"]) == ("12.00", "USD", 7)
        tail.poll_until(lambda m: headers_of(m).get("eventType") == "PriceChanged" and m.key() == sku.encode()
                        and codec.decode("PriceChanged", 1, m.value())["version"] == 2, timeout=30)
        tail.drain_to_end()
        announced = [codec.decode("PriceChanged", 1, m.value()) for m in tail.seen if m.key() == sku.encode()]
        assert [(a["version"], a["unit_price"]) for a in announced] == [(1, Decimal("10.00")), (2, Decimal("12.00"))]
    finally:
        tail.close()


def test_the_server_prices_the_order_and_refuses_a_client_price(gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = _sku()
    gateway.set_stock(sku, 50, unit_price="10.00")
    tampered = _order(gateway, sku, 10, unit_price="0.01")
    assert tampered.status_code == 409, tampered.text
    assert tampered.json()["error"] == "price_changed"
    assert tampered.json()["current"] == {sku: "10.00"}

    placed = _order(gateway, sku, 10)
    assert placed.status_code == 202, placed.text
    assert placed.json()["total_amount"] == "100.00"
    assert placed.json()["items"][0]["unit_price"] == "10.00"
    confirmed = gateway.wait_final(placed.json()["order_id"])
    assert confirmed["status"] == "CONFIRMED"
    payments = eventually(lambda: _captured(gateway, placed.json()["order_id"]))
    assert payments["amount"] == "100.00"
    with engines["orders"].connect() as c:
        orders = c.execute(text("SELECT count(*) FROM order_lines WHERE sku = :s"), {"s": sku}).scalar()
    assert orders == 1  # the refused order left nothing behind


def test_the_current_price_is_accepted_and_a_price_just_set_is_waited_for(gateway: Gateway) -> None:
    sku = _sku()
    gateway.set_stock(sku, 50, unit_price="10.00")
    assert _order(gateway, sku, 1, unit_price="10.00").status_code == 202
    gateway.set_stock(sku, 50, unit_price="11.00")
    # at once: the copy trails by a CDC hop and the API waits for it (bounded) rather than answering 409
    resp = _order(gateway, sku, 2, unit_price="11.00")
    assert resp.status_code == 202, resp.text
    assert resp.json()["total_amount"] == "22.00"


def test_a_sku_without_a_price_cannot_be_ordered(gateway: Gateway) -> None:
    sku = _sku()
    gateway.set_stock(sku, 5, unit_price=None)
    resp = _order(gateway, sku, 1)
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "not_orderable" and resp.json()["skus"] == [sku]


def test_an_order_in_another_currency_is_422(gateway: Gateway) -> None:
    sku = _sku()
    gateway.set_stock(sku, 5, unit_price="3.00")
    resp = _order(gateway, sku, 1, currency="EUR")
    assert resp.status_code == 422 and "USD" in resp.json()["detail"], resp.text


def test_an_overtaken_price_event_does_not_bring_back_an_old_price(stack: StackConfig, gateway: Gateway,
                                                                   engines: dict[str, Engine]) -> None:
    sku = _sku()
    gateway.set_stock(sku, 5, unit_price="8.00")
    gateway.set_stock(sku, 5, unit_price="9.00")
    eventually(lambda: _assert_copy(engines, sku, (Decimal("9.00"), 2)))
    # version 1 again, as a new event (a replay from elsewhere): the copy keeps the higher version
    stale = {"sku": sku, "unit_price": Decimal("8.00"), "currency": "USD", "version": 1}
    payload, version = codec.encode("PriceChanged", stale)
    event_id = str(uuid.uuid4())
    env = Envelope(event_id, "PriceChanged", version, sku, sku, event_id)
    producer = Producer(kafka_acls.admin(stack).confluent({"enable.idempotence": True}))
    producer.produce(topics.INVENTORY_PRICES, key=sku.encode(), value=payload, headers=for_confluent(env.to_headers()))
    assert producer.flush(10) == 0

    def applied() -> None:  # the orders consumer claimed it in its inbox, in the transaction that applied it
        with engines["orders"].connect() as c:
            assert c.execute(text("SELECT count(*) FROM inbox WHERE message_id = :m"), {"m": event_id}).scalar() == 1
    eventually(applied, timeout=30)
    assert _copy(engines, sku) == (Decimal("9.00"), 2)


def _assert_copy(engines: dict[str, Engine], sku: str, expected: tuple[Decimal, int]) -> None:
    assert _copy(engines, sku) == expected


def _captured(gateway: Gateway, order_id: str) -> dict:
    found = gateway.payments(order_id)
    assert found and found[0]["status"] == "CAPTURED", found
    return found[0]


def test_a_price_of_zero_is_422_and_writes_nothing(gateway: Gateway) -> None:
    sku = _sku()
    resp = gateway.http.put(f"/inventory/{sku}", json={"available": 3, "unit_price": "0.00"})
    assert resp.status_code == 422 and "positive" in resp.json()["detail"], resp.text
    assert gateway.http.get(f"/inventory/{sku}").status_code == 404  # the stock level rolled back with it
