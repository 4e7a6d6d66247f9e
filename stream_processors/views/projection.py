"""The order view, as pure rules: how one event from the change streams changes an order's row and its timeline.

Applied monotonically (the store enforces it in SQL): the order's own state only moves to a higher order version;
the payment and stock statuses only move forward along their lifecycles, so a duplicate or an older event never
overwrites a newer state. The descriptive fields of OrderCreated fill in whenever it arrives, first or late."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# lifecycle ranks: an event only applies when it moves the status to a higher rank
PAYMENT_RANK = {"AUTHORIZED": 1, "CAPTURED": 2, "DECLINED": 3, "VOIDED": 3, "REFUNDED": 3}
STOCK_RANK = {"RESERVED": 1, "COMMITTED": 2, "REJECTED": 3, "RELEASED": 3, "RETURNED": 3}

ORDER_STATES = {"OrderCreated": "PENDING", "OrderConfirmed": "CONFIRMED", "OrderCancellationRequested": "CANCELLING",
                "OrderCancelled": "CANCELLED"}
PAYMENT_STATES = {"PaymentAuthorized": "AUTHORIZED", "PaymentDeclined": "DECLINED", "PaymentCaptured": "CAPTURED",
                  "PaymentVoided": "VOIDED", "PaymentRefunded": "REFUNDED"}
STOCK_STATES = {"StockReserved": "RESERVED", "StockReservationFailed": "REJECTED", "StockCommitted": "COMMITTED",
                "StockReleased": "RELEASED", "StockReturned": "RETURNED"}


@dataclass(frozen=True)
class TimelineEntry:
    event_id: str
    event_type: str
    topic: str
    written_at: datetime | None  # the transaction's time in the source database (outbox created_at)
    kafka_at: datetime | None    # the Kafka record's timestamp
    detail: str = ""


@dataclass(frozen=True)
class ViewChange:
    order_id: str
    entry: TimelineEntry
    # OrderCreated's descriptive fields (customer, items, amount...), set when present
    details: Mapping[str, Any] = field(default_factory=dict)
    # the order's own state, applied only when `order_version` is higher than the view's
    status: str | None = None
    cancel_reason: str | None = None
    order_version: int | None = None
    payment_status: str | None = None  # applied only when its rank is higher
    stock_status: str | None = None    # applied only when its rank is higher


def project(event_type: str, record: Mapping[str, Any], entry: TimelineEntry) -> ViewChange | None:
    """The change this event makes to its order's view, or None when the event says nothing about an order."""
    if event_type == "DirectWrite":  # someone wrote to a service database behind its API: on the timeline
        row = json.loads(record["row"])
        if not row.get("order_id"):
            return None
        return ViewChange(row["order_id"], _with_detail(entry, f"{record['table']} {record['operation']} "
                                                               "behind the API"))
    order_id = record.get("order_id")
    if not order_id:
        return None
    if event_type in ORDER_STATES:
        details: dict[str, Any] = {}
        if event_type == "OrderCreated":
            details = {"customer_id": record["customer_id"], "currency": record["currency"],
                       "payment_method": record["payment_method"], "total_amount": str(record["total_amount"]),
                       "items": [{"sku": i["sku"], "quantity": i["quantity"], "unit_price": str(i["unit_price"])}
                                 for i in record["items"]]}
        elif "customer_id" in record:
            details = {"customer_id": record["customer_id"]}
        reason = (record.get("reason") or None) if event_type == "OrderCancelled" else None
        return ViewChange(order_id, entry, details, ORDER_STATES[event_type], reason, int(record.get("version", 1)))
    if event_type in PAYMENT_STATES:
        return ViewChange(order_id, _with_detail(entry, record.get("decline_code", "")),
                          payment_status=PAYMENT_STATES[event_type])
    if event_type in STOCK_STATES:
        return ViewChange(order_id, _with_detail(entry, record.get("reason", "")),
                          stock_status=STOCK_STATES[event_type])
    if event_type == "NotificationSent":
        return ViewChange(order_id, _with_detail(entry, f"{record.get('type', '')} via {record.get('channel', '')}"))
    return ViewChange(order_id, entry)


def _with_detail(entry: TimelineEntry, detail: str) -> TimelineEntry:
    return TimelineEntry(entry.event_id, entry.event_type, entry.topic, entry.written_at, entry.kafka_at, detail)
