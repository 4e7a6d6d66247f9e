"""Writing an event or reply: one outbox row in the caller's transaction. Debezium does the rest."""
from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, TextClause, text

from schemas import codec, topics

# set_config(..., true) is SET LOCAL as a function: the mark rides on the outbox insert instead of a round trip of
# its own (the direct-write triggers read it at commit, so setting it late in the transaction is enough)
_MARK = "SELECT set_config('walsaga.via_service', 'on', true)"
_MARK_STATEMENT = text(_MARK)


@cache
def _insert(outbox: Table) -> TextClause:
    return text(f"""WITH mark AS ({_MARK})
        INSERT INTO {outbox.name} (id, aggregatetype, aggregateid, type, schema_version, saga_id, correlation_id,
                                   causation_id, payload)
        SELECT CAST(:id AS uuid), :aggregatetype, :aggregateid, :type, :schema_version, :saga_id, :correlation_id,
               :causation_id, CAST(:payload AS bytea) FROM mark""")


def append(conn: Connection, outbox: Table, *, topic: str, aggregate_id: str, event_type: str,
           record: dict[str, Any], saga_id: str, correlation_id: str | None = None,
           causation_id: str | None = None, event_id: uuid.UUID | None = None) -> uuid.UUID:
    """event_id defaults to uuid5(causation, type) when caused by a message, so a replayed handler writes the same id.
    Marks the transaction as the service's own write (see mark_service_write)."""
    payload, version = codec.encode(event_type, record)
    if event_id is None:
        event_id = uuid.uuid5(uuid.UUID(causation_id), event_type) if causation_id else uuid.uuid4()
    conn.execute(_insert(outbox), {
        "id": event_id, "aggregatetype": topics.outbox_destination(topic), "aggregateid": aggregate_id,
        "type": event_type, "schema_version": version, "saga_id": saga_id, "correlation_id": correlation_id or saga_id,
        "causation_id": causation_id, "payload": payload})
    return event_id


def mark_service_write(conn: Connection) -> None:
    """Tells the database this transaction is the service's own (it publishes its events through the outbox).
    Writes to business tables in a transaction without this mark are someone writing behind the API's back: the
    direct-write triggers (migration_ops.capture_direct_writes) publish them as DirectWrite events at commit."""
    conn.execute(_MARK_STATEMENT)
