"""Notifications: which message a final order state produces, and its deterministic identity."""
from __future__ import annotations

import uuid
from enum import StrEnum


class NotificationType(StrEnum):
    ORDER_CONFIRMED = "OrderConfirmed"
    ORDER_CANCELLED = "OrderCancelled"


class Channel(StrEnum):
    LOG = "log"
    WEBHOOK = "webhook"


class NotificationStatus(StrEnum):
    SENT = "SENT"
    FAILED = "FAILED"


def notification_id(order_id: str, ntype: NotificationType, channel: Channel) -> str:
    """One notification per (order, final state, channel): the id is derived, so a replay cannot make a second."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"notification:{order_id}:{ntype.value}:{channel.value}"))


def message(ntype: NotificationType, order_id: str, detail: str) -> str:
    if ntype is NotificationType.ORDER_CONFIRMED:
        return f"Your order {order_id} is confirmed."
    return f"Your order {order_id} was cancelled ({detail or 'no reason given'})."
