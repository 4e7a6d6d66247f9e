"""Retention as declared: the inbox outlives every topic a consumer reads, statements stay batch-bounded and
lock-free between pruners, and a pruner runs on its interval only."""
from __future__ import annotations

from datetime import timedelta

import pytest

from schemas import topics
from services.common import retention
from stream_processors.saga import store as saga_store


def test_inbox_claims_outlive_every_topic_they_dedup() -> None:
    longest = max(topics.longest_life_ms(t) for t in topics.ALL)
    assert longest >= topics.RETENTION_MS + topics.SEGMENT_MS  # a whole segment outlives its first record's retention
    assert retention.INBOX_KEEP > timedelta(milliseconds=longest)
    assert {r.keep for r in (*retention.SERVICE_RULES, *saga_store.RETENTION) if r.table == "inbox"} \
        == {retention.INBOX_KEEP}


def test_idempotency_keys_are_kept_at_least_a_day() -> None:
    assert retention.IDEMPOTENCY_KEEP >= timedelta(hours=24)


def test_statement_is_a_bounded_skip_locked_delete_with_its_condition() -> None:
    rule = retention.Rule("saga_history", "at", timedelta(days=1), only="status = 'X'")
    sql = rule.statement()
    assert sql.startswith("DELETE FROM saga_history WHERE ctid = ANY(ARRAY(SELECT ctid FROM saga_history")
    assert "at < now() - make_interval(secs => :keep_s) AND (status = 'X')" in sql
    assert "LIMIT :batch FOR UPDATE SKIP LOCKED" in sql


def test_saga_history_is_only_pruned_for_ended_sagas() -> None:
    (history,) = [r for r in saga_store.RETENTION if r.table == "saga_history"]
    assert "'COMPLETED', 'FAILED'" in history.only and "RUNNING" not in history.only and "PARKED" not in history.only


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pruner_runs_at_once_then_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[float] = []
    clock = _Clock()
    monkeypatch.setattr(retention, "prune", lambda engine, rules: runs.append(clock.now) or {"inbox": 0})
    pruner = retention.Pruner(engine=None, rules=(), interval_s=60, name="t", clock=clock)  # type: ignore[arg-type]
    for t in (100.0, 130.0, 159.9, 160.0, 200.0, 221.0):
        clock.now = t
        pruner.run_if_due()
    assert runs == [100.0, 160.0, 221.0]


def test_pruner_with_interval_zero_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "prune", lambda engine, rules: pytest.fail("pruned"))
    assert retention.Pruner(engine=None, rules=(), interval_s=0, name="t").run_if_due() is None  # type: ignore[arg-type]


def test_pruner_skips_a_run_while_the_database_is_away(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    def away(engine: object, rules: object) -> dict[str, int]:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(retention, "prune", away)
    assert retention.Pruner(engine=None, rules=(), interval_s=1, name="t").run() is None  # type: ignore[arg-type]
