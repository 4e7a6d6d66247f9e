"""The walsaga.schemas topic: every contract version any release ships, so a reader can decode a record written by a
newer release than its own (schemas/codec.py resolves it to the reader's version).

Why a compacted topic and not a schema registry server: the contracts live in git (schemas/avro, frozen by
schemas/fingerprints.txt, checked by schemas/evolution.py in CI); what a running reader lacks is only the writer
schemas of releases newer than itself. Kafka already keeps that with the replication and access control every record
has, so it adds no process to run, secure and make highly available, and nothing on the produce path. (No
Confluent-compatible registry can be installed on this project's machines, which reach PyPI and Maven Central only.)
A release publishes its contracts before its processes start (`walsaga up`, compose's init job, `walsaga schemas
publish` in a deploy pipeline): the same order as its database migrations.

Record: key `<Type>.v<N>`, value JSON `{"subject", "version", "fingerprint", "schema"}`. Anyone can inspect it with
the standard console consumer (`kafka-console-consumer --topic walsaga.schemas --from-beginning --property
print.key=true`)."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from schemas import codec, evolution, topics
from services.common.kafka_access import KafkaAccess

log = logging.getLogger(__name__)
TOPIC = topics.SCHEMAS
Key = tuple[str, int]


class ConflictingSchema(RuntimeError):
    """A version published with another schema, or a new version its subject's rule forbids: publishing stops."""


def read_all(kafka: KafkaAccess, timeout: float = 10.0) -> dict[Key, dict[str, Any]]:
    """Every published version (the last record of each key), read from the topic's start to its end."""
    consumer = Consumer(kafka.confluent({"group.id": kafka.username or "walsaga-admin", "enable.auto.commit": False,
                                         "enable.partition.eof": True, "auto.offset.reset": "earliest"}))
    found: dict[Key, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        low, high = _watermarks(consumer, deadline)
        if high <= low:
            return found
        consumer.assign([TopicPartition(TOPIC, 0, low)])
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return found
                raise KafkaException(error)
            _take(found, msg.key(), msg.value())
            if (msg.offset() or 0) >= high - 1:
                return found
        raise TimeoutError(f"{TOPIC}: not read to its end ({high}) within {timeout:.0f}s")
    finally:
        consumer.close()


# a topic created a moment ago has no leader yet (librdkafka does not flag these as retriable here)
_NOT_YET = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC, KafkaError._TRANSPORT, KafkaError._TIMED_OUT}


def _watermarks(consumer: Consumer, deadline: float) -> tuple[int, int]:
    """The partition's start and end; a just-created topic has no leader for a moment, and the client's metadata
    may not know it yet (on three brokers: _UNKNOWN_PARTITION), so those errors are waited out."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0),
                                                       timeout=max(0.5, deadline - time.monotonic()))
            return int(low), int(high)
        except KafkaException as exc:
            if exc.args[0].code() not in _NOT_YET or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _take(found: dict[Key, dict[str, Any]], key: bytes | None, value: bytes | None) -> None:
    try:
        doc = json.loads(value or b"")
        found[(str(doc["subject"]), int(doc["version"]))] = dict(doc["schema"])
    except (ValueError, KeyError, TypeError) as exc:
        # not a record this module wrote: skipped, named in the log, never fatal for a reader
        log.error("%s: skipping record %r: %s", TOPIC, key, exc)


def publish(kafka: KafkaAccess, shipped: Mapping[Key, Mapping[str, Any]] | None = None) -> int:
    """Publishes every version this release ships that the topic lacks; returns how many. Refuses (before writing
    anything) a version published with another schema, or one its subject's rule forbids against the published
    versions of an older or newer release: what a registry's compatibility check does on registration."""
    shipped = shipped if shipped is not None else codec.sources()
    published = read_all(kafka, timeout=60)  # at a stack's start the topic may be seconds old
    conflicts = [f"{s}.v{v} is published with another schema (fingerprint {evolution.fingerprint(published[(s, v)])}, "
                 f"this release ships {evolution.fingerprint(schema)})"
                 for (s, v), schema in sorted(shipped.items())
                 if (s, v) in published and evolution.fingerprint(published[(s, v)]) != evolution.fingerprint(schema)]
    subjects = {subject for subject, _ in shipped}
    conflicts += evolution.incompatibilities(
        evolution.Version(s, v, schema) for (s, v), schema in {**published, **shipped}.items() if s in subjects)
    if conflicts:
        raise ConflictingSchema("refusing to publish contracts: " + " | ".join(conflicts))
    new = {key: schema for key, schema in shipped.items() if key not in published}
    if not new:
        return 0
    producer = Producer(kafka.producer({"acks": "all", "enable.idempotence": True}))
    for (subject, version), schema in sorted(new.items()):
        doc = {"subject": subject, "version": version, "fingerprint": evolution.fingerprint(schema),
               "schema": schema}
        producer.produce(TOPIC, key=f"{subject}.v{version}".encode(), value=json.dumps(doc).encode())
    left = producer.flush(30)
    if left:
        raise TimeoutError(f"{TOPIC}: {left} contract versions not acknowledged within 30s")
    return len(new)


class PublishedSchemas:
    """A reader's view of the topic, for codec.use_published: read whole on the first miss, read again on a later
    miss at most every `refresh_s` (a poison record naming a version nobody published costs one read, not one per
    record). Blocks its caller while it reads: it only runs while a newer release rolls out. While Kafka cannot be
    read it tries `attempts` times (10 s each) before the record counts as unknown (dead-lettered, replayable)."""

    def __init__(self, kafka: KafkaAccess, refresh_s: float = 5.0, attempts: int = 3) -> None:
        self._kafka = kafka
        self._refresh_s = refresh_s
        self._attempts = attempts
        self._known: dict[Key, dict[str, Any]] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, subject: str, version: int) -> Mapping[str, Any] | None:
        with self._lock:
            if (subject, version) not in self._known and time.monotonic() - self._read_at >= self._refresh_s:
                self._read_at = time.monotonic()
                self._read()
            return self._known.get((subject, version))

    def _read(self) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                self._known = read_all(self._kafka)
            except (KafkaException, TimeoutError) as exc:
                log.warning("%s: could not read the published contracts (attempt %d of %d): %s", TOPIC, attempt,
                            self._attempts, exc)
            else:
                log.info("%s: read %d published contract versions", TOPIC, len(self._known))
                return
