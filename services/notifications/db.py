"""The notifications database: every notification sent, unique per (order, type, channel)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Column, DateTime, MetaData, Table, Text, UniqueConstraint, func

from services.common.tables import add_common_tables

metadata = MetaData()
common = add_common_tables(metadata)
outbox, inbox, idempotency, counters = (common["outbox"], common["inbox"], common["idempotency_key"],
                                        common["delivery_counter"])

notifications = Table(
    "notifications", metadata,
    Column("notification_id", Text, primary_key=True),
    Column("order_id", Text, nullable=False, index=True),
    Column("customer_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("order_id", "type", "channel", name="one_notification_per_state_and_channel"),
)


def to_json(row: Any) -> dict[str, Any]:
    return {"notification_id": row.notification_id, "order_id": row.order_id, "type": row.type,
            "channel": row.channel, "status": row.status, "created_at": row.created_at.isoformat()}
