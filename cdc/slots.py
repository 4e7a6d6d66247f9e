"""Replication-slot health: is the slot there, active, and how much WAL it still holds back."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg

# Heartbeats (an outbox row every heartbeat interval) keep a healthy slot within a few hundred bytes of the WAL end
# once a heartbeat has passed; this much retained WAL means it is stuck.
BEHIND_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class SlotState:
    slot: str
    exists: bool
    active: bool = False
    lag_bytes: int | None = None
    wal_status: str | None = None
    plugin: str | None = None
    database: str | None = None
    confirmed_lsn: int | None = None  # as a byte position, comparable with pg_current_wal_lsn()

    def problem(self, expected_database: str, connector_has_offsets: bool) -> str | None:
        """Why this slot cannot be trusted, or None. A slot that vanished after the connector had streamed would be
        silently re-created at the current WAL position by Debezium, skipping every event in between."""
        if not self.exists:
            return "LOST: the connector has streamed before, events may be missing" if connector_has_offsets else None
        if self.plugin != "pgoutput" or self.database != expected_database:
            return f"MISMATCHED: plugin {self.plugin}, database {self.database}"
        if self.wal_status == "lost":
            return "LOST: its WAL was removed (max_slot_wal_keep_size exceeded)"
        if self.lag_bytes is not None and self.lag_bytes > BEHIND_BYTES:
            return f"BEHIND: holds {self.lag_bytes} bytes of WAL (connector down or not confirming)"
        return None

    def describe(self) -> str:
        if not self.exists:
            return f"{self.slot}: MISSING"
        lag = "?" if self.lag_bytes is None else f"{self.lag_bytes} B"
        return f"{self.slot}: {'active' if self.active else 'inactive'}, lag {lag}, wal {self.wal_status}"


def slot_state(admin_url: str, slot: str) -> SlotState:
    with psycopg.connect(admin_url, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, wal_status, plugin, "
            "database, pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    if row is None:
        return SlotState(slot, exists=False)
    return SlotState(slot, True, bool(row[0]), row[1], row[2], row[3], row[4], row[5])


def wal_end(admin_url: str) -> int:
    """The current end of the WAL as a byte position (compare with SlotState.confirmed_lsn)."""
    with psycopg.connect(admin_url, connect_timeout=3) as conn:
        row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").fetchone()
        assert row is not None  # a SELECT without FROM returns one row
        return int(row[0])
