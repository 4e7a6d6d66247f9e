"""The order view's pure rules: which field each event sets, and the lifecycle ranks that keep it monotonic."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas.consistency import make_token, parse_token
from stream_processors.views.projection import (
    ORDER_STATES,
    PAYMENT_RANK,
    PAYMENT_STATES,
    STOCK_RANK,
    STOCK_STATES,
    TimelineEntry,
    project,
)

ENTRY = TimelineEntry("e-1", "X", "walsaga.orders.events", datetime(2026, 1, 1, tzinfo=UTC), None)


def test_order_created_fills_the_descriptive_fields_at_version_1() -> None:
    change = project("OrderCreated", {
        "order_id": "o", "customer_id": "c", "currency": "EUR", "payment_method": "pm_card_visa",
        "total_amount": Decimal("3.00"), "items": [{"sku": "s", "quantity": 1, "unit_price": Decimal("3.00")}]},
        ENTRY)
    assert change is not None
    assert (change.status, change.order_version, change.details["total_amount"]) == ("PENDING", 1, "3.00")
    assert change.details["items"] == [{"sku": "s", "quantity": 1, "unit_price": "3.00"}]


def test_a_cancellation_carries_its_reason_and_version() -> None:
    change = project("OrderCancelled", {"order_id": "o", "customer_id": "c", "reason": "OUT_OF_STOCK", "version": 2},
                     ENTRY)
    assert change is not None and (change.status, change.cancel_reason, change.order_version) == (
        "CANCELLED", "OUT_OF_STOCK", 2)


@pytest.mark.parametrize("event_type, status", PAYMENT_STATES.items())
def test_payment_replies_set_the_payment_status(event_type: str, status: str) -> None:
    change = project(event_type, {"order_id": "o", "payment_id": "p", "decline_code": "x"}, ENTRY)
    assert change is not None and change.payment_status == status and change.status is None


@pytest.mark.parametrize("event_type, status", STOCK_STATES.items())
def test_stock_replies_set_the_stock_status(event_type: str, status: str) -> None:
    change = project(event_type, {"order_id": "o"}, ENTRY)
    assert change is not None and change.stock_status == status


def test_lifecycles_only_move_forward() -> None:
    assert PAYMENT_RANK["AUTHORIZED"] < PAYMENT_RANK["CAPTURED"] < PAYMENT_RANK["REFUNDED"]
    assert PAYMENT_RANK["AUTHORIZED"] < PAYMENT_RANK["VOIDED"]
    assert STOCK_RANK["RESERVED"] < STOCK_RANK["COMMITTED"] < STOCK_RANK["RETURNED"]
    assert STOCK_RANK["RESERVED"] < STOCK_RANK["RELEASED"]
    assert set(ORDER_STATES.values()) == {"PENDING", "CONFIRMED", "CANCELLING", "CANCELLED"}


def test_events_without_an_order_change_nothing() -> None:
    assert project("CdcHeartbeat", {"ts": "x"}, ENTRY) is None


def test_tokens_round_trip_and_reject_garbage() -> None:
    assert parse_token(make_token("a@b", 7)) == ("a@b", 7)
    for bad in ("", "o", "o@", "@3", "o@x", "o@-1", "o@１"):
        with pytest.raises(ValueError):
            parse_token(bad)
