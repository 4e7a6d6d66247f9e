"""`walsaga restart --ha --rolling`: what an upgrade does to the HA profile's stack. Every component is restarted one
node at a time, and each node is back and healthy before the next one goes, so a replicated component always has
a node serving: the databases (each pair's standby first, then a switchover to it, then the former primary), the
etcd quorum, the database proxies, the Kafka nodes (each waits until every replica is in sync again), the Connect
workers (each waits until every connector runs again), the workers and consumers, the API instances, and the
gateway (nginx reloads its workers gracefully: it is one process on this box).

Tiers can be named to restart only some (the CI runs the database tiers; `make faults-ha` all of them)."""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from cdc import connectors as cdc_connectors
from walsaga.stack import apps, etcd, kafka, kafka_acls, patroni, pg_proxy, procs
from walsaga.stack.config import API_SERVICES, DATABASES, SERVICES, Secrets, StackConfig
from walsaga.stack.procs import say, wait_for

TIERS = ("databases", "etcd", "db-proxies", "kafka", "connect", "workers", "apis", "gateway")


@dataclass(frozen=True)
class Step:
    tier: str
    name: str
    restart: Callable[[], None]


def steps(cfg: StackConfig, tiers: Iterable[str] = TIERS) -> list[Step]:
    if cfg.postgres_members < 2 or cfg.kafka_nodes < 3:
        raise RuntimeError("a rolling restart needs the HA profile (walsaga up --ha): the dev stack runs one of each")
    wanted = set(tiers)
    unknown = wanted - set(TIERS)
    if unknown:
        raise ValueError(f"unknown tiers {sorted(unknown)}; the tiers are {', '.join(TIERS)}")
    out: list[Step] = []
    if "databases" in wanted:
        out += [Step("databases", f"postgres[{db}]", _restarter(_database_pair, cfg, db)) for db in DATABASES]
    if "etcd" in wanted:
        out += [Step("etcd", name, _restarter(_etcd_node, cfg, node))
                for node, name in enumerate(etcd.names(), start=1)]
    if "db-proxies" in wanted:
        out += [Step("db-proxies", name, _restarter(_pg_proxy, cfg, name)) for name in pg_proxy.names()]
    if "kafka" in wanted:
        out += [Step("kafka", name, _restarter(_broker, cfg, node))
                for node, name in enumerate(cfg.broker_names(), start=1)]
    if "connect" in wanted:
        out += [Step("connect", name, _restarter(_connect_worker, cfg, worker))
                for worker, name in enumerate(cfg.connect_names())]
    if "workers" in wanted:
        out += [Step("workers", name, _restarter(_worker, cfg, name)) for name in apps.process_names(cfg)
                if "-api-" not in name]
    if "apis" in wanted:
        out += [Step("apis", f"{svc}-api-{i}", _restarter(_api, cfg, f"{svc}-api-{i}"))
                for svc in API_SERVICES for i in range(cfg.api_instances)]
    if "gateway" in wanted:
        out.append(Step("gateway", "gateway", lambda: _reload_gateway(cfg)))
    return out


def run(cfg: StackConfig, tiers: Iterable[str] = TIERS) -> list[tuple[str, float]]:
    """Restarts every step in order; returns how long each took. Progress on the terminal."""
    todo = steps(cfg, tiers)
    done: list[tuple[str, float]] = []
    for k, step in enumerate(todo, start=1):
        say(f"rolling restart {k}/{len(todo)}: {step.name}")
        t0 = time.monotonic()
        step.restart()
        done.append((step.name, time.monotonic() - t0))
    say(f"rolling restart: {len(todo)} nodes restarted in {sum(s for _, s in done):.0f}s")
    return done


def _restarter(fn: Callable[[StackConfig, object], None], cfg: StackConfig, arg: object) -> Callable[[], None]:
    return lambda: fn(cfg, arg)


def _database_pair(cfg: StackConfig, db: object) -> None:
    assert isinstance(db, str)
    primary = patroni.primary_of(cfg, db)
    if primary is None:
        raise RuntimeError(f"{db} has no primary: not restarting a pair that is already down")
    standby = next(m for m in patroni.MEMBERS if m != primary)
    _restart_member(cfg, db, standby)
    switchover(cfg, db, primary, standby)
    _restart_member(cfg, db, primary)


def _restart_member(cfg: StackConfig, db: str, member: int) -> None:
    procs.stop(cfg, patroni.process_name(db, member), timeout=60)
    patroni.start_member(cfg, db, member, Secrets(cfg.secrets_file))
    wait_for(f"{patroni.member_name(db, member)} back as the synchronous standby",
             lambda: patroni.in_sync_standby(cfg, db, member), timeout=180)


def switchover(cfg: StackConfig, db: str, primary: int, candidate: int) -> None:
    """Patroni's planned switchover: the primary steps down once the candidate has everything (and the candidate
    passes the promote gate)."""
    user, password = patroni.REST_USER, Secrets(cfg.secrets_file).get("patroni.rest.password")
    body = json.dumps({"leader": patroni.member_name(db, primary),
                       "candidate": patroni.member_name(db, candidate)}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{cfg.ports.patroni_rest(db, primary)}/switchover", data=body,
                                 method="POST", headers={"Content-Type": "application/json",
                                                         **cdc_connectors.basic_auth(user, password)})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
    except (urllib.error.HTTPError, OSError) as exc:  # refused, or its outcome unknown: see who is primary now
        detail = exc.read().decode(errors="replace") if isinstance(exc, urllib.error.HTTPError) else str(exc)
        say(f"switchover of {db}: {detail.strip()[:200]}; waiting for a primary")
        try:
            wait_for(f"a primary of {db}", lambda: patroni.primary_of(cfg, db) is not None, timeout=120)
        except RuntimeError:
            gate = patroni.verdict_file(cfg, db, candidate)
            verdict = gate.read_text().strip() if gate.exists() else "no promote gate verdict"
            raise RuntimeError(f"switchover of {db} failed and it has no primary ({detail.strip()[:200]}; "
                               f"{verdict})") from exc
        return
    wait_for(f"{patroni.member_name(db, candidate)} primary", lambda: patroni.primary_of(cfg, db) == candidate,
             timeout=60)


def _etcd_node(cfg: StackConfig, node: object) -> None:
    assert isinstance(node, int)
    procs.stop(cfg, f"etcd-{node}")
    procs.start(cfg, f"etcd-{node}", etcd.argv(cfg, node))
    wait_for(f"etcd-{node} healthy", lambda: etcd.healthy(cfg) == etcd.NODES, timeout=60)


def _pg_proxy(cfg: StackConfig, name: object) -> None:
    assert isinstance(name, str)
    procs.stop(cfg, name)
    pg_proxy.start(cfg)  # starts the one that is missing


def _broker(cfg: StackConfig, node: object) -> None:
    assert isinstance(node, int)
    procs.stop(cfg, cfg.broker_names()[node - 1], timeout=60)
    kafka.start_broker(cfg, node)
    wait_for("every replica in sync", lambda: not out_of_sync(cfg), timeout=180)


def out_of_sync(cfg: StackConfig) -> list[tuple[str, int]]:
    md = AdminClient(kafka_acls.admin(cfg).confluent({"log_level": 0})).list_topics(timeout=10)
    return [(t, p.id) for t, topic in md.topics.items() for p in topic.partitions.values()
            if len(p.isrs) < len(p.replicas)]


def _connect_worker(cfg: StackConfig, worker: object) -> None:
    assert isinstance(worker, int)
    procs.stop(cfg, cfg.connect_names()[worker], timeout=30)
    kafka.start_connect(cfg, worker)
    client = kafka.connect_client(cfg)
    for svc in SERVICES:
        cdc_connectors.wait_running(client, cdc_connectors.identity(svc)[0], timeout=180)


def _worker(cfg: StackConfig, name: object) -> None:
    assert isinstance(name, str)
    procs.stop(cfg, name)
    instance = name.rpartition("-")[2]
    if name.startswith("processors-"):
        apps.start_processors(cfg, range(int(instance), int(instance) + 1))
    elif name.startswith("views-"):
        apps.start_views(cfg, range(int(instance), int(instance) + 1))
    elif name.startswith("reconciler-"):
        apps.start_reconciler(cfg, instance=int(instance))
    else:  # a participant's command consumer: orders-consumer, orders-consumer-1
        svc = name.split("-consumer")[0]
        apps.start_consumer(cfg, svc, instance=int(instance) if instance.isdigit() else 0)
        wait_for(f"{name} running", lambda: procs.read_pid(cfg, name) is not None, timeout=30)


def _api(cfg: StackConfig, name: object) -> None:
    assert isinstance(name, str)
    svc, _, instance = name.rpartition("-api-")
    procs.stop(cfg, name)
    apps.start_api(cfg, svc, int(instance))


def _reload_gateway(cfg: StackConfig) -> None:
    """nginx's graceful reload (SIGHUP): new workers take new connections, the old ones finish theirs."""
    pid = procs.read_pid(cfg, "gateway")
    if pid is None:
        raise RuntimeError("the gateway is not running")
    os.kill(pid, signal.SIGHUP)
    wait_for("gateway after reload", lambda: procs.port_open(cfg.ports.gateway), timeout=30)
