"""Record headers: the Envelope round trip and the reasons a record is refused before decoding."""
from __future__ import annotations

import pytest

from schemas.headers import CAUSATION_ID, CORRELATION_ID, EVENT_ID, EVENT_TYPE, SAGA_ID, SCHEMA_VERSION, Envelope

ENV = Envelope("evt-1", "StockReserved", 3, "saga-1", "corr-1", "cause-1")


def test_to_headers_uses_the_event_router_names_as_bytes() -> None:
    assert ENV.to_headers() == [("id", b"evt-1"), ("eventType", b"StockReserved"), ("schemaVersion", b"3"),
                                ("sagaId", b"saga-1"), ("correlationId", b"corr-1"), ("causationId", b"cause-1")]


def test_round_trip_through_list_headers() -> None:
    assert Envelope.from_headers(ENV.to_headers()) == ENV


def test_round_trip_through_dict_headers() -> None:
    assert Envelope.from_headers(dict(ENV.to_headers())) == ENV


def test_dict_headers_may_hold_text_values() -> None:
    headers = {EVENT_ID: "evt-1", EVENT_TYPE: "StockReserved", SCHEMA_VERSION: 3, SAGA_ID: "saga-1",
               CORRELATION_ID: "corr-1", CAUSATION_ID: "cause-1"}
    assert Envelope.from_headers(headers) == ENV


def test_unknown_headers_are_ignored() -> None:
    assert Envelope.from_headers([("traceparent", b"00-abc"), *ENV.to_headers()]) == ENV


def test_correlation_defaults_to_the_saga_and_causation_to_empty() -> None:
    headers = [(k, v) for k, v in ENV.to_headers() if k not in (CORRELATION_ID, CAUSATION_ID)]
    env = Envelope.from_headers(headers)
    assert env.correlation_id == "saga-1"
    assert env.causation_id == ""


def test_empty_correlation_header_also_defaults_to_the_saga() -> None:
    headers = [(k, (b"" if k == CORRELATION_ID else v)) for k, v in ENV.to_headers()]
    assert Envelope.from_headers(headers).correlation_id == "saga-1"


def test_null_causation_header_becomes_empty() -> None:
    headers: list[tuple[str, bytes | None]] = [(k, (None if k == CAUSATION_ID else v)) for k, v in ENV.to_headers()]
    assert Envelope.from_headers(headers).causation_id == ""


@pytest.mark.parametrize("name", [EVENT_ID, EVENT_TYPE, SCHEMA_VERSION, SAGA_ID])
def test_missing_required_header_is_named(name: str) -> None:
    headers = [(k, v) for k, v in ENV.to_headers() if k != name]
    with pytest.raises(ValueError, match=f"missing header\\(s\\): {name}$"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("name", [EVENT_ID, SAGA_ID])
def test_empty_or_null_required_header_counts_as_missing(name: str) -> None:
    for blank in (b"", None):
        headers = [(k, (blank if k == name else v)) for k, v in ENV.to_headers()]
        with pytest.raises(ValueError, match=name):
            Envelope.from_headers(headers)


@pytest.mark.parametrize("headers", [None, [], {}])
def test_no_headers_names_every_required_one(headers: list[tuple[str, bytes | None]] | dict | None) -> None:
    with pytest.raises(ValueError, match="missing header\\(s\\): id, eventType, schemaVersion, sagaId"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("version", [b"one", b"1.0", b"v1"])
def test_bad_schema_version_is_a_value_error(version: bytes) -> None:
    headers = [(k, (version if k == SCHEMA_VERSION else v)) for k, v in ENV.to_headers()]
    with pytest.raises(ValueError, match="bad schemaVersion header"):
        Envelope.from_headers(headers)
