"""A lost assignment (the group session expired while the broker was away) on the librdkafka transport: Faust sees
the partitions revoked, nothing fetched for them before is handed over, no commit is tried for them, and the consumer
leaves the group and joins it again (librdkafka was seen never to assign partitions again otherwise). No broker: the
callbacks are driven as librdkafka's poll would."""
from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from typing import Any

from confluent_kafka import TopicPartition
from faust.types import TP

from stream_processors.confluent_transport import ConsumerThread

A, B = TP("t", 0), TP("t", 1)


class FakeConsumer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def unsubscribe(self) -> None:
        self.calls.append(("unsubscribe", None))

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.calls.append(("subscribe", (topics, sorted(callbacks))))


class App:
    class conf:  # what the thread reads of Faust's app config
        id = "walsaga-test"


def thread() -> Any:
    t = ConsumerThread.__new__(ConsumerThread)
    t.app = App()
    t._fetcher = object()  # a fetch thread exists: epochs are kept
    t._stop_fetching = asyncio.Event()  # never set: not closing
    t._assignment = {A, B}
    t._epochs = defaultdict(int)
    t._rebalancing = []
    t._topics = ["t"]
    t._commits = deque()
    return t


def test_lost_partitions_are_revoked_for_faust_and_the_consumer_rejoins_the_group() -> None:
    t = thread()
    consumer = FakeConsumer()
    t._on_lost(consumer, [TopicPartition("t", 0)])
    assert t.assignment() == {B}  # commits skip what is no longer assigned
    assert t._epochs[A] == 1 and t._epochs[B] == 0  # records fetched for it before are never handed over
    assert len(t._rebalancing) == 1  # Faust's revocation handler runs after the poll
    assert t._rejoin_due and consumer.calls == []  # not inside librdkafka's callback: after the poll

    t._rejoin(consumer)
    assert consumer.calls == [("unsubscribe", None), ("subscribe", (["t"], ["on_assign", "on_lost", "on_revoke"]))]
    assert not t._rejoin_due


def test_a_plain_revocation_does_not_rejoin() -> None:
    t = thread()
    t._on_revoke(FakeConsumer(), [TopicPartition("t", 1)])
    assert t.assignment() == {A} and not t._rejoin_due
