"""The dead-letter topic: a poison record is copied there unchanged, with why and where from in extra headers,
before its consumer moves past it. `walsaga dlq` lists and replays them."""
from __future__ import annotations

from typing import Iterable

REASON = "dlq.reason"
CONSUMER = "dlq.consumer"
ORIGIN_TOPIC = "dlq.origin.topic"
ORIGIN_PARTITION = "dlq.origin.partition"
ORIGIN_OFFSET = "dlq.origin.offset"
DLQ_HEADERS = (REASON, CONSUMER, ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET)


def dead_letter_headers(original: Iterable[tuple[str, bytes | None]] | None, *, reason: str, consumer: str,
                        topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    kept = [(k, v if v is not None else b"") for k, v in (original or []) if k not in DLQ_HEADERS]
    return kept + [
        (REASON, reason[:2000].encode()),
        (CONSUMER, consumer.encode()),
        (ORIGIN_TOPIC, topic.encode()),
        (ORIGIN_PARTITION, str(partition).encode()),
        (ORIGIN_OFFSET, str(offset).encode()),
    ]


def original_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes]]:
    """The headers as they were before dead-lettering (for a replay)."""
    return [(k, v if v is not None else b"") for k, v in (headers or []) if k not in DLQ_HEADERS]
