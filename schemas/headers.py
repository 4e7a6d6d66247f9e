"""Header names every walsaga record carries (outbox rows become these headers through the EventRouter)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# `id` is the EventRouter's own name for the event id header.
EVENT_ID = "id"
EVENT_TYPE = "eventType"
SCHEMA_VERSION = "schemaVersion"
SAGA_ID = "sagaId"
CORRELATION_ID = "correlationId"
CAUSATION_ID = "causationId"
# the outbox row's created_at (its transaction's time), ISO-8601; set by the EventRouter, absent on commands
CREATED_AT = "createdAt"

HeaderValue = str | bytes | None
# headers as walsaga writes them (values are bytes)
Headers = list[tuple[str, bytes]]
# headers as a Kafka client hands them over: pairs (aiokafka, confluent-kafka), a dict, or None
InHeaders = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None


def as_pairs(headers: InHeaders) -> Headers:
    """Headers in any form a client hands over, as (name, bytes) pairs; a missing value becomes b""."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or [])
    return [(k, v.encode() if isinstance(v, str) else (v or b"")) for k, v in items]


def for_confluent(headers: Headers) -> list[tuple[str, HeaderValue]]:
    """The same headers, typed as confluent-kafka's produce() declares its argument (a list is invariant)."""
    return list(headers)


@dataclass(frozen=True)
class Envelope:
    """What a consumer knows about a record before it decodes the payload."""

    event_id: str
    event_type: str
    schema_version: int
    saga_id: str
    correlation_id: str
    causation_id: str

    def to_headers(self) -> Headers:
        return [
            (EVENT_ID, self.event_id.encode()),
            (EVENT_TYPE, self.event_type.encode()),
            (SCHEMA_VERSION, str(self.schema_version).encode()),
            (SAGA_ID, self.saga_id.encode()),
            (CORRELATION_ID, self.correlation_id.encode()),
            (CAUSATION_ID, self.causation_id.encode()),
        ]

    @classmethod
    def from_headers(cls, headers: InHeaders) -> Envelope:
        """Raises ValueError naming the missing header: the caller dead-letters the record with that reason."""
        items = headers.items() if isinstance(headers, Mapping) else (headers or [])
        h: dict[str, str] = {}
        for k, v in items:
            h[k] = v.decode() if isinstance(v, (bytes, bytearray)) else ("" if v is None else str(v))
        missing = [n for n in (EVENT_ID, EVENT_TYPE, SCHEMA_VERSION, SAGA_ID) if not h.get(n)]
        if missing:
            raise ValueError(f"missing header(s): {', '.join(missing)}")
        if not h[SCHEMA_VERSION].isdigit() or not h[SCHEMA_VERSION].isascii() or int(h[SCHEMA_VERSION]) < 1:
            raise ValueError(f"bad schemaVersion header {h[SCHEMA_VERSION]!r}")
        version = int(h[SCHEMA_VERSION])
        return cls(h[EVENT_ID], h[EVENT_TYPE], version, h[SAGA_ID], h.get(CORRELATION_ID) or h[SAGA_ID],
                   h.get(CAUSATION_ID, ""))
