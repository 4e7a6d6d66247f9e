"""The Avro codec: every contract round-trips, money keeps its value at scale 2, poison is named as such."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas import codec

SCHEMAS = sorted(codec.registry())


def sample(schema: Any, named: dict[str, Any], field: str = "value") -> Any:
    """A record satisfying `schema` (a parsed fastavro schema). Fails loudly on a type it does not know, so a new
    kind of field forces this builder (and the round-trip test) to be extended."""
    if isinstance(schema, str):
        if schema in named:
            return sample(named[schema], named, field)
        return {"string": f"{field}-ü", "int": 7, "long": 2**40, "boolean": True, "double": 1.5}[schema]
    if isinstance(schema, list):  # a union: its first branch that carries a value
        return sample(next(branch for branch in schema if branch != "null"), named, field)
    logical = schema.get("logicalType")
    if logical == "decimal":
        return Decimal("1234.5")  # one decimal place: the codec must quantize it to the schema's scale
    if logical == "timestamp-millis":
        return datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    kind = schema["type"]
    if kind == "record":
        named[schema["name"]] = schema
        return {f["name"]: sample(f["type"], named, f["name"]) for f in schema["fields"]}
    if kind == "array":
        return [sample(schema["items"], named, field), sample(schema["items"], named, field)]
    if kind == "enum":
        return schema["symbols"][0]
    return sample(kind, named, field)


def decimals(value: Any) -> Iterator[Decimal]:
    if isinstance(value, Decimal):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from decimals(v)
    elif isinstance(value, list):
        for v in value:
            yield from decimals(v)


def test_every_schema_file_is_registered_under_its_own_name() -> None:
    files = sorted(codec.AVRO_DIR.glob("*.avsc"))
    assert len(files) == len(SCHEMAS) > 0
    for (name, version), path in zip(SCHEMAS, files, strict=True):
        assert path.name == f"{name}.v{version}.avsc"
        assert json.loads(path.read_text())["name"] == name


@pytest.mark.parametrize("event_type, version", SCHEMAS, ids=[f"{n}.v{v}" for n, v in SCHEMAS])
def test_round_trip(event_type: str, version: int) -> None:
    record = sample(codec.registry()[(event_type, version)], {})
    payload, written = codec.encode(event_type, record, version)
    assert written == version
    decoded = codec.decode(event_type, version, payload)
    # read as the newest version of the type: an older version's record gets the newer fields' defaults
    newest = codec.registry()[(event_type, codec.latest_version(event_type))]
    assert set(decoded) == {f["name"] for f in newest["fields"]}
    assert {k: v for k, v in decoded.items() if k in record} == record
    assert all(decoded[f["name"]] == f["default"] for f in newest["fields"] if f["name"] not in record)
    for money in decimals(decoded):
        assert money == Decimal("1234.50")
        assert money.as_tuple().exponent == -2


def test_encode_defaults_to_the_latest_version() -> None:
    payload, version = codec.encode("CancelOrder", {"order_id": "o-1", "reason": "TIMEOUT"})
    assert version == codec.latest_version("CancelOrder") == 1
    assert codec.decode("CancelOrder", version, payload) == {"order_id": "o-1", "reason": "TIMEOUT"}


def test_money_with_finer_precision_is_refused_not_rounded() -> None:
    record = {"order_id": "o", "customer_id": "c", "amount": Decimal("10.006"), "currency": "USD",
              "payment_method": "pm_x"}
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        codec.encode("AuthorizePayment", record, 1)


@pytest.mark.parametrize("amount, expected", [
    (Decimal("10"), "10.00"),
    (Decimal("10.5"), "10.50"),
    (Decimal("10.50"), "10.50"),
    (Decimal("0"), "0.00"),
    (Decimal("9999999999999999.99"), "9999999999999999.99"),
])
def test_money_is_quantized_to_two_places(amount: Decimal, expected: str) -> None:
    record = {"order_id": "o", "customer_id": "c", "amount": amount, "currency": "USD", "payment_method": "pm_x"}
    payload, version = codec.encode("AuthorizePayment", record, 1)
    decoded = codec.decode("AuthorizePayment", version, payload)["amount"]
    assert isinstance(decoded, Decimal)
    assert str(decoded) == expected
    assert record["amount"] is amount  # the caller's record is not rewritten


def test_nested_money_in_arrays_is_quantized() -> None:
    record = {"order_id": "o", "customer_id": "c", "currency": "USD", "payment_method": "pm_x",
              "items": [{"sku": "a", "quantity": 1, "unit_price": Decimal("3")},
                        {"sku": "b", "quantity": 2, "unit_price": Decimal("0.1")}],
              "total_amount": Decimal("3.2"), "created_at": datetime(2024, 1, 1, tzinfo=UTC)}
    decoded = codec.decode("OrderCreated", 1, codec.encode("OrderCreated", record, 1)[0])
    assert [str(i["unit_price"]) for i in decoded["items"]] == ["3.00", "0.10"]
    assert str(decoded["total_amount"]) == "3.20"


def test_unknown_type_or_version_is_unknown_schema() -> None:
    with pytest.raises(codec.UnknownSchema, match="NoSuchEvent"):
        codec.latest_version("NoSuchEvent")
    with pytest.raises(codec.UnknownSchema, match="NoSuchEvent"):
        codec.encode("NoSuchEvent", {"order_id": "o"})
    with pytest.raises(codec.UnknownSchema, match="OrderCreated v99"):
        codec.encode("OrderCreated", {}, 99)
    with pytest.raises(codec.UnknownSchema, match="StockReserved v2"):
        codec.decode("StockReserved", 2, codec.encode("StockReserved", {"order_id": "o"})[0])


@pytest.mark.parametrize("payload", [b"\xff\xff", b"\x10ab", b"", None], ids=["garbage", "short", "empty", "none"])
def test_garbage_is_undecodable(payload: bytes | None) -> None:
    with pytest.raises(codec.UndecodablePayload, match="StockReserved v1"):
        codec.decode("StockReserved", 1, payload)


def test_trailing_bytes_are_undecodable() -> None:
    payload, version = codec.encode("StockReserved", {"order_id": "o-1"})
    with pytest.raises(codec.UndecodablePayload, match="1 trailing bytes"):
        codec.decode("StockReserved", version, payload + b"\x00")


def test_poison_errors_are_the_kinds_consumers_catch() -> None:
    # the orchestrator dead-letters on (ValueError, UnknownSchema)
    assert issubclass(codec.UndecodablePayload, ValueError)
    assert issubclass(codec.UnknownSchema, LookupError)


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    codec.reload()
    yield
    codec.reload()


def test_registry_rejects_a_misnamed_schema_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 fresh_registry: None) -> None:
    (tmp_path / "orderCreated.avsc").write_text('{"type": "record", "name": "X", "fields": []}')
    monkeypatch.setenv("WALSAGA_SCHEMA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="orderCreated.avsc"):
        codec.registry()


def test_latest_version_picks_the_highest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          fresh_registry: None) -> None:
    for v in (1, 2, 10):
        (tmp_path / f"Thing.v{v}.avsc").write_text(json.dumps(
            {"type": "record", "name": "Thing", "fields": [{"name": "id", "type": "string"},
                                                           {"name": f"f{v}", "type": "string", "default": "-"}]}))
    monkeypatch.setenv("WALSAGA_SCHEMA_DIR", str(tmp_path))
    assert codec.latest_version("Thing") == 10
    payload, version = codec.encode("Thing", {"id": "x", "f10": "x"})
    assert version == 10
    # a v2 record is read as v10, the version this release writes: f2 dropped, f10 defaulted
    assert codec.decode("Thing", 2, codec.encode("Thing", {"id": "y", "f2": "y"}, 2)[0]) == {"id": "y", "f10": "-"}
