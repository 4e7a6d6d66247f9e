"""A saga definition changed while instances are in flight: the change is a new version next to the old one, an
instance finishes on the version it started with, a new one starts on the newest, and a worker that lacks a version
still in use neither starts (missing_versions) nor handles that version's records (they are dead-lettered with the
reason, unclaimed, for a replay). Real Postgres: the test stack's saga database, driven through handle_batch."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, select

from schemas import codec, topics
from schemas.headers import Envelope
from stream_processors.saga import store
from stream_processors.saga.orchestrator import Dispatch, Orchestrator, RawMessage
from stream_processors.saga.place_order import PLACE_ORDER, PLACE_ORDER_V1
from stream_processors.saga.refund_order import REFUND_ORDER
from walsaga import operate
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack

def _message(event_type: str, record: dict[str, object], saga_id: str, causation_id: str) -> RawMessage:
    value, version = codec.encode(event_type, record)
    env = Envelope(str(uuid.uuid4()), event_type, version, saga_id, saga_id, causation_id)
    return RawMessage(topics.ORDERS_EVENTS, 0, 0, saga_id.encode(), value, env.to_headers())


def _order_created(order_id: str) -> RawMessage:
    return _message("OrderCreated", {
        "order_id": order_id, "customer_id": "versions-test", "currency": "USD", "payment_method": "pm_card_visa",
        "items": [{"sku": "versions-test", "quantity": 1, "unit_price": Decimal("1.00")}],
        "total_amount": Decimal("1.00"), "created_at": datetime.now(UTC)}, order_id, order_id)


def _sent(outcome: object) -> tuple[list[str], str]:
    assert isinstance(outcome, Dispatch) and outcome.commands, outcome
    return [c.command_type for c in outcome.commands], outcome.commands[0].command_id


def _version(saga_db: Engine, saga_id: str) -> tuple[int, int]:
    with saga_db.connect() as conn:
        row = conn.execute(select(store.instances.c.definition_version, store.instances.c.step)
                           .where(store.instances.c.saga_id == saga_id)).one()
    return row.definition_version, row.step


def test_an_instance_finishes_on_its_version_while_new_ones_start_on_the_newest(engines: dict[str, Engine],
                                                                               stack: StackConfig) -> None:
    saga_db = engines["saga"]
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    before_deploy = Orchestrator(saga_db, catalog=(PLACE_ORDER_V1, REFUND_ORDER))  # one step after the other
    after_deploy = Orchestrator(saga_db)  # the catalog as it is: v1 and v2 (reserve and authorize in parallel)
    v1_removed = Orchestrator(saga_db, catalog=(PLACE_ORDER, REFUND_ORDER))
    try:
        commands, reserve_id = _sent(before_deploy.handle_batch([_order_created(old)])[0])
        assert commands == ["ReserveStock"] and _version(saga_db, old) == (1, 0)

        # the definition changes (deployed as v2 next to v1) while the old saga waits for its stock
        started = after_deploy.handle_batch([_order_created(new)])[0]
        assert isinstance(started, Dispatch), started
        assert sorted(c.command_type for c in started.commands) == ["AuthorizePayment", "ReserveStock"]
        assert _version(saga_db, new) == (2, 0)
        ids = {c.command_type: c.command_id for c in started.commands}

        # a worker without v1 refuses to start, and leaves v1's records unhandled, with the reason
        assert any(line.startswith("place_order v1: ") for line in v1_removed.missing_versions())
        assert after_deploy.missing_versions() == []
        listed = {line.split("  ")[0]: line for line in operate.versions_in_use(stack)}  # walsaga sagas --versions
        assert listed["place_order v1"].endswith("in the catalog"), listed
        assert listed["place_order v2"].endswith("newest"), listed
        reply = _message("StockReserved", {"order_id": old}, old, reserve_id)
        (refused,) = v1_removed.handle_batch([reply])
        assert isinstance(refused, str) and "runs place_order v1, which this worker does not have" in refused
        assert _version(saga_db, old) == (1, 0)

        # the same record, replayed to a worker that has both: the old saga goes on with v1's next step, while the
        # new one, its payment authorized, waits for its stock, then confirms
        authorized = _message("PaymentAuthorized", {"order_id": new, "payment_id": "p-" + new}, new,
                              ids["AuthorizePayment"])
        old_next, new_waits = after_deploy.handle_batch([reply, authorized])
        assert _sent(old_next)[0] == ["AuthorizePayment"] and _version(saga_db, old) == (1, 1)
        assert isinstance(new_waits, Dispatch) and new_waits.commands == (), new_waits
        reserved = _message("StockReserved", {"order_id": new}, new, ids["ReserveStock"])
        (new_next,) = after_deploy.handle_batch([reserved])
        assert _sent(new_next)[0] == ["ConfirmOrder"] and _version(saga_db, new) == (2, 1)
    finally:
        with saga_db.begin() as conn:  # no saga may be left for the stack's deadline sweep to drive
            conn.execute(delete(store.history).where(store.history.c.saga_id.in_([old, new])))
            conn.execute(delete(store.instances).where(store.instances.c.saga_id.in_([old, new])))
