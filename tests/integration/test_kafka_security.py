"""Kafka's listeners and ACLs on the real brokers (walsaga/stack/kafka_acls.py): an anonymous client and a wrong
password get nothing; a real principal gets only what its ACLs allow (a service cannot forge another service's
commands, read someone else's command topic, delete topics or touch another group)."""
from __future__ import annotations

import dataclasses
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import topics
from walsaga.stack import kafka_acls
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack

QUIET = {"log_level": 0, "socket.timeout.ms": 3000}


def _metadata_refused(conf: dict[str, object]) -> bool:
    try:
        AdminClient(conf).list_topics(timeout=5)
    except KafkaException:
        return True
    return False


def test_an_anonymous_client_gets_no_metadata(stack: StackConfig) -> None:
    assert _metadata_refused({"bootstrap.servers": stack.kafka_bootstrap, **QUIET})


def test_a_wrong_password_is_refused(stack: StackConfig) -> None:
    orders = kafka_acls.access(stack, kafka_acls.service("orders"))
    assert not _metadata_refused(orders.confluent(QUIET))  # the control: the right one is let in
    assert _metadata_refused(dataclasses.replace(orders, password="wrong").confluent(QUIET))
    assert _metadata_refused(dataclasses.replace(orders, username="walsaga-nobody").confluent(QUIET))


def _produce_error(stack: StackConfig, principal: str, topic: str) -> KafkaError | None:
    errors: list[KafkaError | None] = []
    producer = Producer(kafka_acls.access(stack, principal).confluent({**QUIET, "message.timeout.ms": 10000}))
    producer.produce(topic, key=b"k", value=b"forged", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(15)
    assert len(errors) == 1
    return errors[0]


def test_a_service_cannot_forge_commands_for_another_and_only_connect_writes_events(stack: StackConfig) -> None:
    refused = [(p, t) for p, t in [(kafka_acls.service("inventory"), topics.PAYMENTS_COMMANDS),
                                   (kafka_acls.service("orders"), topics.ORDERS_COMMANDS),
                                   (kafka_acls.VIEWS, topics.PAYMENTS_COMMANDS),
                                   (kafka_acls.PROCESSORS, topics.ORDERS_EVENTS)]
               if (err := _produce_error(stack, p, t)) is not None
               and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED]
    assert len(refused) == 4, refused
    assert _produce_error(stack, kafka_acls.service("orders"), topics.DEAD_LETTERS) is None  # the control


def _read_error(stack: StackConfig, principal: str, topic: str) -> KafkaError | None:
    """The topic's metadata as the principal's consumer sees it (the broker answers with an authorization error
    instead of the partitions when no READ or DESCRIBE ACL allows it), in the principal's own group (the only one it
    may use) without joining it: its real consumers are undisturbed."""
    consumer = Consumer(kafka_acls.access(stack, principal).confluent(
        {**QUIET, "group.id": principal, "enable.auto.commit": False}))
    try:
        error: KafkaError | None = consumer.list_topics(topic, timeout=10).topics[topic].error
        return error
    finally:
        consumer.close()


def test_a_service_reads_only_its_own_command_topic(stack: StackConfig) -> None:
    refused = _read_error(stack, kafka_acls.service("orders"), topics.PAYMENTS_COMMANDS)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
    assert _read_error(stack, kafka_acls.service("orders"), topics.ORDERS_COMMANDS) is None  # the control


def test_only_the_admin_deletes_topics_or_alters_groups(stack: StackConfig) -> None:
    orders = AdminClient(kafka_acls.access(stack, kafka_acls.service("orders")).confluent(QUIET))
    with pytest.raises(KafkaException) as deleting:
        orders.delete_topics([topics.ORDERS_COMMANDS])[topics.ORDERS_COMMANDS].result(15)
    assert deleting.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as deleting_group:
        orders.delete_consumer_groups([kafka_acls.PROCESSORS])[kafka_acls.PROCESSORS].result(15)
    assert deleting_group.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    assert topics.ORDERS_COMMANDS in AdminClient(kafka_acls.admin(stack).confluent(QUIET)).list_topics(
        timeout=10).topics  # still there

    scratch = f"walsaga-test-scratch-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(kafka_acls.admin(stack).confluent(QUIET))
    admin.create_topics([NewTopic(scratch, 1, 1)])[scratch].result(15)
    admin.delete_topics([scratch])[scratch].result(15)  # the control: the admin may
