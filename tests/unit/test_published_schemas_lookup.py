"""A reader's lookup of the published contracts (services/common/published_schemas.PublishedSchemas), with the
topic read replaced: it reads again on a miss only after its refresh interval, and while Kafka cannot be read it
tries a few times before a version counts as unknown. Reading the real topic: tests/integration/
test_published_schemas.py."""
from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from services.common import published_schemas
from services.common.kafka_access import KafkaAccess
from services.common.published_schemas import PublishedSchemas

V2 = {"type": "record", "name": "Thing", "fields": []}


def _reads(monkeypatch: pytest.MonkeyPatch, outcomes: list[Any]) -> list[int]:
    calls: list[int] = []

    def fake_read_all(kafka: KafkaAccess, timeout: float = 10.0) -> dict[tuple[str, int], Any]:
        calls.append(1)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    monkeypatch.setattr(published_schemas, "read_all", fake_read_all)
    return calls


def test_a_broker_that_answers_on_the_third_try_still_yields_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    down = KafkaException(KafkaError(KafkaError._TRANSPORT))
    calls = _reads(monkeypatch, [down, TimeoutError("slow"), {("Thing", 2): V2}])
    lookup = PublishedSchemas(KafkaAccess("127.0.0.1:1"), attempts=3)
    assert lookup("Thing", 2) == V2
    assert len(calls) == 3


def test_a_version_nobody_published_is_read_again_only_after_the_refresh_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _reads(monkeypatch, [{}, {("Thing", 2): V2}])
    lookup = PublishedSchemas(KafkaAccess("127.0.0.1:1"), refresh_s=3600)
    assert lookup("Thing", 2) is None
    assert lookup("Thing", 2) is None  # within the interval: no second read
    assert len(calls) == 1
    lookup._read_at -= 3600
    assert lookup("Thing", 2) == V2
    assert len(calls) == 2


def test_kafka_down_for_every_attempt_means_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    down = KafkaException(KafkaError(KafkaError._TRANSPORT))
    calls = _reads(monkeypatch, [down, down])
    assert PublishedSchemas(KafkaAccess("127.0.0.1:1"), attempts=2)("Thing", 2) is None
    assert len(calls) == 2
