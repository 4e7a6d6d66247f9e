"""The saga database (its own Postgres cluster): instances, their history, the inbox and dead letters."""
from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    TextClause,
    any_,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.common.counters import counter_add, counters_table
from services.common.retention import HISTORY_KEEP, INBOX_KEEP, Rule
from services.common.tables import inbox_table
from stream_processors.saga.engine import IN_FLIGHT
from stream_processors.saga.model import Awaiting, Command, SagaState, SagaStatus

metadata = MetaData()
inbox = inbox_table(metadata)
counters = counters_table(metadata)

instances = Table(
    "saga_instance", metadata,
    Column("saga_id", Text, primary_key=True),
    Column("definition", Text, nullable=False),
    Column("status", Text, nullable=False, index=True),
    Column("step", Integer, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("awaiting_command_id", Text, nullable=True),
    Column("awaiting_replies", JSONB, nullable=False),
    Column("failure_reason", Text, nullable=True),
    # the commands of the last decision, re-sent when the message that caused them is redelivered
    Column("pending_commands", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("deadline_at", DateTime(timezone=True), nullable=True, index=True),
    Column("parked_reason", Text, nullable=True),
    Column("parked_from", Text, nullable=True),
    Column("definition_version", Integer, nullable=False, server_default="1"),
)

history = Table(
    "saga_history", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("saga_id", Text, nullable=False, index=True),
    Column("message_type", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


_TERMINAL = ", ".join(f"'{s.value}'" for s in SagaStatus if s.terminal)
# what the saga store deletes past retention (services/common/retention.py): a saga's history goes once the saga has
# been over for HISTORY_KEEP; a saga that runs (or waits for an operator) keeps all of it, whatever its age
RETENTION = (
    Rule("inbox", "processed_at", INBOX_KEEP),
    Rule("saga_history", "at", HISTORY_KEEP,
         only=f"""EXISTS (SELECT 1 FROM saga_instance s WHERE s.saga_id = saga_history.saga_id
                  AND s.status IN ({_TERMINAL}) AND s.updated_at < now() - make_interval(secs => :keep_s))"""),
)

_LOAD = select(instances).where(instances.c.saga_id == bindparam("saga_id")).with_for_update()
# in saga id order, so two transactions that lock some of the same sagas wait for each other instead of deadlocking
_LOAD_MANY = (select(instances).where(instances.c.saga_id == any_(bindparam("saga_ids", type_=ARRAY(Text))))
              .order_by(instances.c.saga_id).with_for_update())


def load(conn: Connection, saga_id: str) -> SagaState | None:
    return load_with_pending(conn, saga_id)[0]


def load_with_pending(conn: Connection, saga_id: str) -> tuple[SagaState | None, tuple[Command, ...]]:
    """The saga's state, row-locked, and the commands of its last decision (re-sent for a redelivered message)."""
    row = conn.execute(_LOAD, {"saga_id": saga_id}).first()
    if row is None:
        return None, ()
    return _state(row), _commands(row.pending_commands)


def load_many_with_pending(conn: Connection,
                           saga_ids: set[str]) -> dict[str, tuple[SagaState, tuple[Command, ...]]]:
    """load_with_pending for several sagas in one round trip; a saga that does not exist is not in the result."""
    rows = conn.execute(_LOAD_MANY, {"saga_ids": sorted(saga_ids)}).all()
    return {row.saga_id: (_state(row), _commands(row.pending_commands)) for row in rows}


def _state(row: Any) -> SagaState:
    return SagaState(row.saga_id, row.definition, SagaStatus(row.status), row.step, row.data,
                     _awaiting(row.awaiting_command_id, row.awaiting_replies),
                     row.failure_reason, row.version, row.attempt, row.parked_reason,
                     SagaStatus(row.parked_from) if row.parked_from else None, row.definition_version)


def _awaiting(first_id: str | None, replies: list[Any]) -> tuple[Awaiting, ...]:
    """One awaited command: its id and its reply types (a list of names, as before parallel steps, so a worker of
    the previous release reads it); several (a stage of parallel steps): a list of {command_id, replies}."""
    if replies and isinstance(replies[0], dict):
        return tuple(Awaiting(a["command_id"], tuple(a["replies"])) for a in replies)
    return (Awaiting(first_id, tuple(replies)),) if first_id else ()


def _awaiting_columns(awaiting: tuple[Awaiting, ...]) -> dict[str, Any]:
    if len(awaiting) == 1:
        replies: list[Any] = list(awaiting[0].replies)
    else:
        replies = [{"command_id": a.command_id, "replies": list(a.replies)} for a in awaiting]
    return {"awaiting_command_id": awaiting[0].command_id if awaiting else None,
            "awaiting_replies": json.dumps(replies)}


# One statement per message, whatever it did: the inbox claim, the saga row (insert or conditional update) and the
# history row, each conditional on the claim, as data-modifying CTEs (one round trip instead of three or four).
_CLAIM = """claim AS (INSERT INTO inbox (consumer, message_id, message_type)
                VALUES (:consumer, :message_id, :message_type)
                ON CONFLICT (consumer, message_id) DO NOTHING RETURNING 1)"""
# a decision taken on a cached state (saga/cache.py): the saga's row is locked and its version read in the same
# statement, and nothing is written unless that version is the one the decision was taken on
_CURRENT = """cur AS (SELECT version FROM saga_instance WHERE saga_id = :saga_id FOR UPDATE)"""
_GUARDED_CLAIM = """claim AS (INSERT INTO inbox (consumer, message_id, message_type)
                SELECT :consumer, :message_id, :message_type
                WHERE (SELECT version FROM cur) = CAST(:expected_version AS integer)
                ON CONFLICT (consumer, message_id) DO NOTHING RETURNING 1)"""
_STATE_VALUES = """:definition, :status, CAST(:step AS integer), CAST(:data AS jsonb), :awaiting_command_id,
    CAST(:awaiting_replies AS jsonb), :failure_reason, CAST(:pending_commands AS jsonb), CAST(:version AS integer),
    CAST(:attempt AS integer), :parked_reason, :parked_from,
    now() + CAST(:deadline_s AS double precision) * interval '1 second', CAST(:definition_version AS integer)"""
_STATE_COLUMNS = """definition, status, step, data, awaiting_command_id, awaiting_replies, failure_reason,
    pending_commands, version, attempt, parked_reason, parked_from, deadline_at, definition_version"""
_INSERT_STATE = f"""saved AS (INSERT INTO saga_instance (saga_id, {_STATE_COLUMNS})
    SELECT :saga_id, {_STATE_VALUES} WHERE EXISTS (SELECT 1 FROM claim) RETURNING 1)"""
_UPDATE_STATE = f"""saved AS (UPDATE saga_instance SET ({_STATE_COLUMNS}, updated_at) = ({_STATE_VALUES}, now())
    WHERE saga_id = :saga_id AND version = CAST(:before_version AS integer) AND EXISTS (SELECT 1 FROM claim)
    RETURNING 1)"""
_HISTORY = """hist AS (INSERT INTO saga_history (saga_id, message_type, message_id, status, note)
    SELECT :saga_id, :message_type, :message_id, :history_status, :note WHERE EXISTS (SELECT 1 FROM claim))"""


def _message_statement(state: str | None, history: bool, guarded: bool = False) -> TextClause:
    ctes = ([_CURRENT, _GUARDED_CLAIM] if guarded else [_CLAIM]) + ([state] if state else []) + (
        [_HISTORY] if history else [])
    saved = "(SELECT count(*) FROM saved)" if state else "0"
    current = "(SELECT version FROM cur)" if guarded else "NULL"
    return text(f"WITH {', '.join(ctes)} SELECT (SELECT count(*) FROM claim) AS claimed, {saved} AS saved, "
                f"{current} AS current_version")


_CLAIM_ONLY = _message_statement(None, history=False)
_CLAIM_AND_HISTORY = _message_statement(None, history=True)
_CLAIM_INSERT = _message_statement(_INSERT_STATE, history=True)
_CLAIM_UPDATE = _message_statement(_UPDATE_STATE, history=True)
_GUARDED = {stmt: _message_statement(state, history, guarded=True) for stmt, state, history in (
    (_CLAIM_ONLY, None, False), (_CLAIM_AND_HISTORY, None, True), (_CLAIM_UPDATE, _UPDATE_STATE, True))}


class StaleSaga(Exception):
    """A decision was taken on a cached state that is no longer the saga's: nothing was written."""

    def __init__(self, saga_id: str, expected: int, found: int | None) -> None:
        super().__init__(f"saga {saga_id} is at version {found}, not {expected}")
        self.saga_id = saga_id


def write_message(conn: Connection, consumer: str, message_id: str, message_type: str, before: SagaState | None,
                  after: SagaState | None, commands: tuple[Command, ...] = (), deadline_in: float | None = None,
                  applied: bool = False, note: str = "", expected_version: int | None = None) -> bool:
    """Claims the message in the inbox and, only if the claim is new, writes what it decided: the new state when
    `applied`, and a history row whenever there is a state (`after`). False: a duplicate, nothing written.
    `expected_version` (a decision on a cached `before`): the saga's row is locked by this statement, and if its
    version is not that one nothing is written and StaleSaga is raised."""
    params: dict[str, Any] = {"consumer": consumer, "message_id": message_id, "message_type": message_type}
    if after is None:
        stmt = _CLAIM_ONLY
    else:
        params.update(saga_id=after.saga_id, history_status=after.status.value, note=note)
        if not applied:
            stmt = _CLAIM_AND_HISTORY
        else:
            params.update(_state_params(after, commands, deadline_in))
            stmt = _CLAIM_INSERT if before is None else _CLAIM_UPDATE
            if before is not None:
                params["before_version"] = before.version
    if expected_version is not None:
        assert before is not None, "only a decision on a known (cached) saga is guarded"
        stmt = _GUARDED[stmt]
        params.update(saga_id=before.saga_id, expected_version=expected_version)
    row = conn.execute(stmt, params).one()
    if expected_version is not None and row.current_version != expected_version:
        raise StaleSaga(before.saga_id if before else "?", expected_version, row.current_version)
    if row.claimed and applied and row.saved != 1:
        raise RuntimeError(f"saga {after.saga_id if after else '?'} changed under its row lock")
    return bool(row.claimed)


def _state_params(after: SagaState, commands: tuple[Command, ...], deadline_in: float | None) -> dict[str, Any]:
    return {
        "definition": after.definition, "status": after.status.value, "step": after.step,
        "data": json.dumps(dict(after.data)),
        **_awaiting_columns(after.awaiting),
        "failure_reason": after.failure_reason,
        "pending_commands": json.dumps([_command_json(c) for c in commands]),
        "version": after.version, "attempt": after.attempt, "parked_reason": after.parked_reason,
        "parked_from": after.parked_from.value if after.parked_from else None, "deadline_s": deadline_in,
        "definition_version": after.definition_version}


# the same state columns and values without an inbox claim: deadline decisions and operator actions
_SAVE_INSERT = text(f"INSERT INTO saga_instance (saga_id, {_STATE_COLUMNS}) VALUES (:saga_id, {_STATE_VALUES})")
_SAVE_UPDATE = text(f"""UPDATE saga_instance SET ({_STATE_COLUMNS}, updated_at) = ({_STATE_VALUES}, now())
    WHERE saga_id = :saga_id AND version = CAST(:before_version AS integer)""")


def save(conn: Connection, before: SagaState | None, after: SagaState, commands: tuple[Command, ...],
         deadline_in: float | None) -> None:
    params = {"saga_id": after.saga_id, **_state_params(after, commands, deadline_in)}
    if before is None:
        conn.execute(_SAVE_INSERT, params)
        return
    result = conn.execute(_SAVE_UPDATE, {**params, "before_version": before.version})
    if result.rowcount != 1:
        raise RuntimeError(f"saga {after.saga_id} changed under its row lock")


def overdue(conn: Connection, limit: int = 100) -> list[SagaState]:
    """Sagas whose awaited reply is late, locked; SKIP LOCKED lets several workers sweep without colliding."""
    rows = conn.execute(select(instances.c.saga_id)
                        .where(instances.c.deadline_at < func.now(),
                               instances.c.status.in_([s.value for s in IN_FLIGHT]))
                        .order_by(instances.c.deadline_at).limit(limit)
                        .with_for_update(skip_locked=True)).all()
    return [state for state in (load(conn, r.saga_id) for r in rows) if state is not None]


def by_status(conn: Connection, status: SagaStatus, limit: int = 100) -> Sequence[Any]:
    return conn.execute(select(instances.c.saga_id, instances.c.status, instances.c.step, instances.c.attempt,
                               instances.c.failure_reason, instances.c.parked_reason, instances.c.updated_at)
                        .where(instances.c.status == status.value).order_by(instances.c.updated_at)
                        .limit(limit)).all()


def versions_in_use(conn: Connection) -> list[tuple[str, int, str, int]]:
    """(definition, version, status, instances) of every instance not over (a parked one included: an operator may
    re-drive it), by definition, version and status."""
    open_statuses = [s.value for s in SagaStatus if not s.terminal]
    rows = conn.execute(select(instances.c.definition, instances.c.definition_version, instances.c.status,
                               func.count())
                        .where(instances.c.status.in_(open_statuses))
                        .group_by(instances.c.definition, instances.c.definition_version, instances.c.status)
                        .order_by(instances.c.definition, instances.c.definition_version, instances.c.status)).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def history_of(conn: Connection, saga_id: str) -> Sequence[Any]:
    return conn.execute(select(history).where(history.c.saga_id == saga_id).order_by(history.c.id)).all()


def count(conn: Connection, consumer: str, counter: str, by: int = 1) -> None:
    counter_add(conn, counters, consumer, counter, by)


def record(conn: Connection, saga_id: str, message_type: str, message_id: str, status: str, note: str) -> None:
    conn.execute(history.insert().values(saga_id=saga_id, message_type=message_type, message_id=message_id,
                                         status=status, note=note))


def _commands(pending: list[dict[str, Any]]) -> tuple[Command, ...]:
    return tuple(Command(c["command_id"], c["participant"], c["command_type"], _from_json(c["record"]))
                 for c in pending)


def _command_json(cmd: Command) -> dict[str, Any]:
    return {"command_id": cmd.command_id, "participant": cmd.participant, "command_type": cmd.command_type,
            "record": json.loads(json.dumps(cmd.record, default=_decimal_json))}


def _decimal_json(value: Any) -> dict[str, str]:
    if isinstance(value, Decimal):
        return {"__decimal__": str(value)}
    raise TypeError(f"command records hold JSON values and Decimals only, not {type(value).__name__}")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__decimal__"}:
            return Decimal(value["__decimal__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value
