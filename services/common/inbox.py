"""The inbox: a message id is processed once per consumer. The claim shares the transaction of the effect, so
either both commit or neither does; a redelivered message finds its row and becomes a no-op."""
from __future__ import annotations

from functools import cache

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects.postgresql import insert


@cache
def _claim(inbox: Table) -> Insert:
    # built once per table (see counters._upsert)
    return (insert(inbox).on_conflict_do_nothing(index_elements=["consumer", "message_id"])
            .returning(inbox.c.message_id))


def claim(conn: Connection, inbox: Table, *, consumer: str, message_id: str, message_type: str) -> bool:
    return conn.execute(_claim(inbox), {"consumer": consumer, "message_id": message_id,
                                        "message_type": message_type}).first() is not None
