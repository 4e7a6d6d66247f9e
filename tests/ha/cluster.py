"""Reading the HA stack's Kafka cluster and consumer groups, for the failover tests."""
from __future__ import annotations

from confluent_kafka.admin import AdminClient

from tests.support import eventually
from walsaga.stack import kafka, kafka_acls, procs, rolling
from walsaga.stack.config import StackConfig


def admin(stack: StackConfig) -> AdminClient:
    return AdminClient(kafka_acls.admin(stack).confluent({"log_level": 0}))


def restart_stopped_brokers(stack: StackConfig) -> None:
    """Starts every node that is down, then waits until every replica is back in sync."""
    for node, name in enumerate(stack.broker_names(), start=1):
        if procs.read_pid(stack, name) is None:
            kafka.start_broker(stack, node)
    eventually(lambda: assert_all_in_sync(stack), timeout=120, interval=1.0)


def assert_all_in_sync(stack: StackConfig) -> None:
    behind = rolling.out_of_sync(stack)
    assert not behind, behind[:5]


def members_with_partitions(stack: StackConfig, group: str) -> int:
    """How many members of the consumer group hold at least one partition."""
    client = admin(stack)  # kept until the answer is in: a collected client never completes its futures
    (future,) = client.describe_consumer_groups([group]).values()
    described = future.result(timeout=10)
    return sum(1 for m in described.members if m.assignment and m.assignment.topic_partitions)
