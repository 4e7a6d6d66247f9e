"""Stopping and starting the whole stack in the middle of a batch loses nothing and doubles nothing."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine

from tests.e2e.invariants import check_order_consistency, check_stock_balance, saga_statuses
from tests.support import eventually
from walsaga.client import Gateway
from walsaga.stack import lifecycle, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack

METHODS = ["pm_card_visa", "pm_card_visa", "pm_card_chargeDeclined"]


def _submit(gw: Gateway, key: str, sku: str, i: int) -> str | None:
    """One order; retried with the same key until accepted, so a request cut by the stop is not lost or doubled."""
    items = [{"sku": sku, "quantity": 1 + i % 2, "unit_price": "3.00"}]
    try:
        resp = gw.place_order(f"restart-{i % 5}", items, METHODS[i % len(METHODS)], key=key)
    except httpx.HTTPError:
        return None
    return resp.json()["order_id"] if resp.status_code == 202 else None


def test_stop_and_start_in_the_middle_of_a_batch(stack: StackConfig, gateway: Gateway,
                                                 engines: dict[str, Engine]) -> None:
    sku = f"restart-{uuid.uuid4().hex[:8]}"
    initial = 40
    gateway.set_stock(sku, initial, unit_price="3.00")
    keys = [str(uuid.uuid4()) for _ in range(30)]
    accepted: dict[str, str] = {}

    with ThreadPoolExecutor(8) as pool:
        for key, order_id in zip(keys[:15], pool.map(lambda k: _submit(gateway, k, sku, keys.index(k)), keys[:15]),
                                 strict=True):
            if order_id:
                accepted[key] = order_id
    # stop the saga workers first, so the first half is provably mid-flight when the whole stack stops
    for i in range(stack.faust_instances):
        procs.kill9(stack, f"processors-{i}")
    pending = [oid for oid in accepted.values() if gateway.order(oid)["status"] == "PENDING"]
    assert pending, "every order settled before the stop; the test would prove nothing"
    lifecycle.down(stack)
    lifecycle.up(stack)
    fresh = Gateway(stack.gateway_url, gateway.token)  # a new connection pool, the same caller

    def submit_rest() -> None:
        for i, key in enumerate(keys):
            if key not in accepted:
                order_id = _submit(fresh, key, sku, i)
                assert order_id, f"order {i} not accepted yet"
                accepted[key] = order_id

    eventually(submit_rest, timeout=60, interval=0.5)
    # replaying every key after the restart returns the same orders: nothing doubled at the edge
    for i, key in enumerate(keys[:15]):
        assert _submit(fresh, key, sku, i) == accepted[key]

    order_ids = list(accepted.values())
    assert len(set(order_ids)) == len(keys)

    def all_settled() -> None:
        statuses = saga_statuses(engines["saga"], order_ids)
        assert len(statuses) == len(order_ids), f"{len(order_ids) - len(statuses)} sagas not started"
        open_ = [s for s in statuses.values() if s not in ("COMPLETED", "FAILED")]
        assert not open_, f"{len(open_)} sagas still open"

    eventually(all_settled, timeout=120, interval=0.5)
    orders = [check_order_consistency(fresh, oid) for oid in order_ids]
    confirmed_units = sum(o["items"][0]["quantity"] for o in orders if o["status"] == "CONFIRMED")
    assert any(o["status"] == "CONFIRMED" for o in orders)
    assert any(o["cancel_reason"] == "PAYMENT_DECLINED" for o in orders)
    check_stock_balance(fresh, sku, initial, confirmed_units)
