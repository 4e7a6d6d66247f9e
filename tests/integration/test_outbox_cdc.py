"""The outbox contract against real Postgres, Debezium and Kafka: a row exists iff its transaction commits, and a
committed row arrives on its topic as the expected Avro record with its headers."""
from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import Engine, func, select

from schemas import codec, topics
from services.common import outbox
from services.notifications import db as notifications_db
from tests.support import TopicTail, headers_of
from walsaga.stack import kafka_acls
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack

# NotificationSent is used because no processor acts on it: writing it starts no saga.
EVENT = "NotificationSent"


def _record(order_id: str) -> dict:
    return {"notification_id": str(uuid.uuid4()), "order_id": order_id, "type": "OrderConfirmed", "channel": "log"}


def _outbox_count(engine: Engine, aggregate_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(notifications_db.outbox)
                            .where(notifications_db.outbox.c.aggregateid == aggregate_id)).scalar_one()


def _append(conn, aggregate_id: str, correlation: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    return outbox.append(conn, notifications_db.outbox, topic=topics.NOTIFICATIONS_EVENTS, aggregate_id=aggregate_id,
                         event_type=EVENT, record=_record(aggregate_id), saga_id=aggregate_id,
                         correlation_id=correlation)


def test_outbox_row_exists_iff_its_transaction_commits_and_only_committed_rows_reach_kafka(
        stack: StackConfig, engines: dict[str, Engine]) -> None:
    engine = engines["notifications"]
    aggregate_id = f"agg-{uuid.uuid4()}"
    tail = TopicTail(kafka_acls.admin(stack), topics.NOTIFICATIONS_EVENTS)
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            rolled_back_id = _append(conn, aggregate_id, "rolled-back")
            trans.rollback()
        assert _outbox_count(engine, aggregate_id) == 0

        with engine.begin() as conn:
            committed_id = _append(conn, aggregate_id, "committed")
        assert _outbox_count(engine, aggregate_id) == 1

        # same key -> same partition: the rolled-back row, had it leaked, would arrive before the committed one
        msg = tail.poll_until(lambda m: m.key() == aggregate_id.encode(), timeout=60)
        headers = headers_of(msg)
        assert headers["id"] == str(committed_id) != str(rolled_back_id)
        assert headers["eventType"] == EVENT
        assert headers["schemaVersion"] == "1"
        assert headers["sagaId"] == aggregate_id
        assert headers["correlationId"] == "committed"
        assert msg.topic() == topics.NOTIFICATIONS_EVENTS
        decoded = codec.decode(EVENT, 1, msg.value())
        assert decoded["order_id"] == aggregate_id
        same_key = [m for m in tail.seen if m.key() == aggregate_id.encode()]
        assert [headers_of(m)["id"] for m in same_key] == [str(committed_id)]
    finally:
        tail.close()


def _partitions_of(producer_config: dict, topic: str, keys: list[str]) -> dict[str, int]:
    """The partition a producer with this configuration puts each key on (from its delivery reports)."""
    placed: dict[str, int] = {}
    producer = Producer(producer_config)
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"x",
                         on_delivery=lambda err, msg: placed.__setitem__(msg.key().decode(), msg.partition()))
    assert producer.flush(30) == 0
    return placed


def test_our_producers_put_a_key_on_the_partition_kafka_connect_puts_it_on(
        stack: StackConfig, engines: dict[str, Engine]) -> None:
    """Per-key order holds whoever produces a key: a replayed event, a repair or an operator's command lands on
    the partition of the key's other records (librdkafka's default partitioner would not: control below)."""
    keys = [f"agg-{uuid.uuid4()}" for _ in range(16)]
    admin = kafka_acls.admin(stack)
    tail = TopicTail(admin, topics.NOTIFICATIONS_EVENTS)
    scratch = f"walsaga.test.partitioning-{uuid.uuid4().hex[:8]}"
    client = AdminClient(admin.confluent())
    client.create_topics([NewTopic(scratch, topics.PARTITIONS, 1)])[scratch].result(30)
    try:
        with engines["notifications"].begin() as conn:
            for key in keys:
                _append(conn, key, "partitioning")
        by_connect = {key: tail.poll_until(lambda m, k=key: m.key() == k.encode(), timeout=60).partition()
                      for key in keys}
        assert _partitions_of(admin.producer(), scratch, keys) == by_connect
        assert _partitions_of(admin.confluent(), scratch, keys) != by_connect  # CRC32: the test can fail
    finally:
        tail.close()
        client.delete_topics([scratch])
