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
from stream_processors.saga.model import SagaStatus
from stream_processors.saga.orchestrator import Dispatch, Orchestrator, RawMessage

pytestmark = pytest.mark.stack


def _order_created(order_id: str, offset: int, event_id: str | None = None) -> RawMessage:
    value, version = codec.encode("OrderCreated", {
        "order_id": order_id, "customer_id": "batch-test", "currency": "USD", "payment_method": "pm_card_visa",
        "items": [{"sku": "batch-test", "quantity": 1, "unit_price": Decimal("1.00")}], "total_amount": Decimal("1.00"),
        "created_at": datetime.now(UTC)})
    env = Envelope(event_id or str(uuid.uuid4()), "OrderCreated", version, order_id, order_id, order_id)
    return RawMessage(topics.ORDERS_EVENTS, 0, offset, order_id.encode(), value, env.to_headers())


def _reply(event_type: str, record: dict[str, object], saga_id: str, causation_id: str) -> RawMessage:
    value, version = codec.encode(event_type, record)
    env = Envelope(str(uuid.uuid4()), event_type, version, saga_id, saga_id, causation_id)
    return RawMessage(topics.PAYMENTS_REPLIES, 0, 0, saga_id.encode(), value, env.to_headers())


def _commands(outcome: object) -> dict[str, str]:
    assert isinstance(outcome, Dispatch), outcome
    return {c.command_type: c.command_id for c in outcome.commands}


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


def test_a_saga_another_worker_moved_on_is_read_again_not_taken_from_the_cache(engines: dict[str, Engine]) -> None:
    """Worker `a` wrote the saga last and keeps what it wrote (saga/cache.py); worker `b` (a rebalance, say) then
    drives the saga two stages on. On `a`'s copy the capture's reply is not awaited, so deciding there would claim
    and ignore it: lost. The guard finds the saga's version moved, nothing is written, and `a` decides again on the
    saga as it is."""
    saga_db = engines["saga"]
    order_id = str(uuid.uuid4())
    a, b = Orchestrator(saga_db), Orchestrator(saga_db)
    try:
        (started,) = a.handle_batch([_order_created(order_id, 1)])
        first = _commands(started)
        authorized = _reply("PaymentAuthorized", {"order_id": order_id, "payment_id": "p-" + order_id}, order_id,
                            first["AuthorizePayment"])
        _, confirm = b.handle_batch([_reply("StockReserved", {"order_id": order_id}, order_id,
                                            first["ReserveStock"]), authorized])
        assert list(_commands(confirm)) == ["ConfirmOrder"], confirm
        (last_stage,) = b.handle_batch([_reply("OrderConfirmed", {"order_id": order_id, "customer_id": "batch-test",
                                                                   "version": 2}, order_id,
                                               _commands(confirm)["ConfirmOrder"])])
        last = _commands(last_stage)
        assert sorted(last) == ["CapturePayment", "CommitStock"], last_stage

        (captured,) = a.handle_batch([_reply("PaymentCaptured", {"order_id": order_id, "payment_id": "p-" + order_id},
                                             order_id, last["CapturePayment"])])
        assert a.stats.stale_cache == 1, a.stats
        assert isinstance(captured, Dispatch) and captured.commands == (), captured  # it waits for the stock only
        (done,) = a.handle_batch([_reply("StockCommitted", {"order_id": order_id}, order_id, last["CommitStock"])])
        assert a.stats.stale_cache == 1, a.stats  # `a` wrote the saga last: its copy held
        with saga_db.connect() as conn:
            assert store.load(conn, order_id).status is SagaStatus.COMPLETED  # type: ignore[union-attr]
            notes = [(h.message_type, h.note) for h in store.history_of(conn, order_id)]
        assert any(t == "PaymentCaptured" and n.startswith("capture_payment done") for t, n in notes), notes
        assert not any(note.startswith("ignored") for _, note in notes), notes
    finally:
        with saga_db.begin() as conn:
            conn.execute(delete(store.history).where(store.history.c.saga_id == order_id))
            conn.execute(delete(store.instances).where(store.instances.c.saga_id == order_id))
