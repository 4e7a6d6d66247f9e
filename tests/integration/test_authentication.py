"""Who may do what, through the real gateway and APIs: no token or a bad one is 401, a role that may not is 403, and
a customer sees and cancels only their own orders (someone else's answers 404, as an unknown id would). Tokens come
from `walsaga token`, as a user gets them."""
from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest

from tests.support import cli_token, eventually
from walsaga.client import Gateway
from walsaga.stack.config import REPO, StackConfig

pytestmark = pytest.mark.stack


def _customer(stack: StackConfig) -> tuple[str, Gateway]:
    who = f"cust-{uuid.uuid4().hex[:8]}"
    return who, Gateway(stack.gateway_url, cli_token(stack, who, "customer"))


def _order(client: Gateway, sku: str, **extra: str) -> httpx.Response:
    return client.http.post("/orders", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "currency": "USD", "payment_method": "pm_card_visa",
        "items": [{"sku": sku, "quantity": 1, "unit_price": "5.00"}], **extra})


@pytest.fixture(scope="module")
def sku(gateway: Gateway) -> str:
    name = f"auth-{uuid.uuid4().hex[:6]}"
    gateway.set_stock(name, 100, unit_price="5.00")
    return name


@pytest.mark.parametrize("method,path", [("GET", "/orders/x"), ("POST", "/orders"), ("POST", "/orders/x/cancel"),
                                         ("GET", "/orders?customer_id=c"), ("PUT", "/inventory/x"),
                                         ("GET", "/inventory/x"), ("GET", "/payments?order_id=x"),
                                         ("GET", "/notifications?order_id=x"), ("GET", "/orders/x/timeline")])
def test_no_token_is_401_at_the_gateway(stack: StackConfig, method: str, path: str) -> None:
    resp = httpx.request(method, f"{stack.gateway_url}{path}", json={}, timeout=10)
    assert resp.status_code == 401, resp.text
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.json()["error"] == "unauthorized"


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c"])
def test_a_token_that_does_not_verify_is_401_from_the_api(stack: StackConfig, token: str) -> None:
    resp = httpx.get(f"{stack.gateway_url}/orders/x", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 401, resp.text
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_a_tampered_token_is_401(stack: StackConfig) -> None:
    header, claims, signature = cli_token(stack, "tamper", "customer").split(".")
    forged = f"{header}.{claims}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    resp = httpx.get(f"{stack.gateway_url}/orders/x", headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    assert resp.status_code == 401, resp.text


def test_the_token_command_refuses_an_unknown_role(stack: StackConfig) -> None:
    done = subprocess.run([sys.executable, "-m", "walsaga.cli", "token", "--subject", "x", "--role", "root"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 2 and done.stdout == ""


def test_a_customer_places_reads_and_cancels_only_their_own_orders(stack: StackConfig, gateway: Gateway,
                                                                    sku: str) -> None:
    alice, as_alice = _customer(stack)
    bob, as_bob = _customer(stack)
    placed = _order(as_alice, sku)
    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert order["customer_id"] == alice  # omitted in the body: the token's subject
    assert _order(as_alice, sku, customer_id=bob).status_code == 403
    final = gateway.wait_final(order["order_id"])
    assert final["status"] == "CONFIRMED"

    own = as_alice.http.get(f"/orders/{order['order_id']}")
    assert own.status_code == 200 and own.json()["customer_id"] == alice
    theirs = as_bob.http.get(f"/orders/{order['order_id']}")
    unknown = as_bob.http.get(f"/orders/{uuid.uuid4()}")
    assert theirs.status_code == unknown.status_code == 404
    # the same answer but for the id in the reason: nothing tells "someone else's" from "no such order"
    assert theirs.text.replace(order["order_id"], "?") == unknown.text.replace(unknown.url.path.split("/")[-1], "?")
    assert as_bob.http.get(f"/orders/{order['order_id']}/timeline").status_code == 404
    assert as_alice.http.get(f"/orders/{order['order_id']}/timeline").status_code == 200

    paid = eventually(lambda: _nonempty(as_alice.http.get("/payments", params={"order_id": order["order_id"]})))
    assert paid[0]["status"] in ("AUTHORIZED", "CAPTURED")
    assert as_bob.http.get("/payments", params={"order_id": order["order_id"]}).json() == []
    eventually(lambda: _nonempty(as_alice.http.get("/notifications", params={"order_id": order["order_id"]})))
    assert as_bob.http.get("/notifications", params={"order_id": order["order_id"]}).json() == []

    listed = as_alice.http.get("/orders")
    assert listed.status_code == 200 and [o["order_id"] for o in listed.json()] == [order["order_id"]]
    assert as_bob.http.get("/orders", params={"customer_id": alice}).status_code == 403

    stolen = as_bob.http.post(f"/orders/{order['order_id']}/cancel", headers={"Idempotency-Key": "k1"})
    assert stolen.status_code == 404, stolen.text
    assert gateway.order(order["order_id"])["status"] == "CONFIRMED"
    cancelled = as_alice.http.post(f"/orders/{order['order_id']}/cancel", headers={"Idempotency-Key": "k1"})
    assert cancelled.status_code == 202, cancelled.text


def test_stock_levels_are_an_admins(stack: StackConfig, sku: str) -> None:
    for role in ("customer", "operator"):
        client = Gateway(stack.gateway_url, cli_token(stack, f"{role}-1", role))
        assert client.http.put(f"/inventory/{sku}", json={"available": 1}).status_code == 403
        assert client.http.get(f"/inventory/{sku}").status_code == 200
    admin = Gateway(stack.gateway_url, cli_token(stack, "admin-1", "admin"))
    assert admin.http.put(f"/inventory/{sku}", json={"available": 100}).status_code == 200


def test_an_operator_acts_on_a_named_customers_behalf(stack: StackConfig, sku: str) -> None:
    ops = Gateway(stack.gateway_url, cli_token(stack, "ops-1", "operator"))
    assert _order(ops, sku).status_code == 422  # staff must say for whom
    placed = _order(ops, sku, customer_id="cust-by-phone")
    assert placed.status_code == 202 and placed.json()["customer_id"] == "cust-by-phone"

    def readable() -> None:
        assert ops.http.get(f"/orders/{placed.json()['order_id']}").status_code == 200
    eventually(readable)  # the read side has it once the view caught up


@pytest.mark.parametrize("service", ["orders", "inventory", "payments", "notifications", "queries"])
def test_the_contract_is_readable_without_a_token(stack: StackConfig, service: str) -> None:
    resp = httpx.get(f"{stack.gateway_url}/{service}/openapi.json", timeout=10)
    assert resp.status_code == 200, resp.text


def _nonempty(resp: httpx.Response) -> list:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body, "nothing yet"
    return list(body)
