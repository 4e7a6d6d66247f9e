"""Delivery counters kept in the consumer's own database, so they survive restarts and can be read by anyone:
duplicates dropped by the inbox, transient retries, dead letters, deadline re-sends. The fault suite reads them to
prove a fault really bit (a duplicate was dropped, a retry happened)."""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, MetaData, PrimaryKeyConstraint, Table, Text, select
from sqlalchemy.dialects.postgresql import insert


def counters_table(metadata: MetaData) -> Table:
    return Table(
        "delivery_counter", metadata,
        Column("consumer", Text, nullable=False),
        Column("counter", Text, nullable=False),
        Column("value", BigInteger, nullable=False),
        PrimaryKeyConstraint("consumer", "counter"),
    )


def counter_add(conn: Connection, table: Table, consumer: str, counter: str, by: int = 1) -> None:
    stmt = insert(table).values(consumer=consumer, counter=counter, value=by)
    conn.execute(stmt.on_conflict_do_update(index_elements=["consumer", "counter"],
                                            set_={"value": table.c.value + stmt.excluded.value}))


def read_counters(conn: Connection, table: Table) -> dict[tuple[str, str], int]:
    return {(r.consumer, r.counter): r.value for r in conn.execute(select(table)).all()}
