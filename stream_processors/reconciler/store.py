"""The continuous checks' state, in the views database: which subjects (order ids, SKUs) are due for a check, and
the violations found (with their repair state)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, Table, Text, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from stream_processors.reconciler.lifecycle import Known, Outcome, Status

metadata = MetaData()
pending = Table(
    "pending_check", metadata,
    Column("subject", Text, primary_key=True),
    Column("subject_kind", Text, nullable=False),  # order | sku
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
)
violations = Table(
    "violation", metadata,
    Column("subject", Text, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("repair", Text, nullable=True),
    Column("repairs_sent", Integer, nullable=False, server_default="0"),
    Column("first_seen", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_seen", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
)


def schedule(conn: Connection, subject: str, subject_kind: str, due_in: float) -> None:
    """Check `subject` `due_in` seconds from now; a later change pushes the check back (it waits for quiet)."""
    schedule_many(conn, {subject: subject_kind}, due_in)


# many subjects in one prebuilt statement (a batch of records, each subject once: a dict's keys)
_SCHEDULE_MANY = text("""INSERT INTO pending_check (subject, subject_kind, due_at)
    SELECT subject, kind, now() + CAST(:due_in AS double precision) * interval '1 second'
    FROM unnest(CAST(:subjects AS text[]), CAST(:kinds AS text[])) AS s(subject, kind)
    ON CONFLICT (subject) DO UPDATE SET due_at = excluded.due_at""")


def schedule_many(conn: Connection, subjects: Mapping[str, str], due_in: float) -> None:
    """schedule() for every subject (-> its kind) in one round trip."""
    if subjects:
        conn.execute(_SCHEDULE_MANY, {"subjects": list(subjects), "kinds": list(subjects.values()),
                                      "due_in": due_in})


def schedule_at(conn: Connection, subject: str, subject_kind: str, at: Any) -> None:  # a datetime or SQL expression
    stmt = pg_insert(pending).values(subject=subject, subject_kind=subject_kind, due_at=at)
    conn.execute(stmt.on_conflict_do_update(index_elements=["subject"], set_={"due_at": stmt.excluded.due_at}))


def take_due(conn: Connection, limit: int) -> Sequence[Any]:
    """Due checks, locked (SKIP LOCKED: several reconciler workers never take the same one) and removed."""
    rows = conn.execute(select(pending).where(pending.c.due_at <= func.now()).order_by(pending.c.due_at)
                        .limit(limit).with_for_update(skip_locked=True)).all()
    if rows:
        conn.execute(delete(pending).where(pending.c.subject.in_([r.subject for r in rows])))
    return rows


def known(conn: Connection, subject: str) -> dict[str, Known]:
    return {r.kind: Known(r.kind, r.status, r.repairs_sent)
            for r in conn.execute(select(violations).where(violations.c.subject == subject).with_for_update())}


def save(conn: Connection, subject: str, outcome: Outcome) -> None:
    for row in outcome.rows:
        stmt = pg_insert(violations).values(subject=subject, kind=row.kind, status=row.status, detail=row.detail,
                                            repair=row.repair, repairs_sent=row.repairs_sent)
        conn.execute(stmt.on_conflict_do_update(index_elements=["subject", "kind"], set_={
            "status": row.status, "detail": row.detail, "repair": row.repair, "repairs_sent": row.repairs_sent,
            "last_seen": func.now(), "resolved_at": None}))
    if outcome.resolved:
        conn.execute(violations.update().where(violations.c.subject == subject,
                                               violations.c.kind.in_(outcome.resolved))
                     .values(status=Status.RESOLVED, resolved_at=func.now(), last_seen=func.now()))


def listed(conn: Connection, status: str | None, limit: int = 200) -> Sequence[Any]:
    query = select(violations).order_by(violations.c.last_seen.desc()).limit(limit)
    if status:
        query = query.where(violations.c.status == status)
    return conn.execute(query).all()
