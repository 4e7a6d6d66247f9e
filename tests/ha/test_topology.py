"""The HA profile's topology, read back from the running stack: what `walsaga status` reports (every database a
primary and a synchronous standby, the etcd quorum, two database proxies), and every topic replicated three times
with two replicas needed in sync for a write."""
from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka.admin import ConfigResource

from schemas import topics
from tests.ha.cluster import admin
from tests.support import eventually
from walsaga.stack import nodes
from walsaga.stack.config import DATABASES, StackConfig

pytestmark = pytest.mark.stack


def test_status_shows_the_replicated_topology(stack: StackConfig) -> None:
    def healthy() -> list[nodes.Node]:
        found = nodes.status(stack)
        assert all(n.ok for n in found), [n for n in found if not n.ok]
        return found
    # the failover tests before this one leave the Connect group rebalancing for a few seconds (a connector's task
    # is UNASSIGNED until the group settles: scheduled.rebalance.max.delay.ms is 10 s in this profile)
    found = eventually(healthy, timeout=90, interval=2)
    kinds = Counter(n.kind for n in found)
    assert (kinds["kafka-broker"], kinds["connect-worker"]) == (3, 2)
    assert (kinds["orchestrator"], kinds["view-projector"], kinds["reconciler"]) == (2, 2, 2)
    assert kinds["participant-consumer"] == 2 * 4
    brokers = [n for n in found if n.kind == "kafka-broker"]
    assert sorted(n.role for n in brokers) == ["quorum-follower", "quorum-follower", "quorum-leader"]
    assert all(n.lag == 0 for n in brokers), brokers  # no replica out of sync
    for db in DATABASES:  # a Patroni pair each: one primary, one synchronous standby
        members = [n for n in found if n.kind == "postgres" and n.name.startswith(f"postgres[{db}-")]
        assert sorted(n.role for n in members) == ["primary", "standby"], members
        assert all("synchronous" in n.detail for n in members if n.role == "standby"), members
    assert sorted(n.role for n in found if n.kind == "etcd") == ["raft-follower", "raft-follower", "raft-leader"]
    proxies = [n for n in found if n.kind == "db-proxy"]
    assert len(proxies) == 2 and all(n.ok for n in proxies), proxies


def test_every_topic_has_three_replicas_in_sync_and_needs_two_for_a_write(stack: StackConfig) -> None:
    client = admin(stack)
    md = client.list_topics(timeout=10)
    names = set(md.topics)
    assert set(topics.ALL) | {"__consumer_offsets", "walsaga-connect-offsets"} <= names
    for name, topic in md.topics.items():
        for p in topic.partitions.values():
            assert (len(p.replicas), len(p.isrs)) == (3, 3), (name, p.id, p.replicas, p.isrs)
    (config,) = client.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topics.ORDERS_EVENTS)]).values()
    assert config.result(timeout=10)["min.insync.replicas"].value == "2"
