"""Contract evolution: the compatibility rule holds between every pair of versions, a published version is frozen,
and a reader resolves any writer version (older, or newer and published) to its own."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas import codec, evolution

V1: dict[str, Any] = {"type": "record", "name": "Thing", "namespace": "io.walsaga",
                      "fields": [{"name": "id", "type": "string"}]}


def _with(*fields: dict[str, Any]) -> dict[str, Any]:
    return {**V1, "fields": [*V1["fields"], *fields]}


def _problems(*schemas: dict[str, Any]) -> list[str]:
    return evolution.incompatibilities(evolution.Version("Thing", n, s) for n, s in enumerate(schemas, 1))


def test_the_contracts_of_this_release_pass_the_gate() -> None:
    """What CI holds every change to: each version reads every other; no published version changed."""
    assert evolution.release_problems(codec.sources()) == []
    assert codec.latest_version("OrderCreated") == 2


def test_an_optional_field_with_a_default_is_compatible_both_ways() -> None:
    assert _problems(V1, _with({"name": "channel", "type": ["null", "string"], "default": None})) == []


def test_a_new_field_without_a_default_breaks_backward() -> None:
    problems = _problems(V1, _with({"name": "channel", "type": "string"}))
    assert len(problems) == 1
    assert problems[0].startswith("Thing.v1 -> Thing.v2 (BACKWARD, rule FULL_TRANSITIVE)") and "channel" in problems[0]


def test_removing_a_field_without_a_default_breaks_forward() -> None:
    problems = _problems(_with({"name": "note", "type": "string"}), V1)
    assert [p.split(" (")[1].split(",")[0] for p in problems] == ["FORWARD"]


def test_the_rule_is_transitive_not_only_against_the_previous_version() -> None:
    # v2 drops a defaulted field, v3 adds it back as an int: v3 reads v2 fine, but not v1's string
    v1 = _with({"name": "size", "type": "string", "default": ""})
    v3 = _with({"name": "size", "type": "int", "default": 0})
    problems = _problems(v1, V1, v3)
    assert problems and all("Thing.v1" in p and "Thing.v3" in p for p in problems)


def test_a_changed_missing_or_deleted_version_is_drift(tmp_path: Path) -> None:
    v2 = _with({"name": "channel", "type": ["null", "string"], "default": None})
    published = {"Thing.v1": evolution.fingerprint(V1), "Gone.v1": "0123456789abcdef"}
    problems = evolution.drift([evolution.Version("Thing", 1, _with({"name": "x", "type": "int", "default": 0})),
                                evolution.Version("Thing", 2, v2)], published)
    assert any(p.startswith("Thing.v1 changed after it was published") for p in problems)
    assert f"Thing.v2 is not in fingerprints.txt: add the line 'Thing.v2 {evolution.fingerprint(v2)}'" in problems
    assert any(p.startswith("Gone.v1 was published but its .avsc is gone") for p in problems)


def test_a_fingerprint_ignores_docs_and_formatting_but_not_types() -> None:
    assert evolution.fingerprint(V1) == evolution.fingerprint({**V1, "doc": "words"})
    assert evolution.fingerprint(V1) != evolution.fingerprint(_with({"name": "n", "type": "int"}))
    assert len(evolution.fingerprint(V1)) == 16


ORDER = {"order_id": "o-1", "customer_id": "c-1", "currency": "USD", "payment_method": "pm_card_visa",
         "items": [{"sku": "a", "quantity": 1, "unit_price": Decimal("3.00")}], "total_amount": Decimal("3.00"),
         "created_at": datetime(2024, 1, 1, tzinfo=UTC)}


@pytest.fixture
def previous_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The contracts of the release before OrderCreated v2, as the rolling-upgrade test runs processes on them."""
    for path in codec.AVRO_DIR.glob("*.avsc"):
        if path.name != "OrderCreated.v2.avsc":
            shutil.copy(path, tmp_path / path.name)
    monkeypatch.setenv("WALSAGA_SCHEMA_DIR", str(tmp_path))
    codec.reload()
    yield tmp_path
    monkeypatch.delenv("WALSAGA_SCHEMA_DIR")
    codec.use_published(None)
    codec.reload()


def test_a_new_reader_reads_an_old_record_with_the_new_fields_defaults() -> None:
    payload, version = codec.encode("OrderCreated", ORDER, 1)
    assert codec.decode("OrderCreated", version, payload) == {**ORDER, "channel": None}


def test_an_old_reader_reads_a_newer_published_record_without_the_fields_it_does_not_know(
        previous_release: Path) -> None:
    v2 = json.loads((codec.AVRO_DIR / "OrderCreated.v2.avsc").read_text())
    asked: list[tuple[str, int]] = []
    with_channel = {**ORDER, "channel": "mobile"}
    # written by the new release (its own codec: the v2 schema, encoded directly)
    import io

    from fastavro import parse_schema, schemaless_writer
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(v2), with_channel)
    assert codec.latest_version("OrderCreated") == 1
    with pytest.raises(codec.UnknownSchema, match="nobody published it"):
        codec.decode("OrderCreated", 2, buf.getvalue())
    codec.use_published(lambda subject, version: asked.append((subject, version)) or (
        v2 if (subject, version) == ("OrderCreated", 2) else None))
    assert codec.decode("OrderCreated", 2, buf.getvalue()) == ORDER
    assert codec.decode("OrderCreated", 2, buf.getvalue()) == ORDER
    assert asked == [("OrderCreated", 2)]  # resolved once, then cached
    with pytest.raises(codec.UnknownSchema, match="OrderCreated v3"):
        codec.decode("OrderCreated", 3, buf.getvalue())
