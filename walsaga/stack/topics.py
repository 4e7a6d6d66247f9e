"""Declares the topics in schemas/topics.py on the broker and publishes this release's contracts to walsaga.schemas
(both idempotent); used by `walsaga up` and compose's init."""
from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from schemas import topics
from services.common import published_schemas
from services.common.kafka_access import KafkaAccess
from walsaga.stack.procs import say


def ensure_topics(kafka: KafkaAccess, replication_factor: int = 1) -> None:
    """Creates the missing topics, and brings the declared settings of existing ones up to date (a release that
    changes a topic's retention or segment age changes it on an existing stack too)."""
    admin = AdminClient(kafka.confluent())
    existing = set(admin.list_topics(timeout=10).topics)
    _align_configs(admin, [t for t in topics.ALL if t in existing])
    missing = [t for t in topics.ALL if t not in existing]
    if not missing:
        return
    say(f"kafka: creating topics {', '.join(missing)}")
    futures = admin.create_topics([_new_topic(t, replication_factor) for t in missing])
    for fut in futures.values():
        try:
            fut.result(timeout=30)
        except KafkaException as exc:
            # only "already exists" (a concurrent `up` or init) is acceptable
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def publish_contracts(kafka: KafkaAccess) -> None:
    """Before any process of this release starts: a reader of an older release finds the new versions there."""
    added = published_schemas.publish(kafka)
    say(f"contracts: {added} new version(s) published to {topics.SCHEMAS}" if added
        else f"contracts: every version already in {topics.SCHEMAS}")


def _new_topic(name: str, replication_factor: int) -> NewTopic:
    return NewTopic(name, num_partitions=topics.OVERRIDES.get(name, {}).get("partitions", topics.PARTITIONS),
                    replication_factor=replication_factor, config=topics.declared_config(name))


def _align_configs(admin: AdminClient, names: list[str]) -> None:
    if not names:
        return
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in names])
    changes = []
    for resource, future in described.items():
        actual = {key: entry.value for key, entry in future.result(timeout=30).items()}
        stale = {key: value for key, value in topics.declared_config(resource.name).items() if actual.get(key) != value}
        if stale:
            say(f"kafka: {resource.name}: setting {', '.join(f'{k}={v}' for k, v in sorted(stale.items()))}")
            changes.append(ConfigResource(ResourceType.TOPIC, resource.name, incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in sorted(stale.items())]))
    for future in (admin.incremental_alter_configs(changes).values() if changes else ()):
        future.result(timeout=30)
