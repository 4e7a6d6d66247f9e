"""How long a Faust app's consumer lets the broker hold a fetch to gather records (Faust hard-codes 1.5 s and asks
for 1 byte, so every record wakes every app that reads it).

An app that batches anyway (the views, the reconciler) gains nothing from being woken per record: each wake-up is
a fetch request the broker serves (~0.3 ms of its CPU) and a hand-off from Faust's consumer thread to the agent.
With `FetchWait(max_wait_ms=50)` the broker answers once that much time has passed or a batch worth of bytes is
there, so at low rates an app fetches ~20 times a second instead of once per record, and under load nothing
changes (the bytes are there at once). The orchestrator is on the saga's path and keeps the default.

Faust takes a transport by URL scheme: `broker=fetch_wait_url(...)` selects the aiokafka transport below, which
reads the app's `FetchWait` (`app.walsaga_fetch_wait`) when it creates its consumer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiokafka
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "walsaga-kafka"


@dataclass(frozen=True)
class FetchWait:
    max_wait_ms: int
    min_bytes: int = 1 << 20  # more than any batch these apps take at once: the wait, not the size, ends a fetch


def fetch_wait_url(kafka_bootstrap: str) -> str:
    return f"{SCHEME}://{kafka_bootstrap}"


def apply(consumer: aiokafka.AIOKafkaConsumer, wait: FetchWait) -> None:
    """Sets the two fetch settings on a consumer that has not started (aiokafka builds its fetcher from them in
    start()). Fails loudly if an aiokafka upgrade renamed them, instead of silently fetching per record again."""
    for attr, value in (("_fetch_max_wait_ms", wait.max_wait_ms), ("_fetch_min_bytes", wait.min_bytes)):
        if not hasattr(consumer, attr):
            raise RuntimeError(f"aiokafka {aiokafka.__version__} has no AIOKafkaConsumer.{attr}; "
                               "stream_processors/fetching.py needs updating")
        setattr(consumer, attr, value)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "walsaga_fetch_wait", None)
        if wait is not None:
            apply(consumer, wait)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
