"""`walsaga demo`: three orders through the gateway (confirmed, declined, out of stock), each journey printed."""
from __future__ import annotations

import time
import uuid

import psycopg

from services.common.auth import Role
from walsaga.client import Gateway
from walsaga.stack.config import StackConfig, db_url


def run(cfg: StackConfig) -> int:
    run_id = uuid.uuid4().hex[:6]
    customer = f"demo-customer-{run_id}"
    admin = Gateway.as_(cfg, role=Role.ADMIN)  # stock levels are an admin's
    gw = Gateway.as_(cfg, subject=customer, role=Role.CUSTOMER)  # the orders are the customer's own
    print(f"tokens: an admin's for the stock, customer {customer}'s for the orders (walsaga token)")
    sku = f"demo-{run_id}"
    admin.set_stock(sku, 5, unit_price="10.00")
    print(f"stock {sku}: {gw.stock(sku)}")
    journeys = [
        ("confirmed", [{"sku": sku, "quantity": 2, "unit_price": "10.00"}], "pm_card_visa"),
        ("payment declined", [{"sku": sku, "quantity": 1, "unit_price": "10.00"}], "pm_card_chargeDeclined"),
        ("out of stock", [{"sku": sku, "quantity": 100, "unit_price": "10.00"}], "pm_card_visa"),
    ]
    failures = 0
    for label, items, pm in journeys:
        t0 = time.monotonic()
        resp = gw.place_order(customer, items, pm)
        resp.raise_for_status()
        order_id = resp.json()["order_id"]
        order = gw.wait_final(order_id)
        elapsed = time.monotonic() - t0
        _wait_saga_closed(cfg, order_id)
        print(f"\n== {label}: order {order_id} -> {order['status']} {order['cancel_reason'] or ''} "
              f"({elapsed * 1000:.0f} ms)")
        for at, message_type, status, note in _history(cfg, order_id):
            print(f"   {at:%H:%M:%S.%f}  {message_type:<24} saga {status:<12} {note}")
        for p in gw.payments(order_id):
            print(f"   payment {p['status']} {p['amount']} {p['currency']}")
        for n in _wait_notifications(gw, order_id):
            print(f"   notification {n['type']} via {n['channel']}: {n['status']}")
        expected = {"confirmed": "CONFIRMED"}.get(label, "CANCELLED")
        failures += order["status"] != expected
    print(f"\nstock {sku} after the demo: {gw.stock(sku)}")
    print(f"gateway: {cfg.gateway_url}")
    return 1 if failures else 0


def _history(cfg: StackConfig, order_id: str) -> list[tuple]:
    with psycopg.connect(db_url(cfg, "saga", driver="postgresql")) as conn:
        return conn.execute("SELECT at, message_type, status, note FROM saga_history WHERE saga_id = %s ORDER BY id",
                            (order_id,)).fetchall()


def _wait_saga_closed(cfg: StackConfig, order_id: str, timeout: float = 30.0) -> None:
    # the order is final before the saga's last retriable steps (capture, commit stock) are done
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url(cfg, "saga", driver="postgresql"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status FROM saga_instance WHERE saga_id = %s", (order_id,)).fetchone()
            if row and row[0] in ("COMPLETED", "FAILED"):
                return
            time.sleep(0.05)


def _wait_notifications(gw: Gateway, order_id: str, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = gw.notifications(order_id)
        if found:
            return found
        time.sleep(0.1)
    return []
