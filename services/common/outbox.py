"""Writing an event or reply: one outbox row in the caller's transaction. Debezium does the rest."""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Table, text

from schemas import codec, topics


def append(conn: Connection, outbox: Table, *, topic: str, aggregate_id: str, event_type: str,
           record: dict[str, Any], saga_id: str, correlation_id: str | None = None,
           causation_id: str | None = None, event_id: uuid.UUID | None = None) -> uuid.UUID:
    """event_id defaults to uuid5(causation, type) when caused by a message, so a replayed handler writes the same id."""
    mark_service_write(conn)
    payload, version = codec.encode(event_type, record)
    if event_id is None:
        event_id = uuid.uuid5(uuid.UUID(causation_id), event_type) if causation_id else uuid.uuid4()
    conn.execute(outbox.insert().values(
        id=event_id, aggregatetype=topics.outbox_destination(topic), aggregateid=aggregate_id,
        type=event_type, schema_version=version, saga_id=saga_id, correlation_id=correlation_id or saga_id,
        causation_id=causation_id, payload=payload,
    ))
    return event_id


def mark_service_write(conn: Connection) -> None:
    """Tells the database this transaction is the service's own (it publishes its events through the outbox).
    Writes to business tables in a transaction without this mark are someone writing behind the API's back: the
    direct-write triggers (migration_ops.capture_direct_writes) publish them as DirectWrite events at commit."""
    conn.execute(text("SET LOCAL walsaga.via_service = 'on'"))
