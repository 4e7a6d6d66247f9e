"""The orchestrator commits a batch of records in one saga-database transaction, with each record's effect as if
alone: in order, a second copy in the same batch is a duplicate, a poison record gets its reason and does not stop
the others (real Postgres: the test stack's saga database)."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, func, select

from schemas import codec, topics
from schemas.headers import Envelope
from stream_processors.saga import store
from stream_processors.saga.orchestrator import Dispatch, Orchestrator, RawMessage

pytestmark = pytest.mark.stack


def _order_created(order_id: str, offset: int, event_id: str | None = None) -> RawMessage:
    value, version = codec.encode("OrderCreated", {
        "order_id": order_id, "customer_id": "batch-test", "currency": "USD", "payment_method": "pm_card_visa",
        "items": [{"sku": "batch-test", "quantity": 1, "unit_price": Decimal("1.00")}], "total_amount": Decimal("1.00"),
        "created_at": datetime.now(UTC)})
    env = Envelope(event_id or str(uuid.uuid4()), "OrderCreated", version, order_id, order_id, order_id)
    return RawMessage(topics.ORDERS_EVENTS, 0, offset, order_id.encode(), value, env.to_headers())


def test_a_batch_applies_each_record_in_order_in_one_transaction(engines: dict[str, Engine]) -> None:
    saga_db = engines["saga"]
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    created = _order_created(first, 1)
    poison = RawMessage(topics.ORDERS_EVENTS, 0, 3, b"k", b"\x00garbage", created.headers)
    batch = [created, _order_created(second, 2), poison, created]  # the last one: the first again, same event id
    orchestrator = Orchestrator(saga_db)
    try:
        outcomes = orchestrator.handle_batch(batch)
        assert isinstance(outcomes[0], Dispatch) and isinstance(outcomes[1], Dispatch), outcomes
        assert [c.command_type for c in outcomes[0].commands] == ["ReserveStock", "AuthorizePayment"], outcomes[0]
        assert outcomes[1].saga_id == second
        assert isinstance(outcomes[2], str) and outcomes[2].startswith("undecodable"), outcomes[2]
        # the copy found the first's inbox row (same transaction) and re-sends what the saga awaits: the same command
        assert isinstance(outcomes[3], Dispatch) and outcomes[3].commands == outcomes[0].commands, outcomes[3]
        assert orchestrator.stats.duplicates == 1
        with saga_db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(store.instances)
                                .where(store.instances.c.saga_id.in_([first, second]))).scalar() == 2
    finally:
        with saga_db.begin() as conn:  # no saga may be left for the stack's deadline sweep to drive
            conn.execute(delete(store.history).where(store.history.c.saga_id.in_([first, second])))
            conn.execute(delete(store.instances).where(store.instances.c.saga_id.in_([first, second])))


def test_a_batch_reads_its_sagas_together_and_each_record_sees_what_the_last_wrote(engines: dict[str, Engine]) -> None:
    """Two sagas in one batch are read in one round trip (store.load_many_with_pending): a saga that already exists
    is found with the commands it awaits, a new one as new; a saga's second record reads it after the first's write."""
    saga_db = engines["saga"]
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    created = _order_created(old, 1)
    orchestrator = Orchestrator(saga_db)
    try:
        (started,) = orchestrator.handle_batch([created])
        assert isinstance(started, Dispatch), started
        again, fresh, fresh_copy = orchestrator.handle_batch(
            [created, _order_created(new, 2, event_id="fresh-" + new), _order_created(new, 3, event_id="fresh-" + new)])
        # the old saga, read with the others: its copy is a duplicate and re-sends the command the saga awaits
        assert isinstance(again, Dispatch) and again.commands == started.commands, again
        assert isinstance(fresh, Dispatch), fresh
        assert [c.command_type for c in fresh.commands] == ["ReserveStock", "AuthorizePayment"], fresh
        # the new saga's second copy read the row and the inbox claim its first copy wrote in the same transaction
        assert isinstance(fresh_copy, Dispatch) and fresh_copy.commands == fresh.commands, fresh_copy
        assert orchestrator.stats.duplicates == 2
        with saga_db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(store.instances)
                                .where(store.instances.c.saga_id.in_([old, new]))).scalar() == 2
    finally:
        with saga_db.begin() as conn:
            conn.execute(delete(store.history).where(store.history.c.saga_id.in_([old, new])))
            conn.execute(delete(store.instances).where(store.instances.c.saga_id.in_([old, new])))
