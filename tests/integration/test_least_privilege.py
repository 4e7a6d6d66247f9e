"""Least privilege in the databases, on the real clusters: the runtime role changes rows only, the reader only reads,
the reconciler reads with the reader, the CDC role replicates only its own database and only logically, and no
output plugin but pgoutput is there to decode with (walsaga/stack/roles.py, walsaga/stack/postgres.py)."""
from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors, pq

from walsaga.stack import procs
from walsaga.stack.config import SERVICES, StackConfig, db_url

pytestmark = pytest.mark.stack

# statements that need ownership or a superuser; the outbox is in every service database, and disabling its
# triggers (or the session's) is how direct writes would slip past the capture
SCHEMA_CHANGES = [
    "DROP TABLE outbox",
    "TRUNCATE outbox",
    "ALTER TABLE outbox DISABLE TRIGGER ALL",
    "ALTER TABLE outbox ADD COLUMN probe int",
    "CREATE TABLE probe (n int)",
    "SET session_replication_role = replica",
]
WRITES = [
    "INSERT INTO inbox (consumer, message_id, message_type) VALUES ('probe', 'least-privilege-probe', 'probe')",
    "UPDATE outbox SET type = type WHERE false",
    "DELETE FROM outbox WHERE false",
]


def _connect(stack: StackConfig, db: str, role: str, **params: str) -> psycopg.Connection:
    return psycopg.connect(db_url(stack, db, role, driver="postgresql"), connect_timeout=5, **params)


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _refused(conn: psycopg.Connection, statement: str) -> bool:
    try:
        with conn.transaction():
            conn.execute(statement)
    except errors.InsufficientPrivilege:
        return True
    return False


def test_the_runtime_role_changes_rows_but_not_the_schema(stack: StackConfig, service: str) -> None:
    with _connect(stack, service, "app", autocommit=True) as app:
        assert app.execute("SELECT count(*) FROM outbox").fetchone() is not None  # the control: it may read
        allowed = [s for s in SCHEMA_CHANGES if not _refused(app, s)]
        owns = app.execute("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                           "WHERE r.rolname = current_user").fetchone()
    assert allowed == []
    assert owns == (0,)


def test_the_reader_role_only_reads(stack: StackConfig, service: str) -> None:
    with _connect(stack, service, "reader", autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM outbox").fetchone() is not None
        allowed = [s for s in WRITES + SCHEMA_CHANGES if not _refused(reader, s)]
    assert allowed == []


def _reconciler_environments(stack: StackConfig) -> Iterator[dict[str, str]]:
    for instance in range(stack.reconciler_instances):
        pid = procs.read_pid(stack, f"reconciler-{instance}")
        if pid:
            raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            yield dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_reconciler_reads_the_services_and_sagas_with_the_reader_role(stack: StackConfig) -> None:
    environments = list(_reconciler_environments(stack))
    assert environments, "no reconciler process found"
    for env in environments:
        for db in (*SERVICES, "saga"):
            assert env[f"WALSAGA_DB_URL_{db.upper()}"].split("://", 1)[1].startswith(f"{db}_reader:"), db


def _identify_system(conn: psycopg.Connection) -> bool:
    return conn.pgconn.exec_(b"IDENTIFY_SYSTEM").status == pq.ExecStatus.TUPLES_OK


def test_the_cdc_role_replicates_its_own_database_logically_and_nothing_else(stack: StackConfig,
                                                                             service: str) -> None:
    with _connect(stack, service, "cdc", replication="database") as logical:
        assert _identify_system(logical)  # the control: what Debezium does
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf"):
        _connect(stack, service, "cdc", replication="true")  # physical: a base backup of the whole cluster
    other_db = db_url(stack, service, "cdc", driver="postgresql").rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf"):
        psycopg.connect(other_db, connect_timeout=5)
    with pytest.raises(psycopg.OperationalError):
        _connect(stack, service, "app", replication="database")  # no REPLICATION attribute


def test_no_output_plugin_but_pgoutput_can_decode(stack: StackConfig) -> None:
    slot = f"probe_{os.getpid()}"
    with _connect(stack, "orders", "admin", autocommit=True) as admin:
        with pytest.raises(psycopg.errors.UndefinedFile):
            admin.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding', true)", (slot,))
        created = admin.execute("SELECT slot_name FROM pg_create_logical_replication_slot(%s, 'pgoutput', true)",
                                (slot,)).fetchone()  # the control: a temporary slot, gone with the session
    assert created == (slot,)
