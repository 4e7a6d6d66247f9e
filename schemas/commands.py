"""A command on its way to a participant, and the Kafka record (topic, key, Avro value, headers) it travels as.
Built by the saga orchestrator, the notification fan-out, reconciliation repairs and operators' commands alike."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas import codec
from schemas.headers import Envelope, Headers
from schemas.topics import COMMAND_TOPIC


@dataclass(frozen=True)
class Command:
    command_id: str
    participant: str
    command_type: str
    record: dict[str, Any]


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


def to_record(cmd: Command, saga_id: str, correlation_id: str, causation_id: str) -> OutgoingRecord:
    value, version = codec.encode(cmd.command_type, cmd.record)
    env = Envelope(cmd.command_id, cmd.command_type, version, saga_id, correlation_id, causation_id)
    return OutgoingRecord(COMMAND_TOPIC[cmd.participant], saga_id.encode(), value, env.to_headers())
