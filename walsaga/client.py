"""A small HTTP client for the gateway, used by the demo, the tests and the benchmarks."""
from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from schemas.consistency import TOKEN_HEADER, make_token
from services.common import auth
from services.common.auth import Role
from walsaga.stack.config import StackConfig, token_signing_key

FINAL = {"CONFIRMED", "CANCELLED"}
STAFF_SUBJECT = "walsaga-tools"  # the subject of the tools' own admin tokens (demo setup, tests, benchmarks)
TOOLS_PRICE = "9.99"  # what the tools (demo, tests, benchmarks) sell a SKU at unless they say otherwise


def issue_token(cfg: StackConfig, subject: str, role: Role, ttl_s: int = auth.DEFAULT_TTL_S) -> str:
    """What `walsaga token` prints: a token signed with the stack's key."""
    return auth.issue(token_signing_key(cfg), subject, role, ttl_s)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Gateway:
    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self.base_url, self.token = base_url, token
        self.http = httpx.Client(base_url=base_url, timeout=timeout, headers=bearer(token))

    @classmethod
    def as_(cls, cfg: StackConfig, subject: str = STAFF_SUBJECT, role: Role = Role.ADMIN, timeout: float = 10.0,
            ttl_s: int = 24 * 3600) -> Gateway:
        """A client of this stack's gateway with a fresh token (an admin by default: it sets stock levels and acts
        on any customer's behalf)."""
        return cls(cfg.gateway_url, issue_token(cfg, subject, role, ttl_s), timeout)

    def set_stock(self, sku: str, available: int, unit_price: str | None = TOOLS_PRICE) -> dict[str, Any]:
        """An admin's PUT: the stock level and (unless None) the price."""
        body: dict[str, Any] = {"available": available}
        if unit_price is not None:
            body["unit_price"] = unit_price
        resp = self.http.put(f"/inventory/{sku}", json=body)
        resp.raise_for_status()
        return resp.json()

    def stock(self, sku: str) -> dict[str, Any]:
        resp = self.http.get(f"/inventory/{sku}")
        resp.raise_for_status()
        return resp.json()

    def place_order(self, customer_id: str, items: list[dict[str, Any]], payment_method: str = "pm_card_visa",
                    currency: str = "USD", key: str | None = None, channel: str | None = None) -> httpx.Response:
        body = {"customer_id": customer_id, "items": items, "currency": currency, "payment_method": payment_method}
        return self.http.post("/orders", json={**body, "channel": channel} if channel else body,
                              headers={"Idempotency-Key": key or str(uuid.uuid4())})

    def cancel(self, order_id: str, key: str | None = None, if_match: int | str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"' if isinstance(if_match, int) else if_match
        return self.http.post(f"/orders/{order_id}/cancel", headers=headers)

    def order(self, order_id: str, token: str | None = None) -> dict[str, Any]:
        """The order from the read side. Without a token it still waits (bounded) until the view has the order at
        all; a read that stays stale raises (404) rather than pretending."""
        resp = self.http.get(f"/orders/{order_id}", headers={TOKEN_HEADER: token or make_token(order_id, 1)})
        resp.raise_for_status()
        return resp.json()

    def orders_of(self, customer_id: str, token: str | None = None) -> httpx.Response:
        return self.http.get("/orders", params={"customer_id": customer_id},
                             headers={TOKEN_HEADER: token} if token else {})

    def timeline(self, order_id: str) -> list[dict[str, Any]]:
        resp = self.http.get(f"/orders/{order_id}/timeline")
        resp.raise_for_status()
        return resp.json()

    def payments(self, order_id: str) -> list[dict[str, Any]]:
        resp = self.http.get("/payments", params={"order_id": order_id})
        resp.raise_for_status()
        return resp.json()

    def notifications(self, order_id: str) -> list[dict[str, Any]]:
        resp = self.http.get("/notifications", params={"order_id": order_id})
        resp.raise_for_status()
        return resp.json()

    def wait_final(self, order_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                order = self.order(order_id)
            except httpx.HTTPStatusError as exc:  # not in the read model yet
                if exc.response.status_code != 404:
                    raise
                order = {"status": "not yet visible"}
            if order["status"] in FINAL:
                return order
            if time.monotonic() > deadline:
                raise TimeoutError(f"order {order_id} still {order['status']} after {timeout:.0f}s")
            time.sleep(0.1)
