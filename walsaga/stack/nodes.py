"""What `walsaga status` reports: every node of the stack with its kind, its role, its state, its pid and how far
behind it is. Each fact is read from the node itself (PostgreSQL says whether it is in recovery, the KRaft quorum
state names the metadata leader, the broker's metadata says which replicas are out of sync, Kafka's group offsets say
how far each consumer group is behind), never assumed from the topology."""
from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from confluent_kafka.admin import AdminClient

from cdc import connectors as cdc_connectors
from cdc.slots import slot_state
from walsaga.stack import apps, etcd, kafka_acls, patroni, pg_proxy, postgres, procs
from walsaga.stack.config import DATABASES, SERVICES, StackConfig, db_url
from walsaga.stack.kafka import broker_data, connect_client, consumer_lag


@dataclass(frozen=True)
class Node:
    name: str
    kind: str          # postgres, kafka-broker, connect-worker, cdc-connector, gateway, api, participant-consumer, ...
    role: str          # primary/standby, quorum-leader/quorum-follower, worker, group member, ...
    state: str         # running / down / the connector's own state
    pid: int | None
    ok: bool
    lag: int | None = None   # WAL bytes (postgres standby, cdc slot), out-of-sync replicas (broker), records (groups)
    detail: str = ""


# process name -> (kind, consumer group), for the Python processes apps.process_names lists
def _process_kind(name: str) -> tuple[str, str | None]:
    if "-api-" in name:
        return "api", None
    service, sep, instance = name.partition("-consumer")
    if sep and (not instance or instance[1:].isdigit()):  # orders-consumer, orders-consumer-1, ...
        return "participant-consumer", f"walsaga-{service}"
    for prefix, kind, group in (("processors-", "orchestrator", "walsaga-processors"),
                                ("views-", "view-projector", "walsaga-views"),
                                ("reconciler-", "reconciler", "walsaga-reconciler")):
        if name.startswith(prefix):
            return kind, group
    return "process", None


def status(cfg: StackConfig) -> list[Node]:
    if cfg.postgres_members > 1:
        nodes = [_member(cfg, db, m) for db in DATABASES for m in patroni.MEMBERS]
        nodes += [_etcd(cfg, n, name) for n, name in enumerate(etcd.names(), start=1)]
        nodes += [_pg_proxy(cfg, name) for name in pg_proxy.names()]
    else:
        nodes = [_postgres(cfg, db) for db in DATABASES]
    nodes.extend(_brokers(cfg))
    nodes.extend(_connect_workers(cfg))
    nodes.extend(_cdc_connectors(cfg))
    nodes.append(_gateway(cfg))
    lag = _group_lag(cfg)
    for name in apps.process_names(cfg):
        nodes.append(_process(cfg, name, lag))
    return nodes


def _postgres(cfg: StackConfig, db: str) -> Node:
    port = cfg.ports.postgres(db)
    pid = _postmaster_pid(cfg, db)
    try:
        with psycopg.connect(db_url(cfg, db, "admin", driver="postgresql"), connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), "
                "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint").fetchone()
            assert row is not None  # a SELECT without FROM returns one row
            standby, behind = row
    except psycopg.Error as exc:
        return Node(f"postgres[{db}]", "postgres", "unknown", "down", pid, False, None,
                    f"port {port}: {exc.__class__.__name__}")
    role = "standby" if standby else "primary"
    return Node(f"postgres[{db}]", "postgres", role, "running", pid, True, behind if standby else None,
                f"port {port}")


def _member(cfg: StackConfig, db: str, member: int) -> Node:
    """A Patroni member, as Patroni itself tells it (GET /patroni): its role, and a standby's lag behind the primary
    in WAL bytes; with the promote gate's verdict when it refused a promotion."""
    name, pid = f"postgres[{patroni.member_name(db, member)}]", patroni.postmaster_pid(cfg, db, member)
    port = cfg.ports.pg_member(db, member)
    try:
        me = patroni.member_state(cfg, db, member)
    except (OSError, ValueError) as exc:
        return Node(name, "postgres", "unknown", "down", pid, False, None,
                    f"port {port}; patroni: {exc.__class__.__name__}")
    patroni_role = str(me.get("role", "unknown"))
    role = {"master": "primary", "primary": "primary", "replica": "standby"}.get(patroni_role, patroni_role)
    lag, detail = None, f"port {port}; timeline {me.get('timeline', '?')}"
    if role == "standby":
        received = me.get("xlog", {}).get("received_location") or me.get("xlog", {}).get("replayed_location")
        primary = patroni.primary_of(cfg, db)
        if primary is not None and received is not None:
            location = patroni.member_state(cfg, db, primary).get("xlog", {}).get("location")
            lag = max(0, int(location) - int(received)) if location is not None else None
        if me.get("sync_standby"):
            detail += "; synchronous"
    gate = patroni.verdict_file(cfg, db, member)
    if gate.exists() and "REFUSED" in (verdict := gate.read_text().strip()):
        detail += f"; promote gate: {verdict}"
    state = str(me.get("state", "unknown"))
    return Node(name, "postgres", role, state, pid, state == "running" and role in ("primary", "standby"), lag,
                detail)


def _etcd(cfg: StackConfig, node: int, name: str) -> Node:
    pid, port = procs.read_pid(cfg, name), cfg.ports.etcd_client(node)
    try:
        leader, index = etcd.leader_id(cfg, node)
    except (OSError, ValueError) as exc:
        return Node(name, "etcd", "unknown", "down", pid, False, None, f"port {port}: {exc.__class__.__name__}")
    return Node(name, "etcd", "raft-leader" if leader else "raft-follower", "running", pid,
                etcd.node_health(cfg, node), None, f"port {port}; raft index {index}")


def _pg_proxy(cfg: StackConfig, name: str) -> Node:
    pid = procs.read_pid(cfg, name)
    return Node(name, "db-proxy", "routes to the primaries", "running" if pid else "down", pid, pid is not None,
                None, "HAProxy on " + ", ".join(str(cfg.ports.postgres(db)) for db in DATABASES))


def _postmaster_pid(cfg: StackConfig, db: str) -> int | None:
    try:
        return int((postgres.cluster_dir(cfg, db) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _brokers(cfg: StackConfig) -> list[Node]:
    try:
        md = AdminClient(kafka_acls.admin(cfg).confluent({"socket.timeout.ms": 2000, "log_level": 0})).list_topics(
            timeout=3)
        partitions = [p for t in md.topics.values() for p in t.partitions.values()]
        live = set(md.brokers)
    except Exception as exc:  # noqa: BLE001 - an unreachable cluster is a status to show
        partitions, live, error = [], set(), exc.__class__.__name__
    else:
        error = ""
    out = []
    for node, name in enumerate(cfg.broker_names(), start=1):
        pid = procs.read_pid(cfg, name)
        port = cfg.ports.kafka_node(node)
        role = _quorum_role(cfg, node)
        if node not in live:
            out.append(Node(name, "kafka-broker", role, "down", pid, False, None,
                            f"port {port}: {error or 'not among the live brokers'}"))
            continue
        led = sum(1 for p in partitions if p.leader == node)
        out_of_sync = sum(1 for p in partitions if node in p.replicas and node not in p.isrs)
        out.append(Node(name, "kafka-broker", role, "running", pid, pid is not None, out_of_sync,
                        f"port {port}; leads {led} of {len(partitions)} partitions"))
    return out


def _quorum_role(cfg: StackConfig, node: int) -> str:
    """From the node's own KRaft quorum state file: whom it last saw as the metadata leader."""
    try:
        quorum = json.loads((broker_data(cfg, node) / "__cluster_metadata-0" / "quorum-state").read_text())
    except (OSError, ValueError):
        return "unknown"
    return "quorum-leader" if quorum.get("leaderId") == node else "quorum-follower"


def _connect_workers(cfg: StackConfig) -> list[Node]:
    out = []
    for worker, name in enumerate(cfg.connect_names()):
        pid = procs.read_pid(cfg, name)
        port = cfg.ports.connect_worker(worker)
        try:
            statuses = connect_client(cfg, f"http://127.0.0.1:{port}", 3).connectors(expand="status")
        except OSError as exc:
            out.append(Node(name, "connect-worker", "worker", "down", pid, False, None,
                            f"port {port}: {exc.__class__.__name__}"))
            continue
        here = f"127.0.0.1:{port}"
        tasks = [t for c in statuses.values() for t in c["status"].get("tasks", []) if t.get("worker_id") == here]
        running = sum(1 for t in tasks if t.get("state") == "RUNNING")
        out.append(Node(name, "connect-worker", "worker", "running", pid, pid is not None, None,
                        f"port {port}; runs {running} connector tasks ({len(tasks)} assigned)"))
    return out


def _cdc_connectors(cfg: StackConfig) -> list[Node]:
    out: list[Node] = []
    client = connect_client(cfg, timeout=3)
    for svc in SERVICES:
        name, config = cdc_connectors.identity(svc)
        try:
            state = cdc_connectors.state_of(client.status(name))
        except OSError as exc:
            state = f"UNREACHABLE ({exc.__class__.__name__})"
        lag = None
        try:
            slot_info = slot_state(db_url(cfg, svc, "admin", driver="postgresql"), config["slot.name"])
            problem = slot_info.problem(svc, not slot_info.exists and client.has_offsets(name))
            slot = slot_info.describe() + (f" -- {problem}" if problem else "")
            slot_ok, lag = slot_info.exists and problem is None, slot_info.lag_bytes
        except Exception as exc:  # noqa: BLE001 - a down database or Connect is a status to show, not a crash
            slot, slot_ok = f"{config['slot.name']}: unknown ({exc.__class__.__name__})", False
        out.append(Node(f"cdc[{svc}]", "cdc-connector", "source", state, None, state == "RUNNING" and slot_ok,
                        lag, f"slot {slot}"))
    return out


def _gateway(cfg: StackConfig) -> Node:
    pid = procs.read_pid(cfg, "gateway")
    up = pid is not None and procs.port_open(cfg.ports.gateway)
    return Node("gateway", "gateway", "edge", "running" if up else "down", pid, up, None,
                f"port {cfg.ports.gateway}")


def _group_lag(cfg: StackConfig) -> dict[str, int]:
    try:
        return consumer_lag(kafka_acls.admin(cfg))
    except Exception:  # noqa: BLE001 - no broker, no lag to show; the broker's own row says why
        return {}


def _process(cfg: StackConfig, name: str, lag: dict[str, int]) -> Node:
    kind, group = _process_kind(name)
    pid = procs.read_pid(cfg, name)
    if kind == "api":
        up = pid is not None and _healthy(cfg, name)
        return Node(name, kind, "instance behind the gateway", "running" if up else "down", pid, up)
    role = f"member of {group}" if group else "process"
    return Node(name, kind, role, "running" if pid else "down", pid, pid is not None,
                lag.get(group) if group else None, "lag: records its group has not yet committed" if group else "")


def _healthy(cfg: StackConfig, name: str) -> bool:
    svc, _, instance = name.rpartition("-api-")
    try:
        return apps.healthy(cfg.ports.api(svc, int(instance)))
    except OSError:
        return False
