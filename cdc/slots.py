"""Replication-slot health: is the slot there, active, and how much WAL it still holds back."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class SlotState:
    slot: str
    exists: bool
    active: bool = False
    lag_bytes: int | None = None
    wal_status: str | None = None

    def describe(self) -> str:
        if not self.exists:
            return f"{self.slot}: MISSING"
        lag = "?" if self.lag_bytes is None else f"{self.lag_bytes} B"
        return f"{self.slot}: {'active' if self.active else 'inactive'}, lag {lag}, wal {self.wal_status}"


def slot_state(admin_url: str, slot: str) -> SlotState:
    with psycopg.connect(admin_url, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, wal_status "
            "FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    if row is None:
        return SlotState(slot, exists=False)
    return SlotState(slot, True, bool(row[0]), row[1], row[2])
