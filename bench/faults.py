"""Faults the availability run injects into the HA stack, one at a time: each breaks one node of a replicated
component and returns how to heal it (what an operator's supervisor would do: start the process again)."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from cdc import connectors as cdc_connectors
from schemas import topics
from walsaga.stack import apps, kafka, patroni, procs
from walsaga.stack.config import Secrets, StackConfig

Heal = Callable[[], object]
PAUSE_S = 30.0  # a zombie broker stays silent this long


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[StackConfig], tuple[str, Heal]]  # -> what exactly was broken, how to heal it


def _orders_leader(cfg: StackConfig) -> int:
    return kafka.partition_leader(cfg, topics.ORDERS_EVENTS, 0)


def kill_leading_broker(cfg: StackConfig) -> tuple[str, Heal]:
    node = _orders_leader(cfg)
    name = cfg.broker_names()[node - 1]
    procs.kill9(cfg, name)
    return f"kafka node {node} (leader of orders events p0)", lambda: kafka.start_broker(cfg, node)


def pause_leading_broker(cfg: StackConfig) -> tuple[str, Heal]:
    """SIGSTOP for PAUSE_S, then SIGCONT: a zombie leader, alive to the OS and silent to everyone else."""
    node = _orders_leader(cfg)
    pid = procs.read_pid(cfg, cfg.broker_names()[node - 1])
    if pid is None:
        raise RuntimeError(f"kafka node {node} has no pid")
    os.killpg(pid, signal.SIGSTOP)
    try:
        time.sleep(PAUSE_S)
    finally:
        os.killpg(pid, signal.SIGCONT)
    return f"kafka node {node} (leader of orders events p0) paused {PAUSE_S:.0f} s", lambda: None


def kill_orders_connect_worker(cfg: StackConfig) -> tuple[str, Heal]:
    connector, _ = cdc_connectors.identity("orders")
    status = kafka.connect_client(cfg).status(connector)
    if not status or not status["tasks"]:
        raise RuntimeError(f"{connector} has no task to find its worker by")
    worker = kafka.connect_worker_index(cfg, str(status["tasks"][0]["worker_id"]))
    procs.kill9(cfg, cfg.connect_names()[worker])
    return f"Connect worker {worker} (running the orders connector)", lambda: kafka.start_connect(cfg, worker)


def kill_orchestrator(cfg: StackConfig) -> tuple[str, Heal]:
    procs.kill9(cfg, "processors-0")
    return "orchestrator processors-0 (one of two)", lambda: apps.start_processors(cfg, range(0, 1))


def kill_payments_consumer(cfg: StackConfig) -> tuple[str, Heal]:
    name = apps.consumer_name("payments", 0)
    procs.kill9(cfg, name)
    return f"{name} (one of two)", lambda: apps.start_consumer(cfg, "payments", instance=0)


def kill_orders_api(cfg: StackConfig) -> tuple[str, Heal]:
    procs.kill9(cfg, "orders-api-0")
    return "orders-api-0 (one of two)", lambda: apps.start_api(cfg, "orders", 0)


def kill_database_primary(db: str) -> Callable[[StackConfig], tuple[str, Heal]]:
    """kill -9 the primary's Patroni and PostgreSQL (a lost database node): Patroni promotes the standby, HAProxy
    routes to it; healing starts the member again, which rejoins as the standby."""
    def inject(cfg: StackConfig) -> tuple[str, Heal]:
        member = patroni.primary_of(cfg, db)
        if member is None:
            raise RuntimeError(f"{db} has no primary to kill")
        patroni.kill_member(cfg, db, member)
        return (f"{patroni.member_name(db, member)} (primary of {db})",
                lambda: patroni.start_member(cfg, db, member, Secrets(cfg.secrets_file)))
    return inject


# the database kills first: a 10-minute run reaches ~6 faults (a fault waits until the one before has healed and
# settled, and a killed Kafka node or Faust worker can take a minute to be ready again)
ROTATION: tuple[Fault, ...] = (
    Fault("kill -9 the orders database's primary", kill_database_primary("orders")),
    Fault("kill -9 the saga store's primary", kill_database_primary("saga")),
    Fault("kill -9 the Kafka node leading the orders events", kill_leading_broker),
    Fault("SIGSTOP the Kafka node leading the orders events for 30 s", pause_leading_broker),
    Fault("kill -9 the Connect worker running the orders connector", kill_orders_connect_worker),
    Fault("kill -9 one of two saga orchestrators", kill_orchestrator),
    Fault("kill -9 one of two payments command consumers", kill_payments_consumer),
    Fault("kill -9 one of two orders API instances", kill_orders_api),
)
