"""Bounded tables: rows past their retention are deleted, a batch per transaction, by every process that owns the
database (each service's command consumer, the orchestrator for the saga store). Several instances prune side by
side: a batch locks its rows with SKIP LOCKED, so two pruners never wait on each other or on a consumer.

Why each retention keeps every guarantee:
- outbox (1 h): Debezium reads an outbox row's INSERT from the WAL, not from the table, and the publication streams
  inserts only, so deleting a row later neither loses its event nor emits one. The hour is for people and the
  benchmark reading recent rows.
- inbox (topic retention + a segment's age + 1 day): a consumer can only be handed a record that is still in its
  topic (a redelivery after a crash, a rewind to the earliest offset), so its claim only has to outlive the longest a
  record stays there: Kafka deletes a segment once its newest record is past retention, so up to retention.ms +
  segment.ms (schemas/topics.py sets segment.ms on every topic for this). The one
  other source of an old message id, an operator re-driving a saga parked for longer than that, re-sends a command
  the participant never answered; had it applied it, its reply would have reached the saga. Even then the handlers'
  per-order state machines answer a repeated command with the same reply and do not repeat its effect.
- idempotency keys (24 h): a client retrying a REST write with the same key gets the first answer for 24 h (the
  window the idempotency-key draft asks for at least); after that the key is free again. Documented in the README.
- saga history (30 days after the saga ended): kept while a saga runs, whatever its age.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from schemas import topics

log = logging.getLogger(__name__)

OUTBOX_KEEP = timedelta(hours=1)
INBOX_KEEP = timedelta(milliseconds=topics.RETENTION_MS + topics.SEGMENT_MS) + timedelta(days=1)
IDEMPOTENCY_KEEP = timedelta(hours=24)
HISTORY_KEEP = timedelta(days=30)

BATCH = 5000          # rows per delete (one transaction)
MAX_BATCHES = 20      # per table and run: a run never holds its process for long; what is left waits for the next


@dataclass(frozen=True)
class Rule:
    """Rows of `table` whose `stamp` is older than `keep` go, if `only` (an SQL condition on the row) holds."""

    table: str
    stamp: str
    keep: timedelta
    only: str = ""

    def statement(self) -> str:
        extra = f" AND ({self.only})" if self.only else ""
        return (f"DELETE FROM {self.table} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {self.table} WHERE {self.stamp} < now() - make_interval(secs => :keep_s){extra} "
                f"LIMIT :batch FOR UPDATE SKIP LOCKED))")


SERVICE_RULES: tuple[Rule, ...] = (
    Rule("outbox", "created_at", OUTBOX_KEEP),
    Rule("inbox", "processed_at", INBOX_KEEP),
    Rule("idempotency_key", "created_at", IDEMPOTENCY_KEEP),
)


def scaled(rules: Sequence[Rule], factor: float) -> tuple[Rule, ...]:
    """The same rules with every retention multiplied by `factor` (WALSAGA_RETENTION_SCALE): only the soak benchmark
    (bench/soak.py) compresses time this way, to see tables level off within minutes instead of days."""
    if not 0 < factor <= 1:
        raise ValueError(f"WALSAGA_RETENTION_SCALE must be in (0, 1], not {factor}")
    return tuple(replace(rule, keep=rule.keep * factor) for rule in rules)


def scale_from_env() -> float:
    return float(os.environ.get("WALSAGA_RETENTION_SCALE", "1"))


def prune(engine: Engine, rules: Sequence[Rule], batch: int = BATCH, max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """Deletes what is past retention; returns the rows deleted per table."""
    deleted: dict[str, int] = {}
    for rule in rules:
        stmt = text(rule.statement())
        params = {"keep_s": rule.keep.total_seconds(), "batch": batch}
        total = 0
        for _ in range(max_batches):
            with engine.begin() as conn:
                n = conn.execute(stmt, params).rowcount
            total += n
            if n < batch:
                break
        deleted[rule.table] = total
    return deleted


@dataclass
class Pruner:
    """Runs `prune` at most every `interval_s` (0 turns it off) for a loop that calls `run_if_due`, or on a timer
    that calls `run`."""

    engine: Engine
    rules: Sequence[Rule]
    interval_s: float
    name: str
    clock: Callable[[], float] = time.monotonic
    _last: float | None = None

    def run_if_due(self) -> dict[str, int] | None:
        now = self.clock()
        if self.interval_s <= 0 or (self._last is not None and now - self._last < self.interval_s):
            return None
        self._last = now
        return self.run()

    def run(self) -> dict[str, int] | None:
        """One pruning run now; None when the database is away (the next run catches up)."""
        try:
            deleted = prune(self.engine, self.rules)
        except (OperationalError, DBAPIError) as exc:
            log.warning("%s: pruning skipped (%s)", self.name, type(exc).__name__)
            return None
        if any(deleted.values()):
            log.info("%s: pruned rows past retention: %s", self.name,
                     ", ".join(f"{table} {n}" for table, n in deleted.items() if n))
        return deleted
