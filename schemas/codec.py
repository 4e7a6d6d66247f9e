"""Avro (fastavro, schemaless binary) for every event and command. The schema is named by the record's headers
(eventType + schemaVersion), so the payload itself carries no schema id."""
from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

AVRO_DIR = Path(__file__).with_name("avro")
_FILE = re.compile(r"^(?P<name>[A-Za-z]+)\.v(?P<version>\d+)\.avsc$")
MONEY_EXP = Decimal("0.01")


class UnknownSchema(LookupError):
    """No contract for this (type, version): the record is poison for this consumer."""


class UndecodablePayload(ValueError):
    """The bytes do not decode against the named schema."""


@lru_cache(maxsize=1)
def registry() -> dict[tuple[str, int], Any]:
    found: dict[tuple[str, int], Any] = {}
    for path in sorted(AVRO_DIR.glob("*.avsc")):
        m = _FILE.match(path.name)
        if not m:
            raise ValueError(f"schema file {path.name} is not named <Type>.v<N>.avsc")
        found[(m["name"], int(m["version"]))] = parse_schema(json.loads(path.read_text()))
    return found


def latest_version(event_type: str) -> int:
    versions = [v for (name, v) in registry() if name == event_type]
    if not versions:
        raise UnknownSchema(f"no schema for {event_type}")
    return max(versions)


def decimal_fields(event_type: str, version: int | None = None) -> frozenset[str]:
    """The record's top-level fields that are Avro decimals (money)."""
    schema = _schema(event_type, version if version is not None else latest_version(event_type))
    return frozenset(f["name"] for f in schema["fields"]
                     if isinstance(f["type"], dict) and f["type"].get("logicalType") == "decimal")


def encode(event_type: str, record: dict[str, Any], version: int | None = None) -> tuple[bytes, int]:
    version = version if version is not None else latest_version(event_type)
    schema = _schema(event_type, version)
    buf = io.BytesIO()
    schemaless_writer(buf, schema, _quantize_money(record))
    return buf.getvalue(), version


def decode(event_type: str, version: int, payload: bytes | None) -> dict[str, Any]:
    schema = _schema(event_type, version)
    if payload is None:
        raise UndecodablePayload(f"{event_type} v{version}: empty payload")
    buf = io.BytesIO(payload)
    try:
        record = schemaless_reader(buf, schema, None)
    except Exception as exc:  # fastavro raises many types for corrupt input; all mean "poison"
        raise UndecodablePayload(f"{event_type} v{version}: {type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(payload):
        raise UndecodablePayload(f"{event_type} v{version}: {len(payload) - buf.tell()} trailing bytes")
    return record  # type: ignore[return-value]


def _schema(event_type: str, version: int) -> Any:
    try:
        return registry()[(event_type, version)]
    except KeyError:
        raise UnknownSchema(f"no schema for {event_type} v{version}") from None


def _quantize_money(value: Any) -> Any:
    # Avro decimals have a fixed scale (2). Money with finer precision is refused, never silently rounded.
    if isinstance(value, Decimal):
        exact = value.quantize(MONEY_EXP)
        if exact != value:
            raise ValueError(f"money {value} has more than 2 decimal places")
        return exact
    if isinstance(value, dict):
        return {k: _quantize_money(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quantize_money(v) for v in value]
    return value
