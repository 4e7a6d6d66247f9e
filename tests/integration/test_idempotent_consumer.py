"""A command delivered twice (same message id) has its effect once: the inbox row turns the copy into a no-op."""
from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from sqlalchemy import Engine, func, select

from schemas import codec, topics
from schemas.headers import Envelope
from services.inventory import db as inventory_db
from tests.support import TopicTail, headers_of
from walsaga.client import Gateway
from walsaga.stack import kafka_acls
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def _reserve_command(order_id: str, sku: str, quantity: int, key: str) -> tuple[str, bytes, list]:
    value, version = codec.encode("ReserveStock", {"order_id": order_id, "lines": [{"sku": sku, "quantity": quantity}]})
    command_id = str(uuid.uuid4())
    env = Envelope(command_id, "ReserveStock", version, key, key, str(uuid.uuid4()))
    return command_id, value, env.to_headers()


def test_duplicate_command_delivery_is_a_no_op(stack: StackConfig, gateway: Gateway,
                                               engines: dict[str, Engine]) -> None:
    sku = f"dup-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 10)
    order_id, marker_order = str(uuid.uuid4()), str(uuid.uuid4())
    command_id, value, headers = _reserve_command(order_id, sku, 3, order_id)
    marker_id, marker_value, marker_headers = _reserve_command(marker_order, sku, 1, order_id)

    tail = TopicTail(kafka_acls.admin(stack), topics.INVENTORY_REPLIES)
    producer = Producer(kafka_acls.admin(stack).confluent({"enable.idempotence": True}))
    try:
        # the same record twice, then a marker on the same key (same partition): once the marker is answered,
        # both copies have been consumed
        for v, h in ((value, headers), (value, headers), (marker_value, marker_headers)):
            producer.produce(topics.INVENTORY_COMMANDS, key=order_id.encode(), value=v, headers=h)
        assert producer.flush(10) == 0
        tail.poll_until(lambda m: headers_of(m).get("causationId") == marker_id, timeout=60)
        # replies are keyed by order, so the marker's reply may sit on another partition: read everything to the end
        tail.poll_until(lambda m: headers_of(m).get("causationId") == command_id, timeout=30)
        tail.drain_to_end()
        replies = [m for m in tail.seen if headers_of(m).get("causationId") == command_id]
        assert [headers_of(m)["eventType"] for m in replies] == ["StockReserved"]
    finally:
        tail.close()

    with engines["inventory"].connect() as conn:
        reply_rows = conn.execute(select(func.count()).select_from(inventory_db.outbox)
                                  .where(inventory_db.outbox.c.causation_id == command_id)).scalar_one()
    assert reply_rows == 1

    assert gateway.stock(sku)["reserved"] == 4  # 3 once, plus the marker's 1
    assert gateway.stock(sku)["available"] == 6
    with engines["inventory"].connect() as conn:
        inbox_rows = conn.execute(select(func.count()).select_from(inventory_db.inbox)
                                  .where(inventory_db.inbox.c.message_id == command_id)).scalar_one()
    assert inbox_rows == 1
