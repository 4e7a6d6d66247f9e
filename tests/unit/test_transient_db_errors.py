"""A read-only transaction is transient like an unreachable database: in the HA profile a connection made while a
switchover moves the primary can reach the member becoming the standby until the database proxy moves on. The saga
orchestrator's agent crashed on it in a rolling restart (one saga left open); now it retries, as the participant
consumers do. No database: the errors are built as SQLAlchemy raises them."""
from __future__ import annotations

import asyncio

import pytest
from psycopg.errors import ReadOnlySqlTransaction, UniqueViolation
from sqlalchemy.exc import IntegrityError, InternalError

from services.common.consumer import is_transient
from stream_processors.app import retry_transient

READ_ONLY = InternalError("SELECT ... FOR UPDATE", {}, ReadOnlySqlTransaction("cannot execute SELECT FOR UPDATE in a "
                                                                                "read-only transaction"))


def test_a_read_only_transaction_is_retried_until_the_primary_answers() -> None:
    calls = []

    async def once_read_only() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise READ_ONLY
        return "applied"
    assert asyncio.run(retry_transient(once_read_only)) == "applied"
    assert len(calls) == 2
    assert is_transient(READ_ONLY)


def test_other_database_errors_still_propagate() -> None:
    violation = IntegrityError("INSERT ...", {}, UniqueViolation("duplicate key"))

    async def fails() -> None:
        raise violation
    with pytest.raises(IntegrityError):
        asyncio.run(retry_transient(fails))
    assert not is_transient(violation)
