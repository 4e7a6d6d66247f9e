"""HA profile: every database a Patroni-managed pair, a primary and a synchronous streaming standby, with automatic
failover through the etcd cluster (walsaga/stack/etcd.py). Clients never name a member: HAProxy
(walsaga/stack/pg_proxy.py) sends them to whichever member Patroni's REST API calls the primary, on the database's
usual port.

- **Synchronous replication** (Patroni's synchronous_mode): a commit returns only once the standby has it, so a
  promoted standby holds every transaction a client was told about; with the standby gone the primary goes on alone
  (Patroni drops the synchronous requirement) rather than stopping writes.
- **The Debezium slot survives a failover**: it is a permanent logical slot, which Patroni creates on the primary,
  copies to the standby and keeps advancing there (it needs hot_standby_feedback, which Patroni turns on).
- **A failover that could skip an event is refused**: `pre_promote` runs walsaga/stack/promote_gate.py.
- Patroni drops any slot it was not told about, so every Debezium slot is declared here.

Patroni (Debian's, 3.0.2) runs as `postgres`; its config, with the passwords, is that user's alone (0600).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from cdc import connectors as cdc_connectors
from walsaga.stack import connect_offsets, etcd, procs
from walsaga.stack.config import DATABASES, SERVICES, Secrets, StackConfig, password_key, role_name
from walsaga.stack.postgres import PG_BIN_CANDIDATES, chown_to_postgres, make_cluster_dir, parameters, pg_root

MEMBERS = (1, 2)
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's patroni runs on it; it has psycopg2 for the promote gate
REPLICATOR = "walsaga_replicator"
REST_USER = "walsaga"


def binary() -> str:
    found = shutil.which("patroni")
    if not found:
        raise RuntimeError("patroni not found: run `make install` (installs Debian's patroni for the HA profile)")
    return found


def process_name(db: str, member: int) -> str:
    return f"patroni-{db}-{member}"


def member_name(db: str, member: int) -> str:
    return f"{db}-{member}"


def data_dir(cfg: StackConfig, db: str, member: int) -> Path:
    return pg_root(cfg) / member_name(db, member)


def socket_dir(cfg: StackConfig, db: str, member: int) -> Path:
    return pg_root(cfg) / f".{member_name(db, member)}.sock"


def verdict_file(cfg: StackConfig, db: str, member: int) -> Path:
    """The promote gate's last verdict on this member (walsaga/stack/promote_gate.py)."""
    return pg_root(cfg) / f"{member_name(db, member)}.promote-gate"


def slot_of(db: str) -> str | None:
    """The Debezium slot of a participant's database; the saga store and the views have none."""
    return cdc_connectors.identity(db)[1]["slot.name"] if db in SERVICES else None


def config(cfg: StackConfig, db: str, member: int, secrets: Secrets) -> dict[str, Any]:
    data = data_dir(cfg, db, member)
    own = ",".join(role_name(db, r) for r in ("owner", "app", "reader", "cdc"))
    admin = role_name(db, "admin")
    slot = slot_of(db)
    pg: dict[str, Any] = {
        "listen": f"127.0.0.1:{cfg.ports.pg_member(db, member)}",
        "connect_address": f"127.0.0.1:{cfg.ports.pg_member(db, member)}",
        "data_dir": str(data),
        "bin_dir": str(PG_BIN_CANDIDATES[0]) if PG_BIN_CANDIDATES else "",
        "pgpass": str(pg_root(cfg) / f".{member_name(db, member)}.pgpass"),
        "authentication": {
            "superuser": {"username": admin, "password": secrets.get(password_key(db, "admin"))},
            "replication": {"username": REPLICATOR, "password": secrets.get(password_key(db, "replicator"))},
        },
        # not in the data directory: pg_rewind would copy the other member's socket lock files into it
        "parameters": {"unix_socket_directories": str(socket_dir(cfg, db, member))},
        # a former primary that cannot be rewound (or diverged) is cloned again from the primary: it is a standby
        # of a small database, and a member that cannot rejoin is a pair without a standby
        "remove_data_directory_on_rewind_failure": True,
        "remove_data_directory_on_diverged_timelines": True,
        # the same rules as the single-node clusters' (walsaga/stack/postgres.py write_hba), plus the standby's
        # physical replication (and pg_rewind, as the admin, after a failover)
        "pg_hba": [f"local all {admin} scram-sha-256",
                   f"host all {admin} 127.0.0.1/32 scram-sha-256",
                   f"host {db} {own} 127.0.0.1/32 scram-sha-256",
                   f"host replication {REPLICATOR} 127.0.0.1/32 scram-sha-256"],
    }
    if slot:
        pg["pre_promote"] = f"{SYSTEM_PYTHON} {gate_script(cfg)} {gate_params_file(cfg, db, member)}"
    dcs: dict[str, Any] = {
        # a member is declared dead 10 s after its last heartbeat; Patroni needs loop_wait + 2 retry_timeout <= ttl
        "ttl": 10, "loop_wait": 2, "retry_timeout": 4,
        "maximum_lag_on_failover": 1024 * 1024,
        "synchronous_mode": True,
        "failsafe_mode": True,
        "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": parameters(cfg)},
    }
    if slot:
        dcs["slots"] = {slot: {"type": "logical", "database": db, "plugin": "pgoutput"}}
    return {
        "scope": f"walsaga-{db}",
        "namespace": f"/{etcd.cluster_token(cfg)}/",
        "name": member_name(db, member),
        "log": {"level": "WARNING"},
        "restapi": {"listen": f"127.0.0.1:{cfg.ports.patroni_rest(db, member)}",
                    "connect_address": f"127.0.0.1:{cfg.ports.patroni_rest(db, member)}",
                    "authentication": {"username": REST_USER, "password": secrets.get("patroni.rest.password")}},
        "etcd3": {"hosts": etcd.endpoints(cfg)},
        "bootstrap": {"dcs": dcs,
                      "initdb": [{"encoding": "UTF8"}, "data-checksums", {"auth-host": "scram-sha-256"},
                                 {"auth-local": "scram-sha-256"}]},
        "postgresql": pg,
        "tags": {},
    }


def gate_script(cfg: StackConfig) -> Path:
    return pg_root(cfg) / "promote_gate.py"


def gate_params_file(cfg: StackConfig, db: str, member: int) -> Path:
    return pg_root(cfg) / f".{member_name(db, member)}.promote-gate.json"


def gate_params(cfg: StackConfig, db: str, member: int, secrets: Secrets) -> dict[str, Any]:
    name, _ = cdc_connectors.identity(db)
    return {"member": member_name(db, member), "database": db, "slot": slot_of(db), "connector": name,
            "socket_dir": str(socket_dir(cfg, db, member)), "port": cfg.ports.pg_member(db, member),
            "admin_user": role_name(db, "admin"), "admin_password": secrets.get(password_key(db, "admin")),
            "connect_urls": [f"http://127.0.0.1:{cfg.ports.connect_worker(w)}" for w in range(cfg.connect_workers)],
            "connect_user": "walsaga", "connect_password": secrets.get("connect.rest.password"),
            "stopped_offsets_file": str(connect_offsets.stopped_file(cfg, db)),
            "verdict_file": str(verdict_file(cfg, db, member))}


def _write_postgres_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    chown_to_postgres(tmp)
    tmp.replace(path)


def start(cfg: StackConfig, secrets: Secrets) -> None:
    """Every member's Patroni; each pair bootstraps itself (one initdb, the other a pg_basebackup of it)."""
    make_cluster_dir(cfg, pg_root(cfg))
    chown_to_postgres(pg_root(cfg))  # Patroni makes its members' data directories in it
    gate = gate_script(cfg)
    shutil.copyfile(Path(__file__).with_name("promote_gate.py"), gate)
    gate.chmod(0o644)
    for db in DATABASES:
        for member in MEMBERS:
            start_member(cfg, db, member, secrets)


def start_member(cfg: StackConfig, db: str, member: int, secrets: Secrets) -> None:
    """One member's Patroni: a new member clones the primary; a former primary rejoins as a standby (pg_rewind)."""
    conf = pg_root(cfg) / f".{member_name(db, member)}.patroni.yml"
    sockets = socket_dir(cfg, db, member)
    sockets.mkdir(mode=0o700, exist_ok=True)
    chown_to_postgres(sockets)
    _write_postgres_private(conf, json.dumps(config(cfg, db, member, secrets), indent=1))
    if slot_of(db):
        _write_postgres_private(gate_params_file(cfg, db, member), json.dumps(gate_params(cfg, db, member, secrets)))
    nice = cfg.edge_nice if db == "views" else 0  # the read model's store serves the reads
    procs.start(cfg, process_name(db, member), [binary(), str(conf)], user="postgres", nice=nice,
                env={"MALLOC_ARENA_MAX": "1", "PYTHONPATH": ""}, cwd=pg_root(cfg))


def kill_member(cfg: StackConfig, db: str, member: int) -> None:
    """A node lost at once (the fault suite's): kill -9 its Patroni and its PostgreSQL."""
    pid = postmaster_pid(cfg, db, member)
    procs.kill9(cfg, process_name(db, member))
    if pid is not None:
        try:  # the postmaster and its backends: a process group Patroni started in a session of its own
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while procs.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def member_state(cfg: StackConfig, db: str, member: int) -> dict[str, Any]:
    """Patroni's own view of its member (GET /patroni): role, state, timeline, replication positions."""
    with urllib.request.urlopen(f"http://127.0.0.1:{cfg.ports.patroni_rest(db, member)}/patroni", timeout=2) as r:
        return dict(json.load(r))


def in_sync_standby(cfg: StackConfig, db: str, member: int) -> bool:
    """The member streams as the synchronous standby and, in a participant's database, holds its copy of the
    Debezium slot: the pair can fail over safely again."""
    try:
        me = member_state(cfg, db, member)
    except (OSError, ValueError):
        return False
    if me.get("role") != "replica" or me.get("state") != "running" or not me.get("sync_standby"):
        return False
    slot = slot_of(db)
    return slot is None or has_slot(cfg, db, member, slot)


def wait_failover_ready(cfg: StackConfig, dbs: tuple[str, ...] = DATABASES, timeout: float = 180.0) -> None:
    """Waits until every pair can fail over safely: a primary and a synchronous standby holding its copy of the
    Debezium slot. Until then Patroni would not promote the standby (or the promote gate would refuse it), so a
    primary lost in the first minute after `up` left its database without one."""
    for db in dbs:
        procs.wait_for(f"{db}: synchronous standby with its slot copy", partial(_standby_ready, cfg, db),
                       timeout=timeout, interval=1.0)


def _standby_ready(cfg: StackConfig, db: str) -> bool:
    primary = primary_of(cfg, db)
    return primary is not None and in_sync_standby(cfg, db, next(m for m in MEMBERS if m != primary))


def has_slot(cfg: StackConfig, db: str, member: int, slot: str) -> bool:
    password = Secrets(cfg.secrets_file).get(password_key(db, "admin"))
    with psycopg.connect(host="127.0.0.1", port=cfg.ports.pg_member(db, member), dbname="postgres",
                         user=role_name(db, "admin"), password=password, connect_timeout=2) as conn:
        return conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone() is not None


def primary_of(cfg: StackConfig, db: str) -> int | None:
    """The member Patroni runs as the primary now, if any."""
    for member in MEMBERS:
        try:
            if member_state(cfg, db, member).get("role") in ("master", "primary"):
                return member
        except (OSError, ValueError):
            continue
    return None


def postmaster_pid(cfg: StackConfig, db: str, member: int) -> int | None:
    try:
        return int((data_dir(cfg, db, member) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop(cfg: StackConfig) -> None:
    """Every member's Patroni (which stops its PostgreSQL first), the pairs side by side. In each pair the standby
    goes first, so no primary fails over on the way down."""
    def stop_pair(db: str) -> None:
        primary = primary_of(cfg, db)
        for member in [m for m in MEMBERS if m != primary] + ([primary] if primary else []):
            procs.stop(cfg, process_name(db, member), timeout=60)

    with ThreadPoolExecutor(len(DATABASES)) as pool:
        list(pool.map(stop_pair, DATABASES))
