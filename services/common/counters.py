"""Delivery counters kept in the consumer's own database, so they survive restarts and can be read by anyone:
duplicates dropped by the inbox, transient retries, dead letters, deadline re-sends. The fault suite reads them to
prove a fault really bit (a duplicate was dropped, a retry happened)."""
from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from sqlalchemy import BigInteger, Column, Connection, Insert, MetaData, PrimaryKeyConstraint, Table, Text, select
from sqlalchemy.dialects.postgresql import insert


def counters_table(metadata: MetaData) -> Table:
    return Table(
        "delivery_counter", metadata,
        Column("consumer", Text, nullable=False),
        Column("counter", Text, nullable=False),
        Column("value", BigInteger, nullable=False),
        PrimaryKeyConstraint("consumer", "counter"),
    )


@cache
def _upsert(table: Table) -> Insert:
    # built once per table: building a statement per call costs more CPU than the round trip
    stmt = insert(table)
    return stmt.on_conflict_do_update(index_elements=["consumer", "counter"],
                                      set_={"value": table.c.value + stmt.excluded.value})


def counter_add(conn: Connection, table: Table, consumer: str, counter: str, by: int = 1) -> None:
    conn.execute(_upsert(table), {"consumer": consumer, "counter": counter, "value": by})


def counters_add(conn: Connection, table: Table, consumer: str, counts: Mapping[str, int]) -> None:
    """Several counters in one round trip (in the order given: two consumers adding to the same counters lock their
    rows in the same order)."""
    rows = [{"consumer": consumer, "counter": c, "value": n} for c, n in sorted(counts.items()) if n]
    if rows:
        conn.execute(_upsert(table), rows)  # several rows: SQLAlchemy sends one multi-row INSERT


def read_counters(conn: Connection, table: Table) -> dict[tuple[str, str], int]:
    return {(r.consumer, r.counter): r.value for r in conn.execute(select(table)).all()}
