"""Drives the saga definitions from the change streams: each message's inbox row, saga state and history commit
together in the saga database (consecutive messages share one transaction, see handle_batch), then the decided
commands are produced to Kafka.

A crash after the commit and before the produce is healed by redelivery: the inbox recognises the message and the
saga's pending commands are re-sent (their ids are deterministic, so participants drop any second copy). Deadlines
cover the rest: a sweep re-sends overdue commands, compensates or parks (see engine.on_deadline)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Engine

from schemas import codec
from schemas.headers import Envelope, Headers
from stream_processors.saga import engine as saga_engine
from stream_processors.saga import store
from stream_processors.saga.cache import Known, SagaCache
from stream_processors.saga.catalog import DEFINITIONS, STARTERS, by_version, newest
from stream_processors.saga.model import Command, Decision, RetryPolicy, SagaDefinition, SagaState, SagaStatus

log = logging.getLogger(__name__)
CONSUMER = "saga-orchestrator"


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class Dispatch:
    """Commands to produce, with the ids their envelopes carry."""

    saga_id: str
    correlation_id: str
    causation_id: str
    commands: tuple[Command, ...]


@dataclass
class OrchestratorStats:
    applied: int = 0
    ignored: int = 0
    duplicates: int = 0
    deadlines: int = 0
    stale_cache: int = 0  # batches run again because a cached saga had moved on (saga/cache.py)


@dataclass
class Orchestrator:
    engine: Engine
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    stats: OrchestratorStats = field(default_factory=OrchestratorStats)
    catalog: tuple[SagaDefinition, ...] = DEFINITIONS  # every version this worker runs (saga/catalog.py)
    start_versions: Mapping[str, int] = field(default_factory=dict)  # a saga's new instances start on this version
    definitions: dict[tuple[str, int], SagaDefinition] = field(init=False)
    starting: dict[str, SagaDefinition] = field(init=False)  # what new instances (and follow-ups) start on
    known_types: frozenset[str] = field(init=False)
    cache: SagaCache = field(default_factory=SagaCache)

    def __post_init__(self) -> None:
        self.definitions = {key: replace(d, policy=self.policy) for key, d in by_version(self.catalog).items()}
        self.starting = {name: self.definitions[(name, d.version)] for name, d in newest(self.catalog).items()}
        for name, version in self.start_versions.items():  # pinned: new instances start there, not on the newest
            if (name, version) not in self.definitions:
                raise ValueError(f"new {name} sagas cannot start on v{version}: not in the catalog")
            self.starting[name] = self.definitions[(name, version)]
        self.known_types = frozenset(STARTERS) | frozenset(self.reply_types())

    @cached_property
    def autocommit(self) -> Engine:
        """The same pool, a statement on its own: no BEGIN and COMMIT round trips."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def reply_types(self) -> set[str]:
        """Every event type the orchestrator acts on besides the starters: replies, interrupts, follow-up requests."""
        return set().union(*(d.reply_types() | set(d.interrupts) | set(d.followups)
                             for d in self.definitions.values()))

    def definition_of(self, state: SagaState) -> SagaDefinition | None:
        """The version the instance runs; for an instance that is over (it runs no step, but may still take a
        follow-up request), its definition's newest version when its own is gone. None: a version this worker does
        not have (a worker not yet upgraded, during a rolling deploy)."""
        found = self.definitions.get((state.definition, state.definition_version))
        if found is None and state.status.terminal:
            return self.starting.get(state.definition)
        return found

    def missing_versions(self) -> list[str]:
        """The definition versions that instances not over still run and this worker lacks: it must not start
        (a version was removed from the catalog while in use)."""
        with self.engine.connect() as conn:
            in_use = store.versions_in_use(conn)
        return [f"{name} v{version}: {count} {status}" for name, version, status, count in in_use
                if (name, version) not in self.definitions]

    def handle_batch(self, msgs: list[RawMessage]) -> list[Dispatch | str | None]:
        """Per record: the commands to produce (possibly a re-send), None when there is nothing to do, or the reason
        the record is poison (the caller dead-letters it). Consecutive records share one saga-database transaction
        (one commit - one WAL flush - for the batch); each record's inbox row, saga state and history still commit
        together, and in record order: a later record of the same saga sees what an earlier one did, a second copy
        finds the first's inbox row. Database errors propagate and roll the whole batch back; the caller retries it,
        so nothing is half-applied. The sagas of the batch are read (and locked) in one round trip, those this worker
        wrote last excepted (saga/cache.py); a saga's second record in the batch starts from what the first wrote."""
        decoded = [self._decode(m) for m in msgs]
        if all(isinstance(d, str) for d in decoded):
            return list(decoded)  # type: ignore[arg-type]
        for trust_cache in (True, True, False):  # without the cache every saga is read locked: it cannot be stale
            counted = (self.stats.applied, self.stats.ignored, self.stats.duplicates)
            try:
                return self._handle_decoded(decoded, trust_cache)
            except store.StaleSaga as stale:  # nothing of the batch was written, so nothing of it is counted
                self.cache.drop(stale.saga_id)
                self.stats.applied, self.stats.ignored, self.stats.duplicates = counted
                self.stats.stale_cache += 1
        raise AssertionError("a batch read without the cache cannot be stale")

    def _handle_decoded(self, decoded: list[tuple[Envelope, dict[str, Any]] | str],
                        trust_cache: bool) -> list[Dispatch | str | None]:
        """A saga this worker wrote last is taken from its cache and written only if unchanged since
        (store.write_message's guard); the others are read locked. A batch of one record on a cached saga is one
        statement in autocommit: no BEGIN, read or COMMIT round trips."""
        ids = {d[0].saga_id for d in decoded if not isinstance(d, str)}
        cached = {i: k for i in ids if trust_cache and (k := self.cache.get(i)) is not None}
        alone = len(decoded) == 1 and bool(cached)
        written: dict[str, Known | None] = {}  # what this transaction wrote: a saga's next record starts there
        with self.autocommit.connect() if alone else self.engine.begin() as conn:
            # what a saga's first record in the batch finds (read together when several are not cached)
            first_reads = self._read_sagas(conn, ids - cached.keys())
            out: list[Dispatch | str | None] = []
            for d in decoded:
                if isinstance(d, str):
                    out.append(d)
                    continue
                env, record = d
                expected: int | None = None
                found: tuple[SagaState | None, tuple[Command, ...]]
                if env.saga_id in written:
                    found = written[env.saga_id] or (None, ())
                elif env.saga_id in cached:
                    state, commands = cached[env.saga_id]
                    found, expected = (state, commands), state.version
                elif env.saga_id in first_reads:
                    found = first_reads.pop(env.saga_id)
                else:
                    found = store.load_with_pending(conn, env.saga_id)
                if found[0] is not None and self.definition_of(found[0]) is None:
                    out.append(_unknown_version(found[0]))  # dead-lettered: replay it once this worker has it
                    continue
                before, pending = found
                outcome, written[env.saga_id] = self._handle_in(conn, env, record, before, pending, expected)
                out.append(outcome)
        self.cache.put_all(written)  # committed
        return out

    @staticmethod
    def _read_sagas(conn: Connection, ids: set[str]) -> dict[str, tuple[SagaState | None, tuple[Command, ...]]]:
        """Several sagas in one round trip (locked; one that does not exist yet as None); one saga: nothing here,
        its record reads it alone."""
        if len(ids) < 2:
            return {}
        loaded = store.load_many_with_pending(conn, ids)
        return {saga_id: loaded.get(saga_id, (None, ())) for saga_id in ids}

    def _decode(self, msg: RawMessage) -> tuple[Envelope, dict[str, Any]] | str:
        try:
            env = Envelope.from_headers(msg.headers)
        except ValueError as exc:
            return f"undecodable: {exc}"
        if env.event_type not in self.known_types:
            return f"unknown event type {env.event_type!r} on a saga topic"
        try:
            return env, codec.decode(env.event_type, env.schema_version, msg.value)
        except (ValueError, codec.UnknownSchema) as exc:
            return f"undecodable: {exc}"

    def _handle_in(self, conn: Connection, env: Envelope, record: dict[str, Any], before: SagaState | None,
                   pending: tuple[Command, ...], expected: int | None = None) -> tuple[Dispatch | None, Known | None]:
        """Given the saga (locked, or cached at version `expected`) with its pending commands, one statement claims
        the message and writes the decision only if the claim is new (store.write_message). Also returns the saga
        as it is after the record (None: it does not exist)."""
        decision = self._decide(env, record, before)
        if decision is None:
            claimed = store.write_message(conn, CONSUMER, env.event_id, env.event_type, before, None,
                                          expected_version=expected)
        else:
            claimed = store.write_message(conn, CONSUMER, env.event_id, env.event_type, before, decision.state,
                                          decision.commands, decision.deadline_in, decision.applied, decision.note,
                                          expected_version=expected)
        known = None if before is None else (before, pending)
        if not claimed:
            self.stats.duplicates += 1
            store.count(conn, CONSUMER, "duplicates")
            return Dispatch(env.saga_id, env.correlation_id, env.event_id, pending), known
        if decision is None:
            return None, known
        # a step forward is routine (the saga's history has it); a failure, a compensation and the end are logged
        self._count_and_log(decision, env.event_type, routine=decision.state.status is SagaStatus.RUNNING)
        if decision.applied:
            known = (decision.state, decision.commands)
        return Dispatch(env.saga_id, env.correlation_id, env.event_id, decision.commands), known

    def sweep_deadlines(self, limit: int = 100) -> list[Dispatch]:
        """One transaction: every overdue saga (that no other worker holds) gets its deadline decision."""
        out: list[Dispatch] = []
        with self.engine.begin() as conn:
            for state in store.overdue(conn, limit):
                defn = self.definition_of(state)
                if defn is None:
                    log.warning("deadline of saga %s left to another worker: %s", state.saga_id,
                                _unknown_version(state))
                    continue
                self.cache.drop(state.saga_id)  # moved by the sweep (a cached copy would only be found stale)
                decision = saga_engine.on_deadline(defn, state)
                if not decision.applied:
                    continue
                self.stats.deadlines += 1
                store.count(conn, CONSUMER, "deadline_retries" if decision.commands else "deadline_parked")
                self._apply(conn, state, decision, "Deadline", f"deadline:{state.version}")
                out.append(Dispatch(state.saga_id, state.saga_id, state.saga_id, decision.commands))
        return out

    def operate(self, saga_id: str, action: str) -> Dispatch:
        """Operator actions on a parked saga: 'redrive' or 'skip'."""
        ops: dict[str, Callable[[SagaDefinition, SagaState], Decision]] = {
            "redrive": saga_engine.redrive, "skip": saga_engine.skip}
        with self.engine.begin() as conn:
            state = store.load(conn, saga_id)
            if state is None:
                raise LookupError(f"no saga {saga_id}")
            defn = self.definition_of(state)
            if defn is None:
                raise LookupError(_unknown_version(state))
            self.cache.drop(saga_id)
            decision = self._chain_if_due(ops[action](defn, state))
            self._apply(conn, state, decision, f"Operator{action.title()}", f"operator:{action}:{state.version}")
        return Dispatch(saga_id, saga_id, saga_id, decision.commands)

    def _apply(self, conn: Connection, before: SagaState | None, decision: Decision, message_type: str,
               message_id: str) -> None:
        if decision.applied:
            store.save(conn, before, decision.state, decision.commands, decision.deadline_in)
        store.record(conn, decision.state.saga_id, message_type, message_id, decision.state.status.value,
                     decision.note)
        self._count_and_log(decision, message_type)

    def _count_and_log(self, decision: Decision, message_type: str, routine: bool = False) -> None:
        """Routine steps at DEBUG: at INFO they were six lines per saga (~460 a second at saturation) and ~5 % of
        the orchestrator's Python time; deadlines, operator actions, failures and every saga's end stay at INFO."""
        if decision.applied:
            self.stats.applied += 1
        else:
            self.stats.ignored += 1
        log.log(logging.DEBUG if routine else logging.INFO, "saga %s: %s -> %s (%s)", decision.state.saga_id,
                message_type, decision.state.status.value, decision.note)

    def _decide(self, env: Envelope, record: dict[str, Any], before: SagaState | None) -> Decision | None:
        if env.event_type in STARTERS:
            if before is not None:
                return None  # the saga exists: a second OrderCreated with a new event id changes nothing
            starter = STARTERS[env.event_type]
            return saga_engine.start(self.starting[starter.saga], env.saga_id, starter.data(record))
        if before is None:
            # e.g. a participant driven by another coordinator (the DTM baseline) announcing its step
            log.warning("reply %s for unknown saga %s ignored", env.event_type, env.saga_id)
            return None
        defn = self.definition_of(before)
        assert defn is not None  # handle_batch dead-letters the records of a version this worker lacks
        decision = saga_engine.on_reply(defn, before, env.event_type, env.causation_id)
        if not decision.applied and env.event_type in defn.interrupts:
            decision = saga_engine.interrupt(defn, before, defn.interrupts[env.event_type])
        elif not decision.applied and env.event_type in defn.followups:
            decision = saga_engine.queue_followup(before, defn.followups[env.event_type])
        return self._chain_if_due(decision)

    def _chain_if_due(self, decision: Decision) -> Decision:
        """A saga that completed with a follow-up queued starts it at once, in the same transaction."""
        state = decision.state
        followup = state.data.get("followup")
        if state.status is not SagaStatus.COMPLETED or not followup:
            return decision
        return saga_engine.chain(self.starting[followup], state, decision.note)

    def count_dead_letter(self) -> None:
        with self.engine.begin() as conn:
            store.count(conn, CONSUMER, "dead_letters")


def _unknown_version(state: SagaState) -> str:
    return (f"saga {state.saga_id} runs {state.definition} v{state.definition_version}, which this worker does not "
            f"have (deploy the catalog with that version here, then replay the record)")
