"""Fault cases that bend the message flow: replays, an ambiguous provider, compensations overtaking their action,
poison records."""
from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import text

from schemas import codec, topics
from schemas.headers import Envelope
from services.payments.provider import CHARGE_THEN_TIMEOUT
from tests.faults.case import run_case
from tests.faults.conftest import Ctx
from tests.faults.harness import Batch, delta
from tests.support import eventually
from walsaga import operate
from walsaga.stack import apps, kafka_acls, procs

pytestmark = pytest.mark.stack

REWIND_PER_PARTITION = 5


def _no_fault_bit(info: dict[str, Any]) -> None:
    return None


def test_rewind_a_consumer_group_replays_only_duplicates(ctx: Ctx) -> None:
    stack = ctx[0]
    group, topic = "walsaga-inventory", topics.INVENTORY_COMMANDS

    admin = AdminClient(kafka_acls.admin(stack).confluent({"log_level": 3}))
    parts = [TopicPartition(topic, p) for p in range(topics.PARTITIONS)]

    def committed_offsets() -> list[TopicPartition]:
        return list(admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, parts)])[group].result(timeout=10).topic_partitions)

    def fault(info: dict[str, Any]) -> None:
        # mid-batch on a stack just started, inventory may not have committed a record yet: nothing to rewind then
        def some_committed() -> None:
            assert any(tp.offset > 0 for tp in committed_offsets()), "inventory has committed no offset yet"
        eventually(some_committed, timeout=60, interval=0.2)
        procs.stop(stack, "inventory-consumer")  # a clean stop commits what it processed
        committed = committed_offsets()
        rewound = [TopicPartition(topic, tp.partition, max(0, tp.offset - REWIND_PER_PARTITION))
                   for tp in committed if tp.offset > 0]
        info["replayed"] = sum(tp.offset - max(0, tp.offset - REWIND_PER_PARTITION) for tp in committed
                               if tp.offset > 0)
        admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, rewound)])[group].result(timeout=10)
        apps.start_consumer(stack, "inventory")

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        dups = delta(after, before, "inventory:duplicates")
        assert info["replayed"] > 0
        assert dups == info["replayed"], f"{info['replayed']} records replayed, {dups} dropped as duplicates"
        return f"inventory's group rewound by {info['replayed']} records; exactly {dups} dropped by the inbox"

    run_case("6. rewind a consumer group (replay)", *ctx, fault=fault, evidence=evidence)


def test_provider_charges_then_times_out(ctx: Ctx) -> None:
    engines = ctx[2]

    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        ambiguous = [batch.accepted[s.key] for s in batch.specs if s.payment_method == CHARGE_THEN_TIMEOUT]
        with engines["payments"].connect() as c:
            calls = dict(c.execute(text("SELECT idempotency_key, calls FROM sim_provider_ledger "
                                        "WHERE idempotency_key = ANY(:k)"),
                                   {"k": [f"authorize:{o}" for o in ambiguous]}).all())
            payments = Counter(r.order_id for r in c.execute(
                text("SELECT order_id FROM payments WHERE order_id = ANY(:ids)"), {"ids": ambiguous}))
        assert calls, "no order reached the provider with the ambiguous method"
        assert all(n >= 2 for n in calls.values()), calls       # the timeout really happened and was retried
        assert all(payments[o] == 1 for o in payments)          # ... and charged once
        return (f"{len(calls)} authorizations timed out after charging; each was retried with its key "
                f"({sum(calls.values())} provider calls) and recorded once")

    run_case("7. payment provider charges, then times out", *ctx, fault=_no_fault_bit, evidence=evidence,
             extra_methods=(CHARGE_THEN_TIMEOUT,))


def _command(command_type: str, record: dict[str, Any], order_id: str) -> tuple[str, bytes, list]:
    value, version = codec.encode(command_type, record)
    command_id = str(uuid.uuid4())
    return command_id, value, Envelope(command_id, command_type, version, order_id, order_id,
                                       str(uuid.uuid4())).to_headers()


def test_compensation_overtakes_its_action(ctx: Ctx) -> None:
    stack, gateway, engines = ctx[0], ctx[1], ctx[2]
    sku = f"barrier-{uuid.uuid4().hex[:6]}"

    def fault(info: dict[str, Any]) -> None:
        gateway.set_stock(sku, 10)
        order_id = str(uuid.uuid4())
        producer = Producer(kafka_acls.admin(stack).confluent({"enable.idempotence": True}))
        sends = [
            (topics.INVENTORY_COMMANDS, "ReleaseStock", {"order_id": order_id}),
            (topics.INVENTORY_COMMANDS, "ReserveStock", {"order_id": order_id, "lines": [{"sku": sku, "quantity": 4}]}),
            (topics.PAYMENTS_COMMANDS, "VoidPayment", {"order_id": order_id}),
            (topics.PAYMENTS_COMMANDS, "AuthorizePayment", {"order_id": order_id, "customer_id": "c", "currency": "USD",
                                                            "amount": Decimal("20.00"),
                                                            "payment_method": "pm_card_visa"}),
        ]
        for topic, ctype, record in sends:  # same key: each pair stays in order on its partition
            _, value, headers = _command(ctype, record, order_id)
            producer.produce(topic, key=order_id.encode(), value=value, headers=headers)
        assert producer.flush(10) == 0
        info["order_id"] = order_id

        def refused() -> None:
            with engines["inventory"].connect() as c:
                status = c.execute(text("SELECT status FROM reservations WHERE order_id = :o"),
                                   {"o": order_id}).scalar()
            with engines["payments"].connect() as c:
                barrier = c.execute(text("SELECT count(*) FROM payment_barrier WHERE order_id = :o"),
                                    {"o": order_id}).scalar()
                refusal = c.execute(text("SELECT count(*) FROM outbox WHERE aggregateid = :o AND type = "
                                         "'PaymentDeclined'"), {"o": order_id}).scalar()
            assert (status, barrier, refusal) == ("RELEASED", 1, 1)

        eventually(refused, timeout=60)

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        order_id = info["order_id"]
        stock = gateway.stock(sku)
        assert (stock["available"], stock["reserved"], stock["committed"]) == (10, 0, 0)
        assert gateway.payments(order_id) == []
        with engines["payments"].connect() as c:
            charged = c.execute(text("SELECT count(*) FROM sim_provider_ledger WHERE idempotency_key = :k"),
                                {"k": f"authorize:{order_id}"}).scalar()
        assert charged == 0
        return "release before reserve and void before authorize: both late actions refused by barriers, no charge"

    run_case("8. compensation overtakes its action (null compensation)", *ctx, fault=fault, evidence=evidence)


POISONED = [topics.ORDERS_EVENTS, topics.INVENTORY_REPLIES, topics.PAYMENTS_REPLIES, topics.ORDERS_COMMANDS,
            topics.INVENTORY_COMMANDS, topics.PAYMENTS_COMMANDS, topics.NOTIFICATIONS_COMMANDS]
KNOWN_TYPE = {topics.ORDERS_EVENTS: "OrderCreated", topics.INVENTORY_REPLIES: "StockReserved",
              topics.PAYMENTS_REPLIES: "PaymentAuthorized", topics.ORDERS_COMMANDS: "ConfirmOrder",
              topics.INVENTORY_COMMANDS: "ReserveStock", topics.PAYMENTS_COMMANDS: "AuthorizePayment",
              topics.NOTIFICATIONS_COMMANDS: "SendNotification"}


def test_poison_records_on_every_consumed_topic(ctx: Ctx) -> None:
    stack = ctx[0]
    run = uuid.uuid4().hex[:6]
    keys: dict[str, str] = {}

    def fault(info: dict[str, Any]) -> None:
        producer = Producer(kafka_acls.admin(stack).confluent())
        for topic in POISONED:
            garbage_key, headerless_key = f"poison-{run}-{topic}-garbage", f"poison-{run}-{topic}-noheaders"
            env = Envelope(str(uuid.uuid4()), KNOWN_TYPE[topic], 1, garbage_key, garbage_key, str(uuid.uuid4()))
            producer.produce(topic, key=garbage_key.encode(), value=b"\xff\x00not avro", headers=env.to_headers())
            producer.produce(topic, key=headerless_key.encode(), value=b"{}")
            keys[garbage_key], keys[headerless_key] = topic, topic
        assert producer.flush(10) == 0

        def all_dead_lettered() -> list[operate.DeadLetter]:
            letters = [d for d in operate.read_dead_letters(stack, 100_000) if (d.key or b"").decode() in keys]
            assert len(letters) == len(keys), f"{len(letters)}/{len(keys)} poison records dead-lettered"
            return letters

        info["letters"] = eventually(all_dead_lettered, timeout=60)

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        for letter in info["letters"]:
            assert letter.headers["dlq.origin.topic"] == keys[letter.key.decode()]
            assert letter.headers["dlq.reason"]
        assert delta(after, before, ":dead_letters") == len(keys)
        return (f"{len(keys)} poison records on {len(POISONED)} topics: each dead-lettered once with its reason "
                "and origin, and every consumer moved on")

    run_case("9. a poison record on each consumed topic", *ctx, fault=fault, evidence=evidence)
