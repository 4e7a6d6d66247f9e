"""Tables every service database has: the outbox Debezium reads, the inbox that makes consumers idempotent,
the idempotency keys of REST writes, and delivery counters. Dead letters go to a Kafka topic, not a table."""
from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from services.common.counters import counters_table


def outbox_table(metadata: MetaData) -> Table:
    # Column names are the Debezium EventRouter's defaults (id, aggregatetype, aggregateid, type, payload).
    return Table(
        "outbox", metadata,
        Column("id", Uuid, primary_key=True),
        Column("aggregatetype", Text, nullable=False),
        Column("aggregateid", Text, nullable=False),
        Column("type", Text, nullable=False),
        Column("schema_version", Integer, nullable=False),
        Column("saga_id", Text, nullable=False),
        Column("correlation_id", Text, nullable=False),
        Column("causation_id", Text, nullable=True),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox", metadata,
        Column("consumer", Text, nullable=False),
        Column("message_id", Text, nullable=False),
        Column("message_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "message_id"),
    )


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_key", metadata,
        Column("client_id", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("request_hash", Text, nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("response", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("client_id", "key"),
    )


def add_common_tables(metadata: MetaData) -> dict[str, Table]:
    return {
        "outbox": outbox_table(metadata),
        "inbox": inbox_table(metadata),
        "idempotency_key": idempotency_table(metadata),
        "delivery_counter": counters_table(metadata),
    }
