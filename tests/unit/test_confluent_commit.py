"""A commit while the group coordinator moves (a broker restarted) is retried, then left to the next commit; it
never crashes the worker (it did: COORDINATOR_LOAD_IN_PROGRESS out of the librdkafka transport's commit stopped all
three Faust apps after a broker restart). Only a fatal error raises. No broker: the consumer is a stand-in."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
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
