"""close_bounded: a consumer whose close hangs (seen after a broker restart: librdkafka waiting on the old group
coordinator) does not hold up the service; one that closes in time, or fails to commit while closing, is fine."""
from __future__ import annotations

import threading
import time

from confluent_kafka import KafkaError, KafkaException

from services.common.consumer import close_bounded


class Closing:
    def __init__(self, hang: threading.Event | None = None, error: Exception | None = None) -> None:
        self.hang, self.error, self.closed = hang, error, threading.Event()

    def close(self) -> None:
        if self.hang is not None:
            self.hang.wait()
        self.closed.set()
        if self.error is not None:
            raise self.error


def test_a_close_that_hangs_is_left_behind_after_the_wait() -> None:
    release = threading.Event()
    consumer = Closing(hang=release)
    started = time.monotonic()
    assert close_bounded(consumer, "t", wait_s=0.3) is False  # type: ignore[arg-type]
    assert time.monotonic() - started < 5
    assert not consumer.closed.is_set()
    release.set()  # the daemon thread finishes the close whenever librdkafka lets it
    assert consumer.closed.wait(5)


def test_a_close_in_time_is_reported_closed() -> None:
    consumer = Closing()
    assert close_bounded(consumer, "t", wait_s=5) is True  # type: ignore[arg-type]
    assert consumer.closed.is_set()


def test_a_commit_refused_while_closing_is_only_logged() -> None:
    consumer = Closing(error=KafkaException(KafkaError(KafkaError._NO_OFFSET)))
    assert close_bounded(consumer, "t", wait_s=5) is True  # type: ignore[arg-type]
