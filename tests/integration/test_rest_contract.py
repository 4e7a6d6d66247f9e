"""The REST surface through the gateway: validation answers 4xx with a reason, idempotent POSTs, 404s, OpenAPI."""
from __future__ import annotations

import uuid

import httpx
import pytest

from services.common import idempotency
from services.common.auth import Principal, Role
from tests.conftest import TEST_ADMIN
from tests.support import cli_token
from walsaga.client import Gateway
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack

ORDER = {"customer_id": "c-contract", "items": [{"sku": "sku-contract", "quantity": 2, "unit_price": "10.00"}],
         "currency": "USD", "payment_method": "pm_card_visa"}


@pytest.fixture(scope="module", autouse=True)
def priced(gateway: Gateway) -> None:
    gateway.set_stock("sku-contract", 0, unit_price="10.00")


@pytest.fixture()
def http(gateway: Gateway) -> httpx.Client:
    return gateway.http


def test_post_order_without_idempotency_key_is_400(http: httpx.Client) -> None:
    resp = http.post("/orders", json=ORDER)
    assert resp.status_code == 400
    assert "Idempotency-Key" in resp.text


@pytest.mark.parametrize("change", [
    {"items": []},
    {"items": [{"sku": "a", "quantity": 0, "unit_price": "1.00"}]},
    {"items": [{"sku": "a", "quantity": 1, "unit_price": "1.001"}]},
    {"items": [{"sku": "a", "quantity": 1, "unit_price": 1.5}]},
    {"items": [{"sku": "a", "quantity": 1, "unit_price": "1.00"}, {"sku": "a", "quantity": 1, "unit_price": "1.00"}]},
    {"currency": "usd"},
    {"payment_method": "visa"},
    {"customer_id": ""},
    {"channel": "fax"},
    {"channel": ""},
    # strict parsing: no lax coercion of quantities or money
    {"items": [{"sku": "sku-contract", "quantity": True}]},
    {"items": [{"sku": "sku-contract", "quantity": "1"}]},
    {"items": [{"sku": "sku-contract", "quantity": 1.0}]},
    {"items": [{"sku": "sku-contract", "quantity": 1, "unit_price": "\uff11\uff10.00"}]},  # full-width digits
])
def test_invalid_order_is_422_with_a_reason(http: httpx.Client, change: dict) -> None:
    resp = http.post("/orders", json={**ORDER, **change}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"]


def test_malformed_json_is_4xx_not_500(http: httpx.Client) -> None:
    resp = http.post("/orders", content=b"{not json", headers={"Idempotency-Key": str(uuid.uuid4()),
                                                              "Content-Type": "application/json"})
    assert 400 <= resp.status_code < 500


def test_same_key_same_body_replays_the_first_response(http: httpx.Client) -> None:
    key = str(uuid.uuid4())
    first = http.post("/orders", json=ORDER, headers={"Idempotency-Key": key})
    second = http.post("/orders", json=ORDER, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert first.headers["Location"] == f"/orders/{first.json()['order_id']}"


def test_an_order_keeps_the_channel_it_was_placed_through(http: httpx.Client) -> None:
    placed = http.post("/orders", json={**ORDER, "channel": "mobile"}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert placed.status_code == 202, placed.text
    assert placed.json()["channel"] == "mobile"
    unsaid = http.post("/orders", json=ORDER, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert unsaid.status_code == 202 and unsaid.json()["channel"] is None


def test_same_key_other_body_is_422(http: httpx.Client) -> None:
    key = str(uuid.uuid4())
    assert http.post("/orders", json=ORDER, headers={"Idempotency-Key": key}).status_code == 202
    other = {**ORDER, "customer_id": "c-other"}
    resp = http.post("/orders", json=other, headers={"Idempotency-Key": key})
    assert resp.status_code == 422
    assert "different request" in resp.json()["detail"]


def test_keys_are_scoped_per_caller(stack: StackConfig) -> None:
    """Two customers using the same Idempotency-Key each get their own order (the key is scoped by the token's
    subject), never each other's answer."""
    key, order = str(uuid.uuid4()), {k: v for k, v in ORDER.items() if k != "customer_id"}
    answers = {}
    for who in ("c-key-a", "c-key-b"):
        client = Gateway(stack.gateway_url, cli_token(stack, who, "customer"))
        answers[who] = client.http.post("/orders", json=order, headers={"Idempotency-Key": key})
    a, b = answers["c-key-a"], answers["c-key-b"]
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    assert a.json()["order_id"] != b.json()["order_id"]
    assert (a.json()["customer_id"], b.json()["customer_id"]) == ("c-key-a", "c-key-b")


def test_order_answer_has_the_contract_fields(http: httpx.Client) -> None:
    resp = http.post("/orders", json=ORDER, headers={"Idempotency-Key": str(uuid.uuid4())})
    body = resp.json()
    assert body["status"] == "PENDING" and body["total_amount"] == "20.00"
    got = http.get(f"/orders/{body['order_id']}", headers={"X-Consistency-Token": resp.headers["X-Consistency-Token"]})
    assert got.status_code == 200 and got.headers["X-Consistency"] == "fresh"
    assert {"order_id", "customer_id", "status", "cancel_reason", "items", "total_amount", "currency",
            "version"} <= set(got.json())
    assert isinstance(got.json()["version"], int)


def test_unknown_resources_are_404(http: httpx.Client) -> None:
    assert http.get(f"/orders/{uuid.uuid4()}").status_code == 404
    assert http.get(f"/inventory/no-such-{uuid.uuid4().hex[:6]}").status_code == 404
    assert http.get("/nowhere").status_code == 404


def test_stock_put_and_get(http: httpx.Client) -> None:
    sku = f"put-{uuid.uuid4().hex[:8]}"
    assert http.put(f"/inventory/{sku}", json={"available": -1}).status_code == 422
    put = http.put(f"/inventory/{sku}", json={"available": 7})
    assert put.status_code == 200
    assert put.json() | {} == {**put.json(), "sku": sku, "available": 7, "reserved": 0}
    assert http.get(f"/inventory/{sku}").json()["available"] == 7


def test_list_endpoints_need_order_id(http: httpx.Client) -> None:
    assert http.get("/payments").status_code == 422
    assert http.get("/notifications").status_code == 422
    assert http.get("/payments", params={"order_id": "none"}).json() == []
    assert http.get("/orders").status_code == 422  # the read side lists by customer only


def test_the_read_side_serves_its_openapi(http: httpx.Client) -> None:
    resp = http.get("/queries/openapi.json")
    assert resp.status_code == 200
    assert {"/orders", "/orders/{order_id}", "/orders/{order_id}/timeline"} <= set(resp.json()["paths"])


@pytest.mark.parametrize("service", ["orders", "inventory", "payments", "notifications"])
def test_each_service_serves_its_openapi(http: httpx.Client, service: str) -> None:
    resp = http.get(f"/{service}/openapi.json")
    assert resp.status_code == 200
    assert any(path.startswith(f"/{service}") for path in resp.json()["paths"])


def test_same_key_while_the_first_request_is_in_flight_is_409(http: httpx.Client, engines: dict) -> None:
    key = str(uuid.uuid4())
    with engines["orders"].connect() as conn:
        with conn.begin():
            # hold the key exactly as an in-flight request holds it
            assert idempotency.lock_key(conn, Principal(TEST_ADMIN, Role.ADMIN).idempotency_scope, key)
            resp = http.post("/orders", json=ORDER, headers={"Idempotency-Key": key})
            assert resp.status_code == 409, resp.text
            assert "in flight" in resp.json()["detail"]
    # once the first request is gone, the key works
    assert http.post("/orders", json=ORDER, headers={"Idempotency-Key": key}).status_code == 202


@pytest.mark.parametrize("path", ["/payments?order_id=%00", "/notifications?order_id=%00", "/inventory/%00",
                                  "/orders/%00", "/orders/%00/timeline", "/orders?customer_id=a%00b"])
def test_a_nul_byte_in_the_url_is_400_not_500(http: httpx.Client, path: str) -> None:
    resp = http.get(path)
    assert resp.status_code == 400, resp.text
    if resp.headers["content-type"] == "application/problem+json":  # nginx refuses a NUL in the path itself (HTML)
        assert "control characters" in resp.json()["detail"]


def test_a_nul_byte_in_a_write_url_is_400(http: httpx.Client) -> None:
    resp = http.post("/orders/%00/cancel", headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 400, resp.text


@pytest.mark.parametrize("body", [{"available": False}, {"available": "5"}, {"available": 5.0},
                                  {"available": 5, "unit_price": "\u0661.00"}])  # an Arabic-Indic digit
def test_a_stock_level_is_parsed_strictly(http: httpx.Client, body: dict) -> None:
    assert http.put(f"/inventory/strict-{uuid.uuid4().hex[:6]}", json=body).status_code == 422


def test_every_error_is_a_problem_document(stack: StackConfig, http: httpx.Client) -> None:
    """RFC 9457, from the APIs and from the gateway alike: application/problem+json with type, title, status and
    detail (and the short code in `error`)."""
    answers = [
        httpx.get(f"{stack.gateway_url}/orders/x", timeout=10),                     # gateway: no token (401)
        http.get("/nowhere"),                                                         # gateway: no route (404)
        http.post("/orders", json=ORDER),                                             # API: no Idempotency-Key (400)
        http.get(f"/orders/{uuid.uuid4()}"),                                          # API: unknown order (404)
        http.post("/orders", json={**ORDER, "currency": "usd"},
                  headers={"Idempotency-Key": str(uuid.uuid4())}),                    # API: validation (422)
        http.post("/orders", json={**ORDER, "items": [{"sku": "no-price-here", "quantity": 1}]},
                  headers={"Idempotency-Key": str(uuid.uuid4())}),                    # API: not orderable (409)
        http.delete("/orders"),                                                       # API: method not allowed (405)
    ]
    for resp in answers:
        assert resp.headers["content-type"] == "application/problem+json", (resp.status_code, resp.text)
        problem = resp.json()
        assert problem["status"] == resp.status_code >= 400, problem
        assert problem["type"].startswith("urn:walsaga:problem:") and problem["title"] and problem["detail"]
        assert problem["type"].endswith(problem["error"])
