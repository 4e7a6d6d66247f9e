"""The saga-branch adapter's pure parts: the answer a reply maps to, stable envelopes, the contract check."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.common.saga_branches import branch_key, command_record, envelope, outcome


def test_a_failure_reply_is_409_failure_and_anything_else_200_success() -> None:
    failures = frozenset({"PaymentDeclined"})
    assert (outcome("PaymentDeclined", failures).status_code, outcome("PaymentDeclined", failures).body) == (
        409, {"dtm_result": "FAILURE", "reply": "PaymentDeclined"})
    assert (outcome("PaymentAuthorized", failures).status_code, outcome("PaymentAuthorized", failures).body) == (
        200, {"dtm_result": "SUCCESS", "reply": "PaymentAuthorized"})


def test_the_envelope_is_stable_per_branch_call_and_differs_between_action_and_compensation() -> None:
    action = envelope("ReserveStock", "g1", "01", "action")
    assert action == envelope("ReserveStock", "g1", "01", "action")
    assert action.event_id != envelope("ReserveStock", "g1", "01", "compensate").event_id
    assert (action.saga_id, action.causation_id, action.schema_version) == ("g1", action.event_id, 1)
    assert branch_key("g1", "01", "action") == "g1/01/action"


def test_the_body_is_read_through_the_commands_avro_contract() -> None:
    record = command_record("AuthorizePayment", {"order_id": "o", "customer_id": "c", "amount": Decimal("9.99"),
                                                 "currency": "USD", "payment_method": "pm_card_visa",
                                                 "lines": ["the action's payload may carry more"]})
    assert record == {"order_id": "o", "customer_id": "c", "amount": Decimal("9.99"), "currency": "USD",
                      "payment_method": "pm_card_visa"}
    with pytest.raises((ValueError, TypeError)):
        command_record("AuthorizePayment", {"order_id": "o", "customer_id": "c", "amount": Decimal("9.999"),
                                            "currency": "USD", "payment_method": "pm_card_visa"})


def test_money_may_come_as_a_json_string_and_is_read_exactly() -> None:
    body = {"order_id": "o", "customer_id": "c", "currency": "USD", "payment_method": "pm_card_visa"}
    assert command_record("AuthorizePayment", {**body, "amount": "19.98"})["amount"] == Decimal("19.98")
    with pytest.raises(ValueError, match="not a decimal"):
        command_record("AuthorizePayment", {**body, "amount": "nineteen"})
