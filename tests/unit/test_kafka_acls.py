"""The Kafka ACLs (walsaga/stack/kafka_acls.py) held against what each app actually subscribes to and sends, and the
SASL settings an app's Kafka clients are built with. The refusals themselves are tested on the real brokers
(tests/integration/test_kafka_security.py)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from schemas import topics
from services.common.kafka_access import SCRAM, KafkaAccess
from stream_processors.app import faust_app
from stream_processors.reconciler.app import WATCHED
from stream_processors.views.app import SOURCES
from walsaga.stack import kafka_acls
from walsaga.stack.config import SERVICES


def _topics(principal: str, operation: AclOperation) -> set[str]:
    return {g.name for g in kafka_acls.grants() if g.principal == principal and g.operation == operation
            and g.resource == ResourceType.TOPIC and g.pattern == ResourcePatternType.LITERAL}


def test_each_faust_app_may_read_what_it_subscribes_to_and_no_more() -> None:
    assert _topics(kafka_acls.VIEWS, AclOperation.READ) == {*SOURCES, topics.SCHEMAS}
    assert _topics(kafka_acls.RECONCILER, AclOperation.READ) == {*WATCHED, topics.SCHEMAS}
    assert _topics(kafka_acls.PROCESSORS, AclOperation.READ) == {topics.ORDERS_EVENTS, topics.INVENTORY_REPLIES,
                                                                 topics.PAYMENTS_REPLIES, topics.SCHEMAS}


def test_a_participant_reads_only_its_command_topic_and_the_contracts_and_writes_only_dead_letters() -> None:
    for svc in SERVICES:
        principal = kafka_acls.service(svc)
        extra = {topics.INVENTORY_PRICES} if svc == "orders" else set()
        assert _topics(principal, AclOperation.READ) == {topics.COMMAND_TOPIC[svc], *extra, topics.SCHEMAS}
        assert _topics(principal, AclOperation.WRITE) == {topics.DEAD_LETTERS}


def test_only_connect_writes_outbox_topics_and_only_the_orchestrator_and_repairs_write_commands() -> None:
    writers: dict[str, set[str]] = {}
    for principal in kafka_acls.APPLICATION_PRINCIPALS:
        for topic in _topics(principal, AclOperation.WRITE):
            writers.setdefault(topic, set()).add(principal)
    for topic in kafka_acls.OUTBOX_ROUTED:
        assert writers[topic] == {kafka_acls.CONNECT}, topic
    assert writers[topics.ORDERS_COMMANDS] == {kafka_acls.PROCESSORS}
    for svc in ("inventory", "payments", "notifications"):
        assert writers[topics.COMMAND_TOPIC[svc]] == {kafka_acls.PROCESSORS, kafka_acls.RECONCILER}


def test_no_application_may_alter_the_cluster_or_another_principals_group() -> None:
    for grant in kafka_acls.grants():
        assert grant.resource != ResourceType.BROKER, grant
        if grant.resource == ResourceType.GROUP:
            assert (grant.name, grant.operation) == (grant.principal, AclOperation.READ), grant
        if grant.operation == AclOperation.ALL:
            assert grant.pattern == ResourcePatternType.PREFIXED and grant.name == f"{grant.principal}-", grant
    assert not set(kafka_acls.APPLICATION_PRINCIPALS) & set(kafka_acls.SUPER_USERS)


def test_a_faust_app_on_aiokafka_with_credentials_logs_in_with_scram(tmp_path: Path) -> None:
    """On librdkafka (the default): test_fetching.py, the orchestrator's consumer settings."""
    app = faust_app("t-sasl", KafkaAccess("127.0.0.1:1", "walsaga-views", "secret"), 1, str(tmp_path),
                    transport="aiokafka")

    async def client_settings() -> Any:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.stop()
        return consumer._client
    client = asyncio.run(client_settings())
    assert (client._security_protocol, client._sasl_mechanism) == ("SASL_PLAINTEXT", SCRAM)
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("walsaga-views", "secret")


def test_a_confluent_client_config_carries_the_identity_and_its_repr_not_the_password() -> None:
    access = KafkaAccess("127.0.0.1:1", "walsaga-orders", "secret")
    conf = access.confluent({"group.id": "g"})
    assert conf["security.protocol"] == "SASL_PLAINTEXT" and conf["sasl.mechanism"] == SCRAM
    assert (conf["sasl.username"], conf["sasl.password"], conf["group.id"]) == ("walsaga-orders", "secret", "g")
    assert "secret" not in repr(access)
    assert "security.protocol" not in KafkaAccess("127.0.0.1:1").confluent()
