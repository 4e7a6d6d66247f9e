"""The HA profile's promote gate (walsaga/stack/promote_gate.py): when may a standby become the primary without
Debezium losing or skipping an event."""
from __future__ import annotations

from walsaga.stack.promote_gate import lsn_to_int, offset_lsn, refusal

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
