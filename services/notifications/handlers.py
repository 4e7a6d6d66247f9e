"""Notifications command handler: SendNotification -> channel -> one transaction (record + NotificationSent)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from schemas import topics
from schemas.headers import Envelope
from services.common import outbox
from services.notifications import db, domain
from services.notifications.channels import ChannelPort
from services.notifications.domain import Channel, NotificationStatus, NotificationType

# statements built once: building one per call costs more CPU than its round trip (docs/benchmarks/FINDINGS.md)
_ALREADY_SENT = (select(db.notifications.c.notification_id)
                 .where(db.notifications.c.notification_id == bindparam("nid")).with_for_update())
_INSERT = db.notifications.insert()


@dataclass(frozen=True)
class NotificationHandlers:
    channels: Mapping[Channel, ChannelPort]

    def send(self, conn: Connection, env: Envelope, record: dict[str, Any]) -> None:
        ntype, channel = NotificationType(record["type"]), Channel(record["channel"])
        nid = domain.notification_id(record["order_id"], ntype, channel)
        already = conn.execute(_ALREADY_SENT, {"nid": nid}).first()
        if already:
            return
        text = domain.message(ntype, record["order_id"], record["detail"])
        port = self.channels.get(channel)
        if port is None:
            raise LookupError(f"channel {channel} is not configured in this notifications instance")
        # Sent before the commit: a crash in between re-sends with the same id (at-least-once, receiver dedups);
        # the unique row makes the record exactly-once.
        port.send(nid, record["customer_id"], text)
        conn.execute(_INSERT, {
            "notification_id": nid, "order_id": record["order_id"], "customer_id": record["customer_id"],
            "type": ntype.value, "channel": channel.value, "status": NotificationStatus.SENT.value, "text": text})
        outbox.append(conn, db.outbox, topic=topics.NOTIFICATIONS_EVENTS, aggregate_id=record["order_id"],
                      event_type="NotificationSent",
                      record={"notification_id": nid, "order_id": record["order_id"], "type": ntype.value,
                              "channel": channel.value},
                      saga_id=env.saga_id, correlation_id=env.correlation_id, causation_id=env.event_id)

    def table(self) -> dict[str, Any]:
        return {"SendNotification": self.send}
