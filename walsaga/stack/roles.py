"""Who may do what in a walsaga database (least privilege), applied by the cluster's admin on every start:

- `<db>_owner` owns the database and every object in it; only migrations log in as it (DDL lives there).
- `<db>_app`, the services' runtime role: SELECT/INSERT/UPDATE/DELETE on the tables, the sequences, nothing else.
  It owns nothing, so it cannot DROP, TRUNCATE, ALTER a table or disable the direct-write triggers.
- `<db>_reader`: SELECT only (the reconciler and its report read the services' and the saga's databases with it;
  repairs go out as commands).
- `walsaga_cdc`: LOGIN REPLICATION; SELECT on the outbox is granted by the migration that creates the publication,
  and pg_hba.conf lets it replicate only this database, logically (walsaga/stack/postgres.py).

Idempotent, and it moves a stack made before the owner role existed (everything owned by `<db>_app`) over to it."""
from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

from walsaga.stack.config import role_name

LOGIN_ROLES = ("owner", "app", "reader", "cdc")
_PLAIN = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
_ATTRIBUTES = {"owner": _PLAIN, "app": _PLAIN, "reader": _PLAIN, "cdc": _PLAIN.replace("NOREPLICATION", "REPLICATION")}
RUNTIME_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


def ensure_roles(cluster: psycopg.Connection, db: str, passwords: Mapping[str, str]) -> None:
    """On a connection to the cluster's `postgres` database (autocommit, as its admin): the login roles with their
    passwords (`passwords[role]`), and the database, owned by `<db>_owner`, that only they may connect to."""
    for role in LOGIN_ROLES:
        name = sql.Identifier(role_name(db, role))
        exists = cluster.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role_name(db, role),)).fetchone()
        verb = sql.SQL("ALTER" if exists else "CREATE")
        cluster.execute(sql.SQL("{} ROLE {} WITH {} PASSWORD {}").format(
            verb, name, sql.SQL(_ATTRIBUTES[role]), sql.Literal(passwords[role])))
    owner, database = sql.Identifier(role_name(db, "owner")), sql.Identifier(db)
    if cluster.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
        cluster.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, owner))
    else:
        cluster.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, owner))
    cluster.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
    cluster.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, _users(db, "app", "reader", "cdc")))


def grant_privileges(database: psycopg.Connection, db: str) -> None:
    """On a connection to `db` itself (autocommit, as the admin): ownership and table privileges, for the objects
    there now and (default privileges) for every object the owner's migrations create later."""
    owner, app, reader = (sql.Identifier(role_name(db, r)) for r in ("owner", "app", "reader"))
    statements: list[sql.SQL | sql.Composed] = [
        sql.SQL("REASSIGN OWNED BY {} TO {}").format(app, owner),  # a stack from before the owner role
        sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(_users(db, "app", "reader", "cdc")),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA public TO {}").format(sql.SQL(RUNTIME_TABLE_PRIVILEGES), app),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(app),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(reader),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT {} ON TABLES TO {}").format(
            owner, sql.SQL(RUNTIME_TABLE_PRIVILEGES), app),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
            owner, app),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
            owner, reader),
    ]
    for statement in statements:
        database.execute(statement)


def _users(db: str, *roles: str) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(role_name(db, r)) for r in roles)
