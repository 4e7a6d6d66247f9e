"""`walsaga up | down | status | wipe`: the order in which the stack starts, stops and reports."""
from __future__ import annotations

import os
import shutil
import time

from cdc import connectors as cdc_connectors
from cdc.slots import slot_state
from walsaga.stack import (
    apps,
    connect_offsets,
    gateway,
    kafka,
    kafka_acls,
    migrate,
    patroni,
    postgres,
    procs,
    runtime_user,
    topics,
)
from walsaga.stack.config import DATABASES, SERVICES, Secrets, StackConfig, db_url, token_signing_key
from walsaga.stack.procs import say


def prepare_home(cfg: StackConfig) -> None:
    """The stack home's directories, the runtime user's (walsaga/stack/runtime_user.py) and closed to everyone else;
    the home and data let others through without a look (PostgreSQL's clusters may live under data), secrets is
    root's when root starts the stack. What this supervisor writes is nobody else's either (umask)."""
    os.umask(runtime_user.UMASK)
    for d in cfg.dirs():
        d.mkdir(parents=True, exist_ok=True)
    for d in (cfg.home, cfg.data, cfg.secrets_file.parent):
        d.chmod(0o711)
    runtime_user.own(cfg.data)
    for d in (cfg.logs, cfg.run, cfg.etc, *cfg.data.glob("kafka*"), cfg.data / "faust"):
        if d.is_dir():
            runtime_user.own_tree(d)
            d.chmod(0o700)


def up(cfg: StackConfig) -> None:
    t0 = time.monotonic()
    prepare_home(cfg)
    secrets = Secrets(cfg.secrets_file)
    secrets.ensure_all()
    token_signing_key(cfg)
    step(1, "PostgreSQL clusters")
    postgres.up(cfg, secrets)
    step(2, "schema migrations")
    for db in DATABASES:
        migrate.upgrade(db, db_url(cfg, db, "owner"))
        say(f"migrations[{db}]: at head")
    step(3, "Kafka (KRaft) and topics" if cfg.kafka_nodes == 1 else f"Kafka: {cfg.kafka_nodes} KRaft nodes, topics")
    kafka.start_brokers(cfg)
    kafka_acls.apply_to(cfg)
    topics.ensure_topics(kafka_acls.admin(cfg), cfg.replication_factor)
    topics.publish_contracts(kafka_acls.admin(cfg))
    step(4, "Kafka Connect and the Debezium outbox connectors")
    kafka.start_connect(cfg)
    register_connectors(cfg)
    step(5, "services, stream processors and gateway")
    apps.start_services(cfg)
    apps.start_processors(cfg)
    apps.start_views(cfg)
    apps.start_reconcilers(cfg)
    gateway.start(cfg)
    if cfg.postgres_members > 1:
        patroni.wait_failover_ready(cfg)
    say(f"stack is up in {time.monotonic() - t0:.0f}s; gateway {cfg.gateway_url}")
    ha = " --ha" if cfg.kafka_nodes > 1 else ""
    say(f"every API request needs a bearer token: TOKEN=$(.venv/bin/walsaga token{ha} --subject alice --role "
        f"customer), then curl -H \"Authorization: Bearer $TOKEN\" {cfg.gateway_url}/orders (roles: customer, "
        "operator, admin)")


def step(n: int, what: str) -> None:
    say(f"[{n}/5] {what}")


def register_connectors(cfg: StackConfig, overrides: dict[str, str] | None = None) -> None:
    """Puts every outbox connector's config (cdc/connectors.py, then `overrides`: the benchmark's tuning runs) and
    waits until each is RUNNING."""
    client = kafka.connect_client(cfg)
    for svc in SERVICES:
        name, config = connector_config(cfg, svc)
        config.update(overrides or {})
        problem = slot_problem(cfg, client, svc, name, config["slot.name"])
        if problem:
            # never let Debezium quietly create a fresh slot past a gap: stop here, loudly
            raise RuntimeError(f"replication slot {config['slot.name']} of {svc}: {problem}. "
                               "See README (CDC slots) before starting this connector again.")
        client.put_config(name, config)
    for svc in SERVICES:
        name, _ = cdc_connectors.identity(svc)
        cdc_connectors.wait_running(client, name, progress=say)
        say(f"connector {name}: RUNNING")


def connector_config(cfg: StackConfig, svc: str) -> tuple[str, dict[str, str]]:
    """A participant's outbox connector as this stack registers it (cdc/connectors.py); passwords stay references."""
    return cdc_connectors.load(svc, {"pg_host": "127.0.0.1", "pg_port": str(cfg.ports.postgres(svc)),
                                     "secrets_file": str(cfg.secrets_file)})


def slot_problem(cfg: StackConfig, client: cdc_connectors.ConnectClient, svc: str, connector: str,
                 slot: str) -> str | None:
    state = slot_state(db_url(cfg, svc, "admin", driver="postgresql"), slot)
    return state.problem(svc, client.has_offsets(connector) if not state.exists else False)


def accept_slot_gap(cfg: StackConfig, svc: str) -> None:
    """Operator: after a LOST slot, start the connector over from a fresh slot. Events committed while no slot
    existed are not published; `walsaga reconcile` (when available) or the outbox table must cover them."""
    client = kafka.connect_client(cfg)
    name, _ = cdc_connectors.identity(svc)
    client.stop(name)
    client.reset_offsets(name)
    client.resume(name)
    register_connectors(cfg)


def down(cfg: StackConfig) -> None:
    """Stops everything, keeping data. Order: entry points first, so nothing new arrives while the rest drains."""
    procs.stop(cfg, "gateway")
    for name in apps.process_names(cfg):
        procs.stop(cfg, name)
    # stray instances from a run with more instances than configured now
    jvms = {*cfg.connect_names(), *cfg.broker_names()}
    for pid_file in sorted(cfg.run.glob("*.pid")) if cfg.run.exists() else []:
        # the databases' HA processes stop last, in their own order (postgres.down)
        if pid_file.stem not in jvms | {"nginx"} and not pid_file.stem.startswith(("patroni-", "etcd-", "pg-proxy-")):
            procs.stop(cfg, pid_file.stem)
    for name in cfg.connect_names():
        procs.stop(cfg, name, timeout=30)
    if cfg.postgres_members > 1:
        _record_connect_offsets(cfg)
    for name in cfg.broker_names():
        procs.stop(cfg, name, timeout=60)
    postgres.down(cfg)
    say("stack stopped (data kept)")


def _record_connect_offsets(cfg: StackConfig) -> None:
    """HA profile: the next `up` promotes a member of every pair before Connect runs; the promote gate then takes
    the offsets recorded here (walsaga/stack/connect_offsets.py)."""
    try:
        connect_offsets.record_stopped(cfg)
        say("connector offsets recorded for the promote gate")
    except Exception as exc:  # noqa: BLE001 - Kafka already away: the gate waits for Connect on the next start
        say(f"connector offsets not recorded ({exc}): on the next `up --ha` each pair's promotion waits for Kafka "
            "Connect, which starts after the databases; start it by hand if it does")


def wipe(cfg: StackConfig) -> None:
    down(cfg)
    postgres.wipe(cfg)
    if cfg.home.exists():
        shutil.rmtree(cfg.home)
    say(f"wiped {cfg.home}")
