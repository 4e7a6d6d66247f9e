"""PostgreSQL failover on the HA profile's stack (Patroni pairs behind HAProxy): the primary of a database killed
(its Patroni and its PostgreSQL, kill -9: a lost node) with orders in flight, the standby promoted, the invariants
I1-I4 (tests/faults/harness.py) holding; and the promote gate refusing a promotion it cannot prove safe."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from cdc import connectors as cdc_connectors
from tests.faults.case import run_case
from tests.faults.harness import Batch
from tests.support import eventually
from walsaga.stack import kafka, nodes, patroni, procs
from walsaga.stack.config import Secrets, StackConfig, db_url

pytestmark = pytest.mark.stack


def test_kill_9_the_orders_database_primary(ctx: Any) -> None:
    """Debezium must go on from the promoted standby: the orders' events after the failover reach the saga."""
    _database_failover(ctx, "HA 8. kill -9 the orders database's primary (Patroni and PostgreSQL)", "orders")


def test_kill_9_the_saga_store_primary(ctx: Any) -> None:
    _database_failover(ctx, "HA 9. kill -9 the saga store's primary (Patroni and PostgreSQL)", "saga")


def _database_failover(ctx: Any, name: str, db: str) -> None:
    stack: StackConfig = ctx[0]
    patroni.wait_failover_ready(stack, (db,))  # else Patroni would not promote the standby: no failover to test
    timeline_before = _timeline(stack, db)

    def fault(info: dict[str, Any]) -> None:
        info["killed"] = patroni.primary_of(stack, db)
        assert info["killed"] is not None, f"{db} has no primary before the fault"
        for member in patroni.MEMBERS:  # the verdict checked below must be this failover's
            patroni.verdict_file(stack, db, member).unlink(missing_ok=True)
        killed_at = time.monotonic()
        patroni.kill_member(stack, db, info["killed"])  # stays down until every saga has ended
        try:
            info["writable_after_s"] = eventually(lambda: _takes_writes(stack, db, killed_at), timeout=90,
                                                  interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_pair_state(stack, db, info['killed'])}") from exc

    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        promoted = patroni.primary_of(stack, db)
        assert promoted not in (None, info["killed"]), f"no new primary of {db}: {promoted}"
        timeline = _timeline(stack, db)
        assert timeline > timeline_before, (timeline, timeline_before)
        slot = patroni.slot_of(db)
        if slot:  # the connector streams from the promoted standby's copy of the slot
            status = kafka.connect_client(stack).status(cdc_connectors.identity(db)[0])
            assert status is not None and cdc_connectors.state_of(status) == "RUNNING", status
            verdict = patroni.verdict_file(stack, db, promoted).read_text()
            assert "allowed promotion" in verdict, verdict
        gate = "; the promote gate allowed it and Debezium went on from the standby's copy of its slot" if slot else ""
        return (f"{db}-{info['killed']} (primary) killed with {info['in_flight']} orders in flight; {db}-{promoted} "
                f"promoted (timeline {timeline_before} -> {timeline}), writes taken again after "
                f"{info['writable_after_s']:.1f} s ({batch.unavailable_answers} answers the clients retried){gate}")

    try:
        run_case(name, *ctx, fault=fault, evidence=evidence)
    finally:
        _rejoin(stack, db)


def test_the_promote_gate_refuses_what_it_cannot_check_and_promotes_once_it_can(stack: StackConfig) -> None:
    """With Kafka Connect unreachable nobody can say where Debezium stands: the standby must not be promoted (it
    could make Debezium skip events), status must say why, and the promotion must follow once Connect is back."""
    db = "payments"
    killed = patroni.primary_of(stack, db)
    assert killed is not None
    standby = next(m for m in patroni.MEMBERS if m != killed)
    for name in stack.connect_names():
        procs.stop(stack, name, timeout=30)
    try:
        patroni.kill_member(stack, db, killed)

        def refused() -> str:
            assert patroni.verdict_file(stack, db, standby).exists()
            verdict = patroni.verdict_file(stack, db, standby).read_text()
            assert "REFUSED" in verdict and "Kafka Connect" in verdict, verdict
            return verdict
        eventually(refused, timeout=60, interval=1.0)
        time.sleep(5)  # Patroni keeps asking; the gate keeps refusing
        assert patroni.primary_of(stack, db) is None
        shown = next(n for n in nodes.status(stack) if n.name == f"postgres[{patroni.member_name(db, standby)}]")
        assert "REFUSED" in shown.detail and shown.role == "standby", shown
    finally:
        for worker in range(stack.connect_workers):
            kafka.start_connect(stack, worker)
    eventually(lambda: _is_primary(stack, db, standby), timeout=120, interval=1.0)
    assert "allowed promotion" in patroni.verdict_file(stack, db, standby).read_text()
    _rejoin(stack, db)


def _is_primary(stack: StackConfig, db: str, member: int) -> None:
    assert patroni.primary_of(stack, db) == member


def _takes_writes(stack: StackConfig, db: str, since: float) -> float:
    """Seconds from `since` until the database's usual port (HAProxy) reaches a primary again."""
    try:
        with psycopg.connect(db_url(stack, db, "admin", driver="postgresql"), connect_timeout=1) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error as exc:
        raise AssertionError(f"{db}: {exc}") from exc
    assert row is not None and row[0] is False, f"{db}: reached a standby"
    return time.monotonic() - since


def _pair_state(stack: StackConfig, db: str, killed: int) -> str:
    """What Patroni and the promote gate said, for a failover that did not happen."""
    lines = []
    for member in patroni.MEMBERS:
        try:
            lines.append(f"{db}-{member}: {patroni.member_state(stack, db, member)}")
        except (OSError, ValueError) as exc:
            lines.append(f"{db}-{member}: no answer ({exc})")
        verdict = patroni.verdict_file(stack, db, member)
        lines.append(f"{db}-{member} promote gate: {verdict.read_text().strip() if verdict.exists() else 'none'}")
    survivor = next(m for m in patroni.MEMBERS if m != killed)
    log = stack.logs / f"{patroni.process_name(db, survivor)}.log"
    if log.exists():
        lines += log.read_text(errors="replace").splitlines()[-30:]
    return "\n".join(lines)


def _timeline(stack: StackConfig, db: str) -> int:
    primary = patroni.primary_of(stack, db)
    assert primary is not None
    return int(patroni.member_state(stack, db, primary)["timeline"])


def _rejoin(stack: StackConfig, db: str) -> None:
    """Starts the members that are down (a former primary rejoins as a standby) and waits until the pair is whole
    again: a streaming synchronous standby holding its copy of the Debezium slot, so the next failover is safe."""
    for member in patroni.MEMBERS:
        if procs.read_pid(stack, patroni.process_name(db, member)) is None:
            patroni.start_member(stack, db, member, Secrets(stack.secrets_file))

    def whole() -> None:
        members = [n for n in nodes.status(stack) if n.name.startswith(f"postgres[{db}-")]
        assert sorted(n.role for n in members) == ["primary", "standby"] and all(n.ok for n in members), members
        standby = next(m for m in patroni.MEMBERS if m != patroni.primary_of(stack, db))
        assert patroni.in_sync_standby(stack, db, standby), f"{db}-{standby}: not yet a synchronous standby " \
            "holding its copy of the Debezium slot"

    eventually(whole, timeout=180, interval=2.0)
