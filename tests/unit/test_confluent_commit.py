"""Commits on the librdkafka transport are asynchronous: the fetch thread sends them and a later poll answers, so it
never waits for a group coordinator (a synchronous commit waited 60 s a try after a broker restart, on the thread
whose polls librdkafka needs to find the coordinator again: the saga worker stalled for good). A commit not answered
in time, refused, or overtaken by a rebalance is left to the next commit and never crashes the worker (it did:
COORDINATOR_LOAD_IN_PROGRESS stopped all three Faust apps after a broker restart); only a fatal error raises. Going
back to the committed offsets never takes a partition the broker could not answer for as one never committed. No
broker: the consumer is a stand-in, and its answers are delivered as a poll would."""
from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, KafkaError, KafkaException, TopicPartition
from faust.types import TP

from stream_processors import confluent_transport
from stream_processors.confluent_transport import ConsumerThread

A, GONE = TP("t", 0), TP("t", 1)


class Committing:
    """Answers each asynchronous commit at once with the next scripted error (None: committed), as a poll would;
    `silent` never answers."""

    def __init__(self, *errors: KafkaError | None, silent: bool = False) -> None:
        self.errors, self.committed, self.silent = list(errors), [], silent
        self.thread: Any = None

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        assert asynchronous, "a synchronous commit blocks the fetch thread"
        self.committed.append([(o.topic, o.partition, o.offset) for o in offsets])
        if not self.silent:
            self.thread._on_committed(self.errors.pop(0) if self.errors else None, offsets)


def thread(consumer: Any) -> Any:
    t = ConsumerThread.__new__(ConsumerThread)
    t._fetcher = object()
    t._assignment = {A}
    t._commits = deque()

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:  # the fetch thread's job, done in place
        return fn(*args, **kwargs)
    t._call = call
    t._ensure_consumer = lambda: SimpleNamespace(consumer=consumer)
    consumer.thread = t
    return t


def test_a_commit_is_sent_asynchronously_for_the_partitions_still_assigned() -> None:
    consumer = Committing(None)
    assert asyncio.run(thread(consumer).commit({A: 42, GONE: 7})) is True
    assert consumer.committed == [[("t", 0, 42)]]  # a partition no longer assigned is not committed


def test_a_refused_commit_is_left_to_the_next_one() -> None:
    for code in (KafkaError._WAIT_COORD, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION):
        consumer = Committing(KafkaError(code))
        assert asyncio.run(thread(consumer).commit({A: 42})) is False


def test_a_commit_never_answered_is_given_up_after_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(confluent_transport, "COMMIT_WAIT_S", 0.05)
    assert asyncio.run(thread(Committing(silent=True)).commit({A: 42})) is False


def test_a_rebalance_answers_the_commits_in_flight_and_a_late_answer_is_harmless() -> None:
    consumer = Committing(silent=True)
    t = thread(consumer)
    t._stop_fetching = SimpleNamespace(is_set=lambda: False)
    t._epochs, t._rebalancing, t._rebalances = {A: 0}, [], 0

    async def commit_then_revoke() -> bool:
        pending = asyncio.ensure_future(t.commit({A: 42}))
        async with asyncio.timeout(5):
            while not consumer.committed:  # until the commit has been sent and waits for its answer
                await asyncio.sleep(0)
        t._on_revoke(consumer, [TopicPartition("t", 0)])  # the poll that serves the rebalance
        return await pending
    assert asyncio.run(commit_then_revoke()) is False
    t._on_committed(None, [])  # librdkafka's answer, late: its request was already answered
    assert len(t._commits) == 0


def test_partitions_lost_before_the_commit_was_sent_are_left_out() -> None:
    consumer = Committing(None)
    t = thread(consumer)
    t._rejoin_due = True  # the assignment was lost since Faust asked
    assert asyncio.run(t.commit({A: 42})) is False
    assert consumer.committed == []


def test_a_fatal_error_raises() -> None:
    consumer = Committing(KafkaError(KafkaError._FENCED, fatal=True))
    with pytest.raises(KafkaException):
        asyncio.run(thread(consumer).commit({A: 42}))


class Resetting:
    """A consumer whose committed-offsets answers are scripted: each is a list of (partition, offset, error)."""

    def __init__(self, *answers: list[tuple[int, int, KafkaError | None]]) -> None:
        self.answers, self.sought = list(answers), []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("t", 0), TopicPartition("t", 1)]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        out = []
        for partition, offset, error in self.answers.pop(0):
            tp = TopicPartition("t", partition, offset)
            if error is not None:
                tp = SimpleNamespace(topic="t", partition=partition, offset=offset, error=error)  # type: ignore[assignment]
            out.append(tp)
        return out

    def seek(self, tp: TopicPartition) -> None:
        self.sought.append((tp.partition, tp.offset))


def resetting(consumer: Resetting) -> Any:
    t = thread(consumer)  # type: ignore[arg-type]
    t._fetcher = None  # no fetch thread: the reset runs in place
    t._reset_due = False
    return t


def test_a_partition_never_committed_goes_back_to_its_start() -> None:
    consumer = Resetting([(0, 42, None), (1, OFFSET_INVALID, None)])
    offsets = asyncio.run(resetting(consumer).seek_to_committed())
    assert consumer.sought == [(0, 42), (1, OFFSET_BEGINNING)]  # left where it was fetched, records would be skipped
    assert offsets == {A: 42}


def test_a_partition_the_broker_could_not_answer_for_is_an_error_not_a_missing_offset() -> None:
    consumer = Resetting([(0, 42, None), (1, OFFSET_INVALID, KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))])
    t = resetting(consumer)
    with pytest.raises(KafkaException):
        t._reset_or_owe(consumer)
    assert consumer.sought == []  # nothing moved on a half answer
    assert t._reset_due is True  # and the fetch thread owes the reset
