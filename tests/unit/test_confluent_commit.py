"""A commit while the group coordinator moves (a broker restarted) is retried, then left to the next commit; it
never crashes the worker (it did: COORDINATOR_LOAD_IN_PROGRESS out of the librdkafka transport's commit stopped all
three Faust apps after a broker restart). Only a fatal error raises. Going back to the committed offsets never
takes a partition the broker could not answer for as one never committed. No broker: the consumer is a stand-in."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, KafkaError, KafkaException, TopicPartition
from faust.types import TP

from stream_processors import kafka_retries
from stream_processors.confluent_transport import ConsumerThread

A, GONE = TP("t", 0), TP("t", 1)


class Committing:
    def __init__(self, *errors: KafkaError) -> None:
        self.errors, self.committed = list(errors), []

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        if self.errors:
            raise KafkaException(self.errors.pop(0))
        self.committed.append([(o.topic, o.partition, o.offset) for o in offsets])


def thread(consumer: Committing) -> Any:
    t = ConsumerThread.__new__(ConsumerThread)
    t._fetcher = object()
    t._assignment = {A}

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:  # the fetch thread's job, done in place
        return fn(*args, **kwargs)
    t._call = call
    t._ensure_consumer = lambda: SimpleNamespace(consumer=consumer)
    return t


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_retries, "FIRST_DELAY_S", 0.01)
    monkeypatch.setattr(kafka_retries, "MAX_DELAY_S", 0.02)
    monkeypatch.setattr(kafka_retries, "RETRY_FOR_S", 0.2)


def test_a_coordinator_loading_or_awaited_is_waited_out() -> None:
    consumer = Committing(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS), KafkaError(KafkaError._WAIT_COORD))
    assert asyncio.run(thread(consumer).commit({A: 42, GONE: 7})) is True
    assert consumer.committed == [[("t", 0, 42)]]  # a partition no longer assigned is not committed


def test_a_coordinator_that_stays_away_leaves_the_offsets_to_the_next_commit() -> None:
    consumer = Committing(*[KafkaError(KafkaError.NOT_COORDINATOR)] * 100)
    assert asyncio.run(thread(consumer).commit({A: 42})) is False
    assert consumer.committed == []


def test_a_commit_refused_by_a_rebalance_is_not_retried_nor_raised() -> None:
    consumer = Committing(KafkaError(KafkaError.ILLEGAL_GENERATION), KafkaError(KafkaError._WAIT_COORD))
    assert asyncio.run(thread(consumer).commit({A: 42})) is False
    assert len(consumer.errors) == 1  # one attempt only


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
