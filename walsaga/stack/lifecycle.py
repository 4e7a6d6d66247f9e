"""`walsaga up | down | status | wipe`: the order in which the stack starts, stops and reports."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

from cdc import connectors as cdc_connectors
from cdc.slots import slot_state
from walsaga.stack import apps, gateway, kafka, migrate, postgres, procs, topics
from walsaga.stack.config import DATABASES, SERVICES, Secrets, StackConfig, db_url
from walsaga.stack.procs import say


def up(cfg: StackConfig) -> None:
    t0 = time.monotonic()
    for d in cfg.dirs():
        d.mkdir(parents=True, exist_ok=True)
    secrets = Secrets(cfg.secrets_file)
    secrets.ensure_all()
    step(1, "PostgreSQL clusters")
    postgres.up(cfg, secrets)
    step(2, "schema migrations")
    for db in DATABASES:
        migrate.upgrade(db, db_url(cfg, db))
        say(f"migrations[{db}]: at head")
    step(3, "Kafka broker (KRaft) and topics")
    kafka.start_broker(cfg)
    topics.ensure_topics(cfg.kafka_bootstrap)
    step(4, "Kafka Connect and the Debezium outbox connectors")
    kafka.start_connect(cfg)
    register_connectors(cfg)
    step(5, "services, stream processors and gateway")
    apps.start_services(cfg)
    apps.start_processors(cfg)
    apps.start_views(cfg)
    apps.start_reconciler(cfg)
    gateway.start(cfg)
    say(f"stack is up in {time.monotonic() - t0:.0f}s; gateway {cfg.gateway_url}")


def step(n: int, what: str) -> None:
    say(f"[{n}/5] {what}")


def register_connectors(cfg: StackConfig, overrides: dict[str, str] | None = None) -> None:
    """Puts every outbox connector's config (connectors/*.json, then `overrides`: the benchmark's tuning runs) and
    waits until each is RUNNING."""
    client = cdc_connectors.ConnectClient(cfg.connect_url)
    for svc in SERVICES:
        name, config = cdc_connectors.load(svc, {
            "pg_host": "127.0.0.1", "pg_port": str(cfg.ports.postgres(svc)), "secrets_file": str(cfg.secrets_file)})
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


def slot_problem(cfg: StackConfig, client: cdc_connectors.ConnectClient, svc: str, connector: str,
                 slot: str) -> str | None:
    state = slot_state(db_url(cfg, svc, "admin", driver="postgresql"), slot)
    return state.problem(svc, client.has_offsets(connector) if not state.exists else False)


def accept_slot_gap(cfg: StackConfig, svc: str) -> None:
    """Operator: after a LOST slot, start the connector over from a fresh slot. Events committed while no slot
    existed are not published; `walsaga reconcile` (when available) or the outbox table must cover them."""
    client = cdc_connectors.ConnectClient(cfg.connect_url)
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
    for pid_file in sorted(cfg.run.glob("*.pid")) if cfg.run.exists() else []:
        if pid_file.stem not in ("connect", "kafka", "nginx"):
            procs.stop(cfg, pid_file.stem)
    procs.stop(cfg, "connect", timeout=30)
    procs.stop(cfg, "kafka", timeout=60)
    postgres.down(cfg)
    say("stack stopped (data kept)")


def wipe(cfg: StackConfig) -> None:
    down(cfg)
    postgres.wipe(cfg)
    if cfg.home.exists():
        shutil.rmtree(cfg.home)
    say(f"wiped {cfg.home}")


@dataclass(frozen=True)
class Health:
    component: str
    ok: bool
    detail: str


def status(cfg: StackConfig) -> list[Health]:
    out: list[Health] = []
    for db in DATABASES:
        running = postgres.is_running(cfg, db)
        out.append(Health(f"postgres[{db}]", running, f"port {cfg.ports.postgres(db)}"))
    for name, port in (("kafka", cfg.ports.kafka), ("connect", cfg.ports.connect), ("gateway", cfg.ports.gateway)):
        pid = procs.read_pid(cfg, name)
        out.append(Health(name, bool(pid) and procs.port_open(port), f"pid {pid}, port {port}"))
    for name in apps.process_names(cfg):
        pid = procs.read_pid(cfg, name)
        out.append(Health(name, pid is not None, f"pid {pid}"))
    out.extend(_cdc_health(cfg))
    return out


def _cdc_health(cfg: StackConfig) -> list[Health]:
    out: list[Health] = []
    client = cdc_connectors.ConnectClient(cfg.connect_url, timeout=3)
    for svc in SERVICES:
        name, config = cdc_connectors.identity(svc)
        try:
            state = cdc_connectors.state_of(client.status(name))
        except OSError as exc:
            state = f"UNREACHABLE ({exc.__class__.__name__})"
        try:
            slot_info = slot_state(db_url(cfg, svc, "admin", driver="postgresql"), config["slot.name"])
            problem = slot_info.problem(svc, not slot_info.exists and client.has_offsets(name))
            slot = slot_info.describe() + (f" -- {problem}" if problem else "")
            slot_ok = slot_info.exists and problem is None
        except Exception as exc:  # noqa: BLE001 - a down database or Connect is a status to show, not a crash
            slot, slot_ok = f"{config['slot.name']}: unknown ({exc.__class__.__name__})", False
        out.append(Health(f"cdc[{svc}]", state == "RUNNING" and slot_ok, f"connector {state}; slot {slot}"))
    return out
