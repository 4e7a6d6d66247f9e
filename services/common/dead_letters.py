"""The dead-letter topic: a poison record is copied there unchanged, with why and where from in extra headers,
before its consumer moves past it. `walsaga dlq` lists and replays them."""
from __future__ import annotations

from schemas.headers import Headers, InHeaders, as_pairs

REASON = "dlq.reason"
CONSUMER = "dlq.consumer"
ORIGIN_TOPIC = "dlq.origin.topic"
ORIGIN_PARTITION = "dlq.origin.partition"
ORIGIN_OFFSET = "dlq.origin.offset"
DLQ_HEADERS = (REASON, CONSUMER, ORIGIN_TOPIC, ORIGIN_PARTITION, ORIGIN_OFFSET)


def dead_letter_headers(original: InHeaders, *, reason: str, consumer: str, topic: str, partition: int,
                        offset: int) -> Headers:
    return original_headers(original) + [
        (REASON, reason[:2000].encode()),
        (CONSUMER, consumer.encode()),
        (ORIGIN_TOPIC, topic.encode()),
        (ORIGIN_PARTITION, str(partition).encode()),
        (ORIGIN_OFFSET, str(offset).encode()),
    ]


def original_headers(headers: InHeaders) -> Headers:
    """The headers as they were before dead-lettering (for a replay)."""
    return [(k, v) for k, v in as_pairs(headers) if k not in DLQ_HEADERS]
