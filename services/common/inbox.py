"""The inbox: a message id is processed once per consumer. The claim shares the transaction of the effect, so
either both commit or neither does; a redelivered message finds its row and becomes a no-op."""
from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert


def claim(conn: Connection, inbox: Table, *, consumer: str, message_id: str, message_type: str) -> bool:
    stmt = (insert(inbox).values(consumer=consumer, message_id=message_id, message_type=message_type)
            .on_conflict_do_nothing(index_elements=["consumer", "message_id"]).returning(inbox.c.message_id))
    return conn.execute(stmt).first() is not None
