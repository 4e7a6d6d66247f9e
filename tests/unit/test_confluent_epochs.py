"""The librdkafka transport never hands Faust a record fetched before its partition's position was reset
(reassigned, revoked, sought): Faust would take the offsets it skips for a gap, count them acked and commit past
records it never saw. Records of other partitions in the same batch are handed over. No broker: the consumer
thread's hand-over is driven directly, as its fetch thread would."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from stream_processors.confluent_transport import ConsumerThread

A, B = TP("t", 0), TP("t", 1)


@dataclass
class Record:
    tp: TP
    off: int

    def topic(self) -> str:
        return self.tp.topic

    def partition(self) -> int:
        return self.tp.partition

    def offset(self) -> int:
        return self.off


class Room:
    def release(self) -> None:
        pass


def thread() -> Any:
    t = ConsumerThread.__new__(ConsumerThread)
    t._fetcher = object()  # a fetch thread exists: epochs are kept
    t._fetch_error = None
    t._fetched = asyncio.Queue()
    t._room = Room()
    t._assignment = {A, B}
    t._epochs = defaultdict(int)
    t._held = {}
    return t


def fetched(t: Any, *records: Record) -> None:
    """What the fetch thread hands over: the records and their partitions' epochs when they were fetched."""
    t._fetched.put_nowait((list(records), {r.tp: t._epochs[r.tp] for r in records}))


def offsets(ready: dict[TP, list[Any]]) -> dict[TP, list[int]]:
    return {tp: [r.offset() for r in records] for tp, records in ready.items()}


def test_records_fetched_before_a_seek_are_dropped_the_other_partitions_kept() -> None:
    t = thread()
    fetched(t, Record(A, 150), Record(A, 151), Record(B, 7))
    t._moved({A})  # Faust sought A back to its committed offset, 100
    fetched(t, Record(A, 100), Record(A, 101))
    assert offsets(t._ready(None)) == {A: [100, 101], B: [7]}


def test_held_records_of_a_paused_partition_go_stale_when_it_is_sought() -> None:
    t = thread()
    fetched(t, Record(A, 150), Record(B, 7))
    assert offsets(t._ready({B})) == {B: [7]}  # A is paused: its record is held
    t._moved({A})
    assert t._ready({A, B}) == {}
    fetched(t, Record(A, 100))
    assert offsets(t._ready({A, B})) == {A: [100]}


def test_a_revoked_partition_hands_over_nothing_it_fetched_before() -> None:
    t = thread()
    fetched(t, Record(A, 150), Record(B, 7))
    t._assignment.discard(A)
    t._moved({A})
    assert offsets(t._ready(None)) == {B: [7]}
