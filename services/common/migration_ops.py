"""Migration steps every service database shares (called from each service's first revision)."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from schemas import topics

CDC_ROLE = "walsaga_cdc"
PUBLICATION = "walsaga_outbox"
HEARTBEAT_FUNCTION = "walsaga_cdc_heartbeat"
HEARTBEAT_AGGREGATE = topics.outbox_destination(topics.CDC_HEARTBEATS)


def create_inbox_and_dead_letters() -> None:
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("message_type", sa.Text(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id"),
    )
    create_dead_letter_table()


def create_dead_letter_table() -> None:
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def create_service_tables() -> None:
    """Inbox, dead letters, idempotency keys, and the outbox with the publication Debezium reads it through."""
    create_inbox_and_dead_letters()
    op.create_table(
        "idempotency_key",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "key"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("aggregatetype", sa.Text(), nullable=False),
        sa.Column("aggregateid", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("saga_id", sa.Text(), nullable=False),
        sa.Column("correlation_id", sa.Text(), nullable=False),
        sa.Column("causation_id", sa.Text(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The publication exists before any connector starts, so the CDC role needs no CREATE rights of its own.
    op.execute(f"CREATE PUBLICATION {PUBLICATION} FOR TABLE outbox")
    op.execute(f"""DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{CDC_ROLE}') THEN
            GRANT SELECT ON outbox TO {CDC_ROLE};
        END IF; END $$""")


def drop_service_tables() -> None:
    op.execute(f"DROP PUBLICATION IF EXISTS {PUBLICATION}")
    for table in ("outbox", "idempotency_key", "dead_letter", "inbox"):
        op.drop_table(table)


def dead_letters_to_topic() -> None:
    """Revision 0002 everywhere: dead letters moved to the Kafka topic; delivery counters appear."""
    op.drop_table("dead_letter")
    create_delivery_counters()


def create_delivery_counters() -> None:
    op.create_table(
        "delivery_counter",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("counter", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "counter"),
    )


def undo_dead_letters_to_topic() -> None:
    op.drop_table("delivery_counter")
    create_dead_letter_table()


def add_cdc_heartbeat() -> None:
    """A one-row table in the publication that the connector itself updates every heartbeat interval
    (heartbeat.action.query): the change flows through the slot, so the slot's confirmed LSN keeps moving even when
    the outbox is idle and other WAL (vacuum, other tables) piles up behind it."""
    op.create_table(
        "cdc_heartbeat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(f"ALTER PUBLICATION {PUBLICATION} ADD TABLE cdc_heartbeat")
    op.execute(f"""DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{CDC_ROLE}') THEN
            GRANT SELECT, INSERT, UPDATE ON cdc_heartbeat TO {CDC_ROLE};
        END IF; END $$""")


def drop_cdc_heartbeat() -> None:
    op.execute(f"ALTER PUBLICATION {PUBLICATION} DROP TABLE cdc_heartbeat")
    op.drop_table("cdc_heartbeat")


def heartbeat_through_outbox() -> None:
    """Revision 0004 everywhere: the connector's heartbeat becomes an outbox row.

    A heartbeat that only touched a side table did not move the slot: Debezium confirms the LSN of records that reached
    Kafka, and the side table's records were dropped by an SMT (docs/cdc.md). An outbox row is routed like any event
    (to walsaga.cdc-heartbeats), so each heartbeat confirms every WAL byte written before it. The CDC role may only
    execute this function; it keeps one hour of heartbeats. The publication streams inserts only, so that clean-up
    (and any other DELETE on the outbox) never reaches Kafka."""
    op.drop_table("cdc_heartbeat")  # which also takes it out of the publication
    op.execute(f"ALTER PUBLICATION {PUBLICATION} SET (publish = 'insert')")
    op.execute(f"""
        CREATE FUNCTION public.{HEARTBEAT_FUNCTION}() RETURNS void
        LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
            DELETE FROM outbox WHERE aggregatetype = '{HEARTBEAT_AGGREGATE}' AND created_at < now() - interval '1 hour';
            INSERT INTO outbox (id, aggregatetype, aggregateid, type, schema_version, saga_id, correlation_id, payload)
            VALUES (gen_random_uuid(), '{HEARTBEAT_AGGREGATE}', current_database(), 'CdcHeartbeat', 1, '', '',
                    convert_to(to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'UTF8'));
        $fn$""")
    op.execute(f"REVOKE ALL ON FUNCTION public.{HEARTBEAT_FUNCTION}() FROM PUBLIC")
    op.execute(f"""DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{CDC_ROLE}') THEN
            GRANT EXECUTE ON FUNCTION public.{HEARTBEAT_FUNCTION}() TO {CDC_ROLE};
        END IF; END $$""")


def undo_heartbeat_through_outbox() -> None:
    op.execute(f"DROP FUNCTION public.{HEARTBEAT_FUNCTION}()")
    op.execute(f"DELETE FROM outbox WHERE aggregatetype = '{HEARTBEAT_AGGREGATE}'")
    op.execute(f"ALTER PUBLICATION {PUBLICATION} SET (publish = 'insert, update, delete, truncate')")
    add_cdc_heartbeat()


DIRECT_WRITES_AGGREGATE = topics.outbox_destination(topics.DIRECT_WRITES)


def capture_direct_writes(tables: list[str]) -> None:
    """Writes to these business tables that do not come from the service itself (no outbox row in the transaction:
    services/common/outbox.mark_service_write) are published as DirectWrite outbox rows at commit, so plain SQL
    behind the API's back still flows through CDC and reaches the continuous reconciliation checks. The payload is
    DirectWrite.v1 Avro (three strings: table, operation, the row as JSON), encoded here in SQL."""
    op.execute("""
        CREATE FUNCTION walsaga_avro_string(s text) RETURNS bytea LANGUAGE plpgsql IMMUTABLE AS $fn$
        DECLARE
            b bytea := convert_to(s, 'UTF8');
            n bigint := octet_length(b) * 2;  -- zig-zag of a non-negative length
            head bytea := ''::bytea;
        BEGIN
            LOOP
                IF n < 128 THEN
                    RETURN head || set_byte('\\x00'::bytea, 0, n::int) || b;
                END IF;
                head := head || set_byte('\\x00'::bytea, 0, ((n & 127) | 128)::int);
                n := n >> 7;
            END LOOP;
        END $fn$""")
    op.execute(f"""
        CREATE FUNCTION walsaga_capture_direct_write() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            r jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
            k text := coalesce(r->>'order_id', r->>'sku', TG_TABLE_NAME);
        BEGIN
            IF coalesce(current_setting('walsaga.via_service', true), '') = 'on' THEN
                RETURN NULL;
            END IF;
            INSERT INTO outbox (id, aggregatetype, aggregateid, type, schema_version, saga_id, correlation_id, payload)
            VALUES (gen_random_uuid(), '{DIRECT_WRITES_AGGREGATE}', k, 'DirectWrite', 1, k, 'direct-write',
                    walsaga_avro_string(TG_TABLE_NAME) || walsaga_avro_string(TG_OP) || walsaga_avro_string(r::text));
            RETURN NULL;
        END $fn$""")
    for table in tables:
        op.execute(f"""CREATE CONSTRAINT TRIGGER {table}_direct_writes AFTER INSERT OR UPDATE OR DELETE ON {table}
                       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION walsaga_capture_direct_write()""")


def undo_capture_direct_writes(tables: list[str]) -> None:
    for table in tables:
        op.execute(f"DROP TRIGGER {table}_direct_writes ON {table}")
    op.execute("DROP FUNCTION walsaga_capture_direct_write()")
    op.execute("DROP FUNCTION walsaga_avro_string(text)")


# the timestamps retention deletes a service database's rows by (table -> column)
SERVICE_STAMPS = {"outbox": "created_at", "inbox": "processed_at", "idempotency_key": "created_at"}


def index_retention_stamps(stamps: dict[str, str]) -> None:
    """BRIN indexes on the timestamps that retention deletes by (services/common/retention.py), table -> column.
    Rows arrive in time order, so a BRIN index finds the old ones without reading the table, and it costs an insert
    almost nothing (a B-tree on a hot append-only table would cost every insert)."""
    for table, column in stamps.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {table}_{column}_brin ON {table} USING brin ({column})")


def drop_retention_indexes(stamps: dict[str, str]) -> None:
    for table, column in stamps.items():
        op.execute(f"DROP INDEX IF EXISTS {table}_{column}_brin")
