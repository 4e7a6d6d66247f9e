"""Taking records from a librdkafka consumer without waiting for company: the first record is waited for, whatever
else has already arrived comes with it. Used by the participant consumers and the Faust transport on librdkafka."""
from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

log = logging.getLogger(__name__)


def poll_ready(consumer: Consumer, timeout: float, most: int, name: str) -> list[Message]:
    """Waits up to `timeout` for one record, then takes what is already queued (up to `most` in all). Error events
    are left out: a fatal one raises, the end of a partition passes silently, the others (a broker that went away:
    librdkafka retries) are logged."""
    first = consumer.poll(timeout)
    if first is None:
        return []
    records = [first, *(consumer.consume(most - 1, timeout=0) if most > 1 else [])]
    taken = []
    for record in records:
        error = record.error()
        if error is None:
            taken.append(record)
        elif error.fatal():
            raise KafkaException(error)
        elif error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer %s: kafka error %s", name, error)
    return taken
