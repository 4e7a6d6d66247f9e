"""The place-order saga, declared as data. Read top to bottom, it is the business process (version 2):

  reserve stock + authorize payment, in parallel
      --(out of stock)--> void the payment ---> cancel order OUT_OF_STOCK
      --(declined)------> release the stock --> cancel order PAYMENT_DECLINED
      (no reply by the last deadline: release + void, whatever may have happened -> TIMEOUT)
  confirm order  (pivot: from here on, steps only retry forward; a missed deadline never compensates them)
  capture payment + commit stock, in parallel

Version 1 ran the same steps one after the other (reserve, authorize, confirm, capture, commit): five hops in a
row where version 2 has three. It stays in the catalog for the instances that started on it.

A customer's cancel before the pivot interrupts it (compensate, then CancelOrder); a cancel after it (the order is
CANCELLING) queues the refund_order saga, which runs on the same instance once this one has completed.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from stream_processors.saga.model import Action, SagaDefinition, Step, failing_with


def _order_only(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"]}


def _reserve(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"],
            "lines": [{"sku": i["sku"], "quantity": i["quantity"]} for i in data["items"]]}


def _authorize(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"], "customer_id": data["customer_id"],
            "amount": Decimal(str(data["total_amount"])), "currency": data["currency"],
            "payment_method": data["payment_method"]}


def _cancel(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"], "reason": data["failure_reason"]}


RESERVE_STOCK = Step("reserve_stock", Action.of("ReserveStock", _reserve),
                     failures=failing_with("ReserveStock", "OUT_OF_STOCK"),
                     compensation=Action.of("ReleaseStock", _order_only))
AUTHORIZE_PAYMENT = Step("authorize_payment", Action.of("AuthorizePayment", _authorize),
                         failures=failing_with("AuthorizePayment", "PAYMENT_DECLINED"),
                         compensation=Action.of("VoidPayment", _order_only))
# a customer's cancel that won the race makes the orders service answer OrderCancelled
CONFIRM_ORDER = Step("confirm_order", Action.of("ConfirmOrder", _order_only),
                     failures=failing_with("ConfirmOrder", "CUSTOMER_CANCELLED"), retriable=True)
CAPTURE_PAYMENT = Step("capture_payment", Action.of("CapturePayment", _order_only), retriable=True)
COMMIT_STOCK = Step("commit_stock", Action.of("CommitStock", _order_only), retriable=True)

PLACE_ORDER_V1 = SagaDefinition(
    name="place_order",
    steps=(RESERVE_STOCK, AUTHORIZE_PAYMENT, CONFIRM_ORDER, CAPTURE_PAYMENT, COMMIT_STOCK),
    failure_action=Action.of("CancelOrder", _cancel),
    # the customer cancelled while the order was PENDING (an OrderCancelled the saga did not ask for)
    interrupts={"OrderCancelled": "CUSTOMER_CANCELLED"},
    # the customer cancelled a CONFIRMED order
    followups={"OrderCancellationRequested": "refund_order"},
)

PLACE_ORDER = replace(PLACE_ORDER_V1, version=2,
                      steps=((RESERVE_STOCK, AUTHORIZE_PAYMENT), CONFIRM_ORDER, (CAPTURE_PAYMENT, COMMIT_STOCK)))


def saga_data(order_created: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of the OrderCreated record (Decimal as string), kept with the saga."""
    return {
        "order_id": order_created["order_id"],
        "customer_id": order_created["customer_id"],
        "items": [{"sku": i["sku"], "quantity": i["quantity"], "unit_price": str(i["unit_price"])}
                  for i in order_created["items"]],
        "total_amount": str(order_created["total_amount"]),
        "currency": order_created["currency"],
        "payment_method": order_created["payment_method"],
    }
