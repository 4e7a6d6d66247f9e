"""Declares the topics in schemas/topics.py on the broker (idempotent)."""
from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from schemas import topics
from walsaga.stack.config import StackConfig
from walsaga.stack.procs import say


def ensure_topics(cfg: StackConfig) -> None:
    admin = AdminClient({"bootstrap.servers": cfg.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in topics.ALL if t not in existing]
    if not missing:
        return
    say(f"kafka: creating topics {', '.join(missing)}")
    futures = admin.create_topics([NewTopic(t, num_partitions=topics.PARTITIONS, replication_factor=1)
                                   for t in missing])
    for name, fut in futures.items():
        try:
            fut.result(timeout=30)
        except Exception as exc:  # noqa: BLE001 - only "already exists" (a concurrent `up`) is acceptable
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
