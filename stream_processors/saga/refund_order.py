"""The refund-order saga, declared as data: a CONFIRMED order the customer cancelled (now CANCELLING).

  refund payment -> return stock -> close the order (CANCELLED, CUSTOMER_CANCELLED)

It runs on the place-order saga's instance once that one completed (the payment is captured and the stock committed
by then), so it never races the capture. Every step is past the point of no return: it only retries, then parks.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream_processors.saga.model import Action, SagaDefinition, Step


def _order_only(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"]}


def _close(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"], "reason": "CUSTOMER_CANCELLED"}


REFUND_ORDER = SagaDefinition(
    name="refund_order",
    steps=(
        Step("refund_payment", Action.of("RefundPayment", _order_only), retriable=True),
        Step("return_stock", Action.of("ReturnStock", _order_only), retriable=True),
        Step("close_order", Action.of("CancelOrder", _close), retriable=True),
    ),
    failure_action=None,
)
