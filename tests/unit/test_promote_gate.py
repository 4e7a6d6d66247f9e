"""The HA profile's promote gate (walsaga/stack/promote_gate.py): when may a standby become the primary without
Debezium losing or skipping an event; what it compares with while Kafka Connect is stopped."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from walsaga.stack.connect_offsets import latest
from walsaga.stack.promote_gate import _connect_offsets, lsn_to_int, offset_lsn, refusal

SLOT = {"plugin": "pgoutput", "database": "orders", "confirmed_flush": 1000}


def test_a_standby_that_has_everything_the_connector_read_may_be_promoted() -> None:
    assert refusal(SLOT, "orders", committed=1500, received=2000) is None
    assert refusal(SLOT, "orders", committed=2000, received=2000) is None


def test_an_offset_past_the_standby_wal_is_refused() -> None:
    reason = refusal(SLOT, "orders", committed=2001, received=2000)
    assert reason is not None and "past this standby's WAL" in reason


def test_a_missing_or_foreign_slot_is_refused() -> None:
    assert "not on this standby" in (refusal(None, "orders", committed=None, received=2000) or "")
    assert "not Debezium's" in (refusal({**SLOT, "plugin": "test_decoding"}, "orders", 1500, 2000) or "")
    assert "not Debezium's" in (refusal({**SLOT, "database": "payments"}, "orders", 1500, 2000) or "")


def test_a_slot_ahead_of_the_connector_offset_is_refused() -> None:
    reason = refusal({**SLOT, "confirmed_flush": 1600}, "orders", committed=1500, received=2000)
    assert reason is not None and "never be published" in reason


def test_a_connector_that_never_committed_starts_from_the_slot() -> None:
    assert refusal(SLOT, "orders", committed=None, received=0) is None


def test_the_offset_is_the_highest_lsn_debezium_resumes_from() -> None:
    answer = {"offsets": [{"partition": {"server": "walsaga-cdc-orders"},
                           "offset": {"lsn": 900, "lsn_proc": 950, "lsn_commit": 940, "txId": 7, "ts_usec": 1}}]}
    assert offset_lsn(answer) == 950
    assert offset_lsn({"offsets": []}) is None
    assert offset_lsn({"offsets": [{"partition": {}, "offset": None}]}) is None


def test_lsn_text_is_read_as_a_byte_position() -> None:
    assert lsn_to_int("0/16B3748") == 0x16B3748
    assert lsn_to_int("1/0") == 1 << 32


def _params(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    # port 9 (discard) on loopback: nothing listens there, the connection is refused at once
    return {"connect_urls": ["http://127.0.0.1:9"], "connector": "walsaga-orders-outbox", "connect_user": "walsaga",
            "connect_password": "x", **extra}


def test_with_connect_stopped_the_offsets_recorded_at_its_stop_stand_in(tmp_path: Path) -> None:
    recorded = tmp_path / "offsets.json"
    recorded.write_text(json.dumps({"offsets": [{"partition": {"server": "s"}, "offset": {"lsn": 1500}}]}))
    answer = _connect_offsets(_params(tmp_path, stopped_offsets_file=str(recorded)))
    assert offset_lsn(answer) == 1500


def test_with_connect_away_and_nothing_recorded_the_gate_cannot_tell(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="did not tell"):
        _connect_offsets(_params(tmp_path, stopped_offsets_file=str(tmp_path / "none.json")))
    with pytest.raises(RuntimeError, match="did not tell"):
        _connect_offsets(_params(tmp_path))


def test_the_offsets_topic_gives_each_connectors_last_offset() -> None:
    def key(name: str) -> bytes:
        return json.dumps([name, {"server": f"walsaga-cdc-{name}"}]).encode()
    records = [(key("a"), b'{"lsn": 1}'), (key("b"), b'{"lsn": 5}'), (key("a"), b'{"lsn": 2}'), (key("b"), None),
               (None, b"{}")]
    assert latest(records) == {"a": {"partition": {"server": "walsaga-cdc-a"}, "offset": {"lsn": 2}}}
