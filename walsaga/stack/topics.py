"""Declares the topics in schemas/topics.py on the broker and publishes this release's contracts to walsaga.schemas
(both idempotent); used by `walsaga up` and compose's init."""
from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import topics
from services.common import published_schemas
from services.common.kafka_access import KafkaAccess
from walsaga.stack.procs import say


def ensure_topics(kafka: KafkaAccess, replication_factor: int = 1) -> None:
    admin = AdminClient(kafka.confluent())
    existing = set(admin.list_topics(timeout=10).topics)
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
    override = topics.OVERRIDES.get(name, {})
    return NewTopic(name, num_partitions=override.get("partitions", topics.PARTITIONS),
                    replication_factor=replication_factor,
                    config={"retention.ms": str(topics.RETENTION_MS), "segment.ms": str(topics.SEGMENT_MS),
                            **override.get("config", {})})
