"""Customer cancellation through the gateway: conditional on the order version, idempotent, and racing the saga's
confirmation into exactly one consistent outcome (cancelled before the pivot: compensated; after it: refunded)."""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.e2e.invariants import check_order_consistency, check_stock_balance, saga_statuses
from tests.support import eventually
from walsaga.client import Gateway
from walsaga.stack import apps, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def _place(gw: Gateway, sku: str, quantity: int = 1, customer: str | None = None) -> str:
    resp = gw.place_order(customer or f"cust-{uuid.uuid4().hex[:6]}",
                          [{"sku": sku, "quantity": quantity, "unit_price": "9.99"}])
    assert resp.status_code == 202, resp.text
    return resp.json()["order_id"]


def _saga(engines: dict[str, Engine], order_id: str) -> tuple[str, str, str | None]:
    with engines["saga"].connect() as conn:
        row = conn.execute(text("SELECT definition, status, failure_reason FROM saga_instance WHERE saga_id = :s"),
                           {"s": order_id}).one()
    return row.definition, row.status, row.failure_reason


def _settled(gw: Gateway, engines: dict[str, Engine], order_id: str, timeout: float = 60,
             status: str | None = None) -> dict:
    """The order once its saga has ended and the services agree; with `status`, once it has that status too (right
    after a cancel the place-order saga may still read COMPLETED before the refund saga has started)."""
    def probe() -> dict:
        assert saga_statuses(engines["saga"], [order_id]).get(order_id) in ("COMPLETED", "FAILED")
        order = check_order_consistency(gw, order_id)
        assert status is None or order["status"] == status, order
        return order
    return eventually(probe, timeout=timeout, interval=0.2)


def _counter(engines: dict[str, Engine], name: str) -> int:
    with engines["orders"].connect() as conn:
        return conn.execute(text("SELECT coalesce(sum(value), 0) FROM delivery_counter "
                                 "WHERE consumer = 'orders-api' AND counter = :c"), {"c": name}).scalar_one()


def test_cancelling_a_confirmed_order_refunds_it_and_returns_the_stock(gateway: Gateway,
                                                                     engines: dict[str, Engine]) -> None:
    sku = f"c-refund-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5)
    order_id = _place(gateway, sku, 2)
    assert _settled(gateway, engines, order_id)["status"] == "CONFIRMED"

    resp = gateway.cancel(order_id, if_match=2)
    assert resp.status_code == 202, resp.text
    assert (resp.json()["status"], resp.headers["ETag"]) == ("CANCELLING", '"3"')

    order = _settled(gateway, engines, order_id, status="CANCELLED")
    assert (order["status"], order["cancel_reason"], order["version"]) == ("CANCELLED", "CUSTOMER_CANCELLED", 4)
    assert [p["status"] for p in gateway.payments(order_id)] == ["REFUNDED"]
    check_stock_balance(gateway, sku, initial=5, confirmed_units=0)
    assert gateway.stock(sku)["available"] == 5
    assert _saga(engines, order_id) == ("refund_order", "COMPLETED", None)


def test_cancelling_a_pending_order_stops_its_saga_and_compensates(stack: StackConfig, gateway: Gateway,
                                                                   engines: dict[str, Engine]) -> None:
    """The payments consumer is stopped, so the saga waits at authorize_payment (stock reserved, AuthorizePayment
    queued); the cancel interrupts it: VoidPayment is queued behind the authorization, the stock is released."""
    sku = f"c-pending-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5)
    procs.stop(stack, "payments-consumer")
    try:
        order_id = _place(gateway, sku, 3)
        eventually(lambda: _assert_reserved(gateway, sku, 3), timeout=30)
        resp = gateway.cancel(order_id, if_match=1)
        assert resp.status_code == 202, resp.text
        assert (resp.json()["status"], resp.json()["cancel_reason"]) == ("CANCELLED", "CUSTOMER_CANCELLED")
        eventually(lambda: _assert_saga(engines, order_id, "COMPENSATING"), timeout=30)
    finally:
        apps.start_consumer(stack, "payments")
    order = _settled(gateway, engines, order_id)
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "CUSTOMER_CANCELLED")
    assert [p["status"] for p in gateway.payments(order_id)] == ["VOIDED"]  # authorized late, then voided
    check_stock_balance(gateway, sku, initial=5, confirmed_units=0)
    assert _saga(engines, order_id) == ("place_order", "FAILED", "CUSTOMER_CANCELLED")


def _assert_reserved(gw: Gateway, sku: str, units: int) -> None:
    assert gw.stock(sku)["reserved"] == units


def _assert_saga(engines: dict[str, Engine], order_id: str, status: str) -> None:
    assert _saga(engines, order_id)[1] == status


def test_cancels_racing_confirmations_each_end_in_one_consistent_outcome(gateway: Gateway,
                                                                        engines: dict[str, Engine]) -> None:
    """Each order is cancelled 0-2.3 s after it is accepted, so the cancels land before, during and after the
    saga's confirmation: whichever of the cancel and ConfirmOrder commits first on the order row wins. Either way it
    ends CANCELLED, with nothing charged and no stock held."""
    sku = f"c-race-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 100)

    def place_and_cancel(i: int) -> tuple[str, str]:
        order_id = _place(gateway, sku)
        time.sleep(0.1 * i)
        resp = gateway.cancel(order_id)
        assert resp.status_code == 202, resp.text
        return order_id, resp.json()["status"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(place_and_cancel, range(24)))
    for order_id, _ in results:
        order = _settled(gateway, engines, order_id, timeout=120, status="CANCELLED")
        assert (order["status"], order["cancel_reason"]) == ("CANCELLED", "CUSTOMER_CANCELLED")
        assert all(p["status"] in ("VOIDED", "REFUNDED") for p in gateway.payments(order_id))
    check_stock_balance(gateway, sku, initial=100, confirmed_units=0)
    winners = {status for _, status in results}
    assert winners <= {"CANCELLED", "CANCELLING"}
    print(f"cancel won {sum(s == 'CANCELLED' for _, s in results)}x, confirmation won "
          f"{sum(s == 'CANCELLING' for _, s in results)}x")


def test_concurrent_cancels_of_one_order_accept_exactly_one(gateway: Gateway, engines: dict[str, Engine]) -> None:
    sku = f"c-dup-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5)
    order_id = _place(gateway, sku)
    before = _counter(engines, "cancel_conflicts")
    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(lambda _: gateway.cancel(order_id).status_code, range(6)))
    assert codes == [202, 409, 409, 409, 409, 409]
    assert _counter(engines, "cancel_conflicts") - before == 5
    _settled(gateway, engines, order_id, status="CANCELLED")


def test_stale_if_match_is_412_and_a_replayed_key_answers_the_same(stack: StackConfig, gateway: Gateway,
                                                                   engines: dict[str, Engine]) -> None:
    sku = f"c-etag-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 5)
    order_id = _place(gateway, sku)
    # read-your-writes: the view answers at version 1 or later (the saga may have confirmed the order meanwhile)
    etag = gateway.http.get(f"/orders/{order_id}", headers={"X-Consistency-Token": f"{order_id}@1"}).headers["ETag"]
    assert etag in ('"1"', '"2"'), etag
    _settled(gateway, engines, order_id)  # confirmed meanwhile: version 2
    before = _counter(engines, "stale_if_match")

    stale = gateway.cancel(order_id, if_match=1)
    assert stale.status_code == 412, stale.text
    assert stale.json()["current_version"] == 2
    assert _counter(engines, "stale_if_match") - before == 1
    assert gateway.cancel(order_id, if_match="*").status_code == 400

    key = str(uuid.uuid4())
    first = gateway.cancel(order_id, key=key, if_match=2)
    again = gateway.cancel(order_id, key=key, if_match=2)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert gateway.cancel(order_id, key=key, if_match=3).status_code == 422  # same key, another request
    assert gateway.cancel(order_id).status_code == 409
    assert gateway.cancel(str(uuid.uuid4())).status_code == 404
    assert gateway.http.post(f"/orders/{order_id}/cancel").status_code == 400  # no Idempotency-Key
    _settled(gateway, engines, order_id, status="CANCELLED")

    metrics = httpx.get(f"http://127.0.0.1:{stack.ports.api('orders', 0)}/metrics", timeout=5).text
    assert 'consumer="orders-api",counter="stale_if_match"}' in metrics


def test_hot_sku_never_oversells_and_accounts_for_every_unit(stack: StackConfig, gateway: Gateway,
                                                             engines: dict[str, Engine]) -> None:
    """40 concurrent orders for one unit each of a SKU with 15 in stock, applied by two inventory consumers at once
    (they split the partitions, so they contend for the SKU's row): exactly 15 confirmed, the rest out of stock,
    available + reserved + committed still 15, and no deadlock, retry or dead letter on the way."""
    sku = f"c-hot-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 15)
    before = _inventory_counters(engines)
    second = apps.start_consumer(stack, "inventory", instance=1)
    try:
        with ThreadPoolExecutor(10) as pool:
            order_ids = list(pool.map(lambda _: _place(gateway, sku), range(40)))
        outcomes = [(o["status"], o["cancel_reason"])
                    for o in (_settled(gateway, engines, oid, timeout=120) for oid in order_ids)]
    finally:
        procs.stop(stack, second)
    assert outcomes.count(("CONFIRMED", None)) == 15
    assert outcomes.count(("CANCELLED", "OUT_OF_STOCK")) == 25
    check_stock_balance(gateway, sku, initial=15, confirmed_units=15)
    after = _inventory_counters(engines)
    retried = {k: after.get(k, 0) - before.get(k, 0) for k in ("transient_retries", "dead_letters")}
    print(f"hot SKU: 40 orders, 2 inventory consumers: {retried}")
    assert retried == {"transient_retries": 0, "dead_letters": 0}  # row locks in SKU order: no deadlock to retry


def _inventory_counters(engines: dict[str, Engine]) -> dict[str, int]:
    with engines["inventory"].connect() as conn:
        return {r.counter: r.value for r in conn.execute(text(
            "SELECT counter, value FROM delivery_counter WHERE consumer = 'inventory'"))}
