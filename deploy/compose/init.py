"""The one-shot `init` job of docker-compose.yml: what `walsaga up` does between starting the servers and starting the
Python processes (walsaga/stack/lifecycle.py up(), steps 2-4), with host names and passwords from the environment
instead of the local stack's StackConfig on 127.0.0.1.

Two jobs. `init.py kafka` (the `kafka-access` service, before Connect starts): Kafka's application principals, their
ACLs and the topics. `init.py` (the `init` service, once Connect runs): roles and privileges, migrate every database
(as its owner), then register the outbox connectors and wait until they run, so each connector finds its
publication, its grant and its destination topics in place. Every step is idempotent, so
running the job again (`docker compose run --rm init`) is harmless.

Environment, all set by docker-compose.yml:
    WALSAGA_PG_HOST_<DB>, WALSAGA_PG_PORT_<DB> (default 5432)   where each database listens, for this job and Connect
    WALSAGA_<DB>_{ADMIN,OWNER,APP,READER,CDC}_PASSWORD          each role's password (walsaga/stack/roles.py)
    WALSAGA_KAFKA_BOOTSTRAP, WALSAGA_CONNECT_URL
    WALSAGA_KAFKA_REPLICATION      the topics' replication factor (default 1; docker-compose.ha.yml: 3)
    WALSAGA_CONNECT_SECRETS_FILE   the secrets properties file as the Connect container sees it (the connectors'
                                   passwords stay references into it, resolved by Connect's FileConfigProvider)
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.parse
from dataclasses import dataclass, field

import psycopg
from confluent_kafka.admin import AdminClient
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

from cdc import connectors
from services.common.kafka_access import KafkaAccess
from walsaga.stack import kafka_acls, migrate, roles
from walsaga.stack.config import DATABASES, SERVICES, role_name
from walsaga.stack.procs import say
from walsaga.stack.topics import ensure_topics, publish_contracts


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"init: {name} is not set (docker-compose.yml sets it, from deploy/compose/.env for secrets)")
    return value


@dataclass(frozen=True)
class Database:
    name: str
    host: str
    port: str
    passwords: dict[str, str] = field(repr=False)  # admin, owner, app, reader, cdc

    @classmethod
    def from_env(cls, db: str) -> Database:
        key = db.upper()
        return cls(db, need(f"WALSAGA_PG_HOST_{key}"), os.environ.get(f"WALSAGA_PG_PORT_{key}", "5432"),
                   {r: need(f"WALSAGA_{key}_{r.upper()}_PASSWORD") for r in ("admin", *roles.LOGIN_ROLES)})

    def url(self, role: str, database: str | None = None, driver: str = "postgresql+psycopg") -> str:
        password = urllib.parse.quote(self.passwords[role], safe="")
        return f"{driver}://{role_name(self.name, role)}:{password}@{self.host}:{self.port}/{database or self.name}"

    def ensure_roles(self) -> None:
        _wait_reachable(self.url("admin", "postgres", "postgresql"))
        with psycopg.connect(self.url("admin", "postgres", "postgresql"), autocommit=True) as cluster:
            roles.ensure_roles(cluster, self.name, {r: self.passwords[r] for r in roles.LOGIN_ROLES})
        with psycopg.connect(self.url("admin", driver="postgresql"), autocommit=True) as database:
            database.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            roles.grant_privileges(database, self.name)


@retry(retry=retry_if_exception(lambda e: isinstance(e, psycopg.OperationalError)), stop=stop_after_delay(180),
       wait=wait_fixed(1), reraise=True)
def _wait_reachable(url: str) -> None:
    """The HA file's proxy refuses connections until Patroni has elected the pair's first primary."""
    psycopg.connect(url, connect_timeout=5).close()


def _connect_busy(exc: BaseException) -> bool:
    """A worker that answers /connector-plugins may still be joining its group: 409 (rebalancing), 5xx, refused."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 409 or exc.code >= 500
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError))


@retry(retry=retry_if_exception(_connect_busy), stop=stop_after_delay(90), wait=wait_fixed(1), reraise=True)
def _put_config(client: connectors.ConnectClient, name: str, config: dict[str, str]) -> None:
    client.put_config(name, config)


def register_connectors(connect_url: str, secrets_file: str, databases: dict[str, Database]) -> None:
    """walsaga/stack/lifecycle.py register_connectors(), with the databases' compose host names."""
    client = connectors.ConnectClient(connect_url, credentials=("walsaga", need("WALSAGA_CONNECT_REST_PASSWORD")))
    names: list[str] = []
    for svc in SERVICES:
        db = databases[svc]
        name, config = connectors.load(svc, {"pg_host": db.host, "pg_port": db.port, "secrets_file": secrets_file})
        _put_config(client, name, config)
        names.append(name)
    for name in names:
        connectors.wait_running(client, name, progress=say)
        say(f"connector {name}: RUNNING")


def kafka_access() -> None:
    """The `kafka-access` job (before Connect starts: its worker logs in as walsaga-connect): every application
    principal's SCRAM credential and ACLs (walsaga/stack/kafka_acls.py), then the topics, as the admin."""
    admin = KafkaAccess.from_env()
    passwords = {p: need(f"WALSAGA_KAFKA_{p.removeprefix('walsaga-').upper()}_PASSWORD")
                 for p in kafka_acls.APPLICATION_PRINCIPALS}
    say("Kafka principals and ACLs")
    kafka_acls.apply(AdminClient(admin.confluent()), passwords)
    say("Kafka topics")
    ensure_topics(admin, int(os.environ.get("WALSAGA_KAFKA_REPLICATION", "1")))  # 3 in docker-compose.ha.yml
    publish_contracts(admin)


def main() -> None:
    databases = {db: Database.from_env(db) for db in DATABASES}
    connect_url = need("WALSAGA_CONNECT_URL")
    secrets_file = need("WALSAGA_CONNECT_SECRETS_FILE")

    say("[1/2] roles, privileges and schema migrations")
    for db in DATABASES:
        databases[db].ensure_roles()
        migrate.upgrade(db, databases[db].url("owner"))
        say(f"migrations[{db}]: at head")
    say("[2/2] Debezium outbox connectors")
    register_connectors(connect_url, secrets_file, databases)
    say("init done")


if __name__ == "__main__":
    kafka_access() if sys.argv[1:] == ["kafka"] else main()
