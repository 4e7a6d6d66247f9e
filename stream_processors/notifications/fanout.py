"""Notification fan-out: a final order state becomes one SendNotification per configured channel. Pure."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from schemas import participants
from schemas.commands import Command

FINAL_STATES = {"OrderConfirmed", "OrderCancelled"}
SEND = "SendNotification"


def commands_for(event_type: str, record: dict[str, Any], channels: Iterable[str]) -> tuple[Command, ...]:
    if event_type not in FINAL_STATES:
        return ()
    order_id = record["order_id"]
    detail = record.get("reason", "") if event_type == "OrderCancelled" else ""
    return tuple(
        Command(
            # one command per (order, state, channel), whatever the number of times the event is seen
            command_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"notify:{order_id}:{event_type}:{channel}")),
            participant=participants.owner_of(SEND).name, command_type=SEND,
            record={"order_id": order_id, "customer_id": record["customer_id"],
                    "type": event_type, "channel": channel, "detail": detail},
        )
        for channel in channels
    )
