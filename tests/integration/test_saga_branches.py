"""The command handlers as HTTP saga branches (DTM's branch protocol) on real service instances and databases:
success/failure answers, one effect per (gid, branch, op), compensation with the action's payload, 4xx for bad input,
and the gateway keeping the paths internal."""
from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.support import cli_token
from walsaga.client import Gateway
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


_TOKENS: dict[str, str] = {}


def coordinator_token(stack: StackConfig, role: str = "operator") -> str:
    """A coordinator calls the branches with a staff token (the benchmark's DTM passes one as a branch header)."""
    if role not in _TOKENS:
        _TOKENS[role] = cli_token(stack, f"coordinator-{role}", role)
    return _TOKENS[role]


def branch(stack: StackConfig, service: str, command: str, gid: str, branch_id: str, op: str,
           body: dict | bytes, token: str | None = "operator") -> httpx.Response:
    url = f"http://127.0.0.1:{stack.ports.api(service, 0)}/{service}/saga-branches/{command}"
    params = {"gid": gid, "branch_id": branch_id, "op": op, "trans_type": "saga"}
    headers = {"Authorization": f"Bearer {coordinator_token(stack, token)}"} if token else {}
    if isinstance(body, bytes):
        return httpx.post(url, params=params, content=body, headers={**headers, "Content-Type": "application/json"})
    return httpx.post(url, params=params, json=body, headers=headers)


def test_a_branch_call_needs_a_staff_token(stack: StackConfig) -> None:
    body = {"order_id": "g-auth", "lines": [{"sku": "s", "quantity": 1}]}
    assert branch(stack, "inventory", "ReserveStock", "g-auth", "01", "action", body, token=None).status_code == 401
    refused = branch(stack, "inventory", "ReserveStock", "g-auth", "01", "action", body, token="customer")
    assert refused.status_code == 403, refused.text


def new_sku(gateway: Gateway, available: int) -> str:
    sku = f"branch-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, available, unit_price="5.00")
    return sku


def test_reserve_succeeds_once_however_often_the_coordinator_retries(stack: StackConfig, gateway: Gateway,
                                                                     engines: dict[str, Engine]) -> None:
    sku, gid = new_sku(gateway, 5), f"g-{uuid.uuid4().hex[:10]}"
    body = {"order_id": gid, "lines": [{"sku": sku, "quantity": 2}]}
    answers = [branch(stack, "inventory", "ReserveStock", gid, "01", "action", body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.json()["dtm_result"] for a in answers} == {"SUCCESS"}
    assert answers[0].json()["reply"] == "StockReserved"
    level = gateway.stock(sku)
    assert (level["available"], level["reserved"]) == (3, 2)
    with engines["inventory"].connect() as c:
        replies = c.execute(text("SELECT count(*) FROM outbox WHERE aggregateid = :g AND type = 'StockReserved'"),
                            {"g": gid}).scalar_one()
    assert replies == 1  # the participant's event, written once, in the branch's transaction


def test_out_of_stock_is_a_failure_and_its_compensation_takes_the_actions_payload(stack: StackConfig,
                                                                                gateway: Gateway) -> None:
    sku, gid = new_sku(gateway, 1), f"g-{uuid.uuid4().hex[:10]}"
    body = {"order_id": gid, "lines": [{"sku": sku, "quantity": 2}]}
    failed = branch(stack, "inventory", "ReserveStock", gid, "01", "action", body)
    assert failed.status_code == 409
    assert failed.json() == {"dtm_result": "FAILURE", "reply": "StockReservationFailed"}
    released = branch(stack, "inventory", "ReleaseStock", gid, "01", "compensate", body)
    assert released.status_code == 200, released.text
    assert released.json()["reply"] == "StockReleased"
    assert gateway.stock(sku)["available"] == 1


def test_payment_branches_decline_and_authorize_with_decimal_amounts(stack: StackConfig, gateway: Gateway) -> None:
    declined_gid, ok_gid = f"g-{uuid.uuid4().hex[:10]}", f"g-{uuid.uuid4().hex[:10]}"
    base = {"customer_id": "c-branch", "amount": 19.98, "currency": "USD"}
    declined = branch(stack, "payments", "AuthorizePayment", declined_gid, "02", "action",
                      {**base, "order_id": declined_gid, "payment_method": "pm_card_chargeDeclined"})
    assert (declined.status_code, declined.json()["reply"]) == (409, "PaymentDeclined")
    voided = branch(stack, "payments", "VoidPayment", declined_gid, "02", "compensate",
                    {**base, "order_id": declined_gid, "payment_method": "pm_card_chargeDeclined"})
    assert (voided.status_code, voided.json()["reply"]) == (200, "PaymentVoided")
    authorized = branch(stack, "payments", "AuthorizePayment", ok_gid, "02", "action",
                        {**base, "order_id": ok_gid, "payment_method": "pm_card_visa"})
    assert (authorized.status_code, authorized.json()["reply"]) == (200, "PaymentAuthorized")
    [payment] = gateway.payments(ok_gid)
    assert (payment["amount"], payment["status"]) == ("19.98", "AUTHORIZED")


def test_confirming_a_cancelled_order_is_a_failure(stack: StackConfig, gateway: Gateway) -> None:
    sku = new_sku(gateway, 0)
    order_id = gateway.place_order("c-branch", [{"sku": sku, "quantity": 1, "unit_price": "5.00"}]).json()["order_id"]
    assert gateway.wait_final(order_id)["status"] == "CANCELLED"  # walsaga's own saga: out of stock
    answer = branch(stack, "orders", "ConfirmOrder", f"g-{uuid.uuid4().hex[:10]}", "03", "action",
                    {"order_id": order_id})
    assert (answer.status_code, answer.json()["reply"]) == (409, "OrderCancelled")


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"order_id": "x"}', "ReserveStock"),                                  # lines missing
    (b'{"order_id": "x", "lines": [{"sku": "a", "quantity": "two"}]}', "ReserveStock"),
])
def test_a_body_that_is_not_the_command_is_422_with_a_reason(stack: StackConfig, body: bytes, reason: str) -> None:
    answer = branch(stack, "inventory", "ReserveStock", f"g-{uuid.uuid4().hex[:10]}", "01", "action", body)
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["detail"]


def test_money_that_is_no_amount_is_422_not_500(stack: StackConfig) -> None:
    body = {"order_id": "g-inf", "customer_id": "c", "amount": "Infinity", "currency": "USD",
            "payment_method": "pm_card_visa"}
    answer = branch(stack, "payments", "AuthorizePayment", "g-inf", "04", "action", body)
    assert answer.status_code == 422, answer.text


def test_unknown_command_and_bad_query_are_4xx(stack: StackConfig) -> None:
    assert branch(stack, "inventory", "ChargeCard", "g-1", "01", "action", {}).status_code == 404
    assert branch(stack, "inventory", "ReleaseStock", "g-1", "01", "rollback", {"order_id": "g-1"}).status_code == 422


def test_the_gateway_does_not_route_saga_branches(gateway: Gateway) -> None:
    resp = gateway.http.post("/inventory/saga-branches/ReserveStock",
                             params={"gid": "g-x", "branch_id": "01", "op": "action"},
                             json={"order_id": "g-x", "lines": []}, headers={"Idempotency-Key": "k"})
    assert resp.status_code == 404
