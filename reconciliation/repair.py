"""Safe repairs: a command to the participant that owns the data, which applies it idempotently in its own
transaction (refund a captured payment, void an authorization, release reserved stock, send a missing
notification). Nothing is written to a service database from here."""
from __future__ import annotations

import uuid

from confluent_kafka import Producer

from reconciliation.checks import Divergence
from schemas.commands import Command, to_record
from schemas.headers import for_confluent
from schemas.participants import owner_of
from services.common.kafka_access import KafkaAccess


class Repairer:
    def __init__(self, kafka: KafkaAccess, run_id: str) -> None:
        self.run_id = run_id
        self._kafka = kafka
        self._producer: Producer | None = None  # made on the first repair: most runs send none

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self._kafka.producer({"enable.idempotence": True, "linger.ms": 5}))
        return self._producer

    def send(self, d: Divergence) -> None:
        assert d.repair is not None and d.repair_record is not None
        # a fresh id per run: the participant's own state (not its inbox) decides whether there is still work
        command_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"repair:{self.run_id}:{d.subject}:{d.repair.value}:"
                                                        f"{d.repair_record.get('channel', '')}"))
        owner = owner_of(d.repair.value).name  # a repair is a command its owner already handles
        rec = to_record(Command(command_id, owner, d.repair.value, d.repair_record), d.subject,
                        f"reconcile:{self.run_id}", self.run_id)
        self.producer.produce(rec.topic, key=rec.key, value=rec.value, headers=for_confluent(rec.headers))
        self.producer.poll(0)

    def flush(self) -> None:
        if self._producer is not None and self._producer.flush(30) != 0:
            raise RuntimeError("repair commands not acknowledged by Kafka within 30 s")
