"""Helpers for tests against the real stack: bounded polling and tailing Kafka topics."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Consumer, Message, TopicPartition
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from services.common.kafka_access import KafkaAccess
from walsaga.stack.config import REPO, StackConfig

T = TypeVar("T")


def cli_token(stack: StackConfig, subject: str, role: str, ttl_s: int | None = None) -> str:
    """A bearer token the way a user gets one: `walsaga token` (against the test stack's home), its one line of
    output."""
    argv = [sys.executable, "-m", "walsaga.cli", "token", "--subject", subject, "--role", role]
    done = subprocess.run(argv + (["--ttl", str(ttl_s)] if ttl_s is not None else []), capture_output=True,
                          text=True, timeout=60, cwd=REPO, env={**os.environ, "WALSAGA_HOME": str(stack.home)},
                          check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 1, f"walsaga token printed {len(lines)} lines"
    return lines[0]


class NotYet(AssertionError):
    """Raised by a probe that should be retried."""


def eventually(probe: Callable[[], T], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Call `probe` until it returns without raising AssertionError; re-raise the last failure at the deadline."""
    for attempt in Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(interval), reraise=True,
                            retry=retry_if_exception_type(AssertionError)):
        with attempt:
            return probe()
    raise AssertionError("unreachable")


class TopicTail:
    """Reads a topic from its current end: only records produced after construction are seen."""

    def __init__(self, kafka: KafkaAccess, topic: str) -> None:
        # earliest: should a fetch at the start offsets ever be out of range, fall back to the beginning, never to the
        # end (which would skip what the test waits for)
        self.consumer = Consumer(kafka.confluent({"group.id": f"test-{uuid.uuid4()}", "enable.auto.commit": False,
                                                  "auto.offset.reset": "earliest", "log_level": 3}))
        md = self.consumer.list_topics(topic, timeout=10)
        parts = []
        for p in md.topics[topic].partitions:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            parts.append(TopicPartition(topic, p, high))
        self.consumer.assign(parts)
        self.start = {tp.partition: tp.offset for tp in parts}
        self.seen: list[Message] = []

    def poll_until(self, match: Callable[[Message], bool], timeout: float = 30.0) -> Message:
        def probe() -> Message:
            for msg in self._drain():
                if match(msg):
                    return msg
            raise NotYet("no matching record yet")

        found = None
        for msg in self.seen:
            if match(msg):
                found = msg
        return found or eventually(probe, timeout)

    def drain_to_end(self, timeout: float = 30.0) -> None:
        """Consume until every partition's position reaches the end it had when this was called."""
        ends = {}
        for tp in self.consumer.assignment():
            _, high = self.consumer.get_watermark_offsets(tp, timeout=10)
            ends[tp.partition] = high

        def probe() -> None:
            list(self._drain())
            # a partition nothing was fetched from has no position yet; it is done if nothing arrived on it
            positions = {tp.partition: max(tp.offset, self.start[tp.partition])
                         for tp in self.consumer.position(self.consumer.assignment())}
            behind = [p for p, end in ends.items() if positions[p] < end]
            assert not behind, f"partitions {behind} not read to their end yet"

        eventually(probe, timeout)

    def _drain(self) -> list[Message]:
        # the whole batch goes to `seen` before anyone looks at it: a caller that stops at its match must not drop
        # the records after it (a generator abandoned there lost them, and a second poll_until never saw them)
        batch = [msg for msg in self.consumer.consume(num_messages=500, timeout=0.2) if msg.error() is None]
        self.seen.extend(batch)
        return batch

    def close(self) -> None:
        self.consumer.close()


def headers_of(msg: Message) -> dict[str, str]:
    return {k: (v.decode() if v is not None else "") for k, v in (msg.headers() or [])}


def restart_saga_workers(stack: StackConfig, env: dict[str, str] | None) -> None:
    """The saga workers, one after the other (the others keep the partitions meanwhile), with `env` added."""
    from walsaga.stack import apps, procs

    for i in range(stack.faust_instances):
        procs.stop(stack, f"processors-{i}")
        apps.start_processors(stack, range(i, i + 1), extra_env=env)
