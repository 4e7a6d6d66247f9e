"""The read path of an API that only reads (the order queries): one round trip per read.

No ping before each checkout (a connection found dead is retried instead) and no BEGIN or ROLLBACK around the
statement (autocommit): before, a read was four round trips (ping, BEGIN, SELECT, ROLLBACK), each a wait for a
PostgreSQL backend that the write path keeps busy under load."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from services.common.api import READ_THREADS, make_engine

T = TypeVar("T")


def read_engine(db_url: str) -> Engine:
    return make_engine(db_url, READ_THREADS, pre_ping=False, overflow=False, autocommit=True)


def reading(engine: Engine, read: Callable[[Connection], T]) -> T:
    """`read` on a pooled connection; once more on a new one when the first was found dead (the database restarted
    or failed over: SQLAlchemy then drops every connection of the pool opened before). A read changes nothing, so
    repeating it is safe."""
    try:
        with engine.connect() as conn:
            return read(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.connect() as conn:
        return read(conn)
