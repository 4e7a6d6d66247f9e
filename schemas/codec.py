"""Avro (fastavro, schemaless binary) for every event and command. The writer's schema is named by the record's
headers (eventType + schemaVersion), so the payload itself carries no schema id.

A reader decodes every record into the newest version of its type that this release ships (its reader schema),
resolving the writer's version to it (Avro schema resolution): an older record gets the new fields' defaults, a newer
record loses the fields this release does not know. A writer version this release does not ship is looked up among
the published ones (`use_published`: the walsaga.schemas topic, services/common/published_schemas.py), so a
consumer keeps reading while producers are upgraded before it. schemas/evolution.py keeps that resolution possible.

The contracts are read from schemas/avro, or from WALSAGA_SCHEMA_DIR when set (an older release's contracts: the
rolling-upgrade test runs processes on them)."""
from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Mapping
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


# (type, version) -> the writer schema as published (JSON), or None when nobody published it
PublishedLookup = Callable[[str, int], Mapping[str, Any] | None]
_published: PublishedLookup | None = None


def use_published(lookup: PublishedLookup | None) -> None:
    """Where to find a writer schema this release does not ship; set once by a consuming process's wiring point."""
    global _published
    _published = lookup
    _resolved.cache_clear()


def reload() -> None:
    """Read the contracts again (after WALSAGA_SCHEMA_DIR changed)."""
    for cached in (sources, registry, _resolved):
        cached.cache_clear()


def schema_dir() -> Path:
    return Path(os.environ.get("WALSAGA_SCHEMA_DIR") or AVRO_DIR)


@lru_cache(maxsize=1)
def sources() -> dict[tuple[str, int], dict[str, Any]]:
    """Every contract version this release ships, as written in its .avsc file."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(schema_dir().glob("*.avsc")):
        m = _FILE.match(path.name)
        if not m:
            raise ValueError(f"schema file {path.name} is not named <Type>.v<N>.avsc")
        found[(m["name"], int(m["version"]))] = json.loads(path.read_text())
    return found


@lru_cache(maxsize=1)
def registry() -> dict[tuple[str, int], Any]:
    return {key: parse_schema(source) for key, source in sources().items()}


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
    """The record as the newest version of `event_type` this release ships (or as written, for a type it does not
    ship at all)."""
    writer, reader = _resolved(event_type, version)
    if payload is None:
        raise UndecodablePayload(f"{event_type} v{version}: empty payload")
    buf = io.BytesIO(payload)
    try:
        record = schemaless_reader(buf, writer, reader)
    except Exception as exc:  # fastavro raises many types for corrupt input; all mean "poison"
        raise UndecodablePayload(f"{event_type} v{version}: {type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(payload):
        raise UndecodablePayload(f"{event_type} v{version}: {len(payload) - buf.tell()} trailing bytes")
    return record  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _resolved(event_type: str, version: int) -> tuple[Any, Any]:
    """(writer schema, reader schema or None when it is the writer's). Misses are not cached: the version may be
    published a moment later."""
    writer = registry().get((event_type, version))
    if writer is None:
        published = _published(event_type, version) if _published else None
        if published is None:
            raise UnknownSchema(f"no schema for {event_type} v{version}: this release does not ship it and nobody "
                                "published it")
        writer = parse_schema(dict(published))
    newest = max((v for (name, v) in registry() if name == event_type), default=None)
    if newest is None or newest == version:
        return writer, None
    return writer, registry()[(event_type, newest)]


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
