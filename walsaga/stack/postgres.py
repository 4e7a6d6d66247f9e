"""One PostgreSQL cluster per database (own port, own data dir), wal_level=logical, least-privileged roles."""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import psycopg

from walsaga.stack import roles
from walsaga.stack.config import DATABASES, Secrets, StackConfig, db_url, password_key, role_name
from walsaga.stack.procs import nice_prefix, say, wait_for

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_bin(tool: str) -> str:
    for d in PG_BIN_CANDIDATES:
        if (d / tool).exists():
            return str(d / tool)
    found = shutil.which(tool)
    if not found:
        raise RuntimeError(f"PostgreSQL's {tool} not found: run `make install` (installs Debian's postgresql)")
    return found


def _as_postgres_user() -> list[str]:
    # postgres refuses to run as root; as root we run it as Debian's `postgres` user.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


OUTSIDE = Path("/var/lib/walsaga")  # clusters of a stack home the postgres user cannot reach (under /root)


def pg_root(cfg: StackConfig) -> Path:
    """The clusters' parent dir. As root, it must be reachable by the postgres user, which a home under /root is not."""
    inside = cfg.data / "pg"
    if os.geteuid() != 0 or _postgres_reaches(cfg.home.parent):
        return inside
    return OUTSIDE / hashlib.sha1(str(cfg.home).encode()).hexdigest()[:12] / "pg"


@functools.cache
def _postgres_reaches(path: Path) -> bool:
    return subprocess.run(_as_postgres_user() + ["test", "-x", str(path)], capture_output=True).returncode == 0


def make_cluster_dir(cfg: StackConfig, data: Path) -> None:
    root = pg_root(cfg)
    if root.is_relative_to(OUTSIDE):
        for path in (OUTSIDE, root.parent):
            path.mkdir(exist_ok=True)
            path.chmod(0o711)  # the postgres user passes through, whatever the umask of the process that made them
    data.mkdir(parents=True, exist_ok=True)


def cluster_dir(cfg: StackConfig, db: str) -> Path:
    return pg_root(cfg) / db


def chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def init_cluster(cfg: StackConfig, db: str, secrets: Secrets) -> None:
    data = cluster_dir(cfg, db)
    if (data / "PG_VERSION").exists():
        return
    say(f"postgres[{db}]: initdb")
    make_cluster_dir(cfg, data)
    for p in (data, data.parent):
        chown_to_postgres(p)
    pwfile = data.parent / f".{db}.pw"
    pwfile.write_text(secrets.get(password_key(db, "admin")))
    pwfile.chmod(0o600)
    chown_to_postgres(pwfile)
    try:
        subprocess.run(
            _as_postgres_user() + [pg_bin("initdb"), "-D", str(data), "-U", role_name(db, "admin"),
                                   f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                                   "--encoding=UTF8", "--no-instructions"],
            check=True, capture_output=True)
    finally:
        pwfile.unlink(missing_ok=True)
    conf = data / "walsaga.conf"
    own = {"listen_addresses": "'127.0.0.1'", "port": str(cfg.ports.postgres(db)),
           "unix_socket_directories": f"'{data}'"}
    shared = {k: f"'{v}'" if k == "shared_preload_libraries" else v for k, v in parameters(cfg).items()}
    conf.write_text("".join(f"{k} = {v}\n" for k, v in {**own, **shared}.items()))
    chown_to_postgres(conf)
    with open(data / "postgresql.conf", "a") as f:
        f.write("\ninclude 'walsaga.conf'\n")


def parameters(cfg: StackConfig) -> dict[str, str]:
    """Every walsaga cluster's settings, single-node or a Patroni member."""
    return {
        "wal_level": "logical",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "max_connections": "300",
        "shared_buffers": "128MB",
        # A stopped connector must not fill the disk: past this much retained WAL the slot is invalidated (loudly).
        "max_slot_wal_keep_size": "4GB",
        "shared_preload_libraries": "pg_stat_statements",
    }


def write_hba(cfg: StackConfig, db: str) -> None:
    """The whole pg_hba.conf, on every start (initdb's default lets every role ask for physical replication): the
    admin from anywhere local, the database's own roles to it alone, and the CDC role also to replicate it - only
    logically, as a logical replication connection names its database (no `replication` line: no base backups)."""
    hba = cluster_dir(cfg, db) / "pg_hba.conf"
    own = ",".join(role_name(db, r) for r in ("owner", "app", "reader", "cdc"))
    hba.write_text("\n".join([
        "# written by walsaga/stack/postgres.py on every start; edits are overwritten",
        "# TYPE  DATABASE  USER  ADDRESS  METHOD",
        f"local   all   {role_name(db, 'admin')}   scram-sha-256",
        f"host    all   {role_name(db, 'admin')}   127.0.0.1/32   scram-sha-256",
        f"host    {db}   {own}   127.0.0.1/32   scram-sha-256",
        "",
    ]))
    chown_to_postgres(hba)
    hba.chmod(0o600)


def is_running(cfg: StackConfig, db: str) -> bool:
    data = cluster_dir(cfg, db)
    if not (data / "postmaster.pid").exists():
        return False
    res = subprocess.run(_as_postgres_user() + [pg_bin("pg_ctl"), "status", "-D", str(data)], capture_output=True)
    return res.returncode == 0


def start_cluster(cfg: StackConfig, db: str) -> None:
    if is_running(cfg, db):
        return
    data = cluster_dir(cfg, db)
    log = data.parent / f"{db}.log"
    say(f"postgres[{db}]: starting on port {cfg.ports.postgres(db)}")
    nice = nice_prefix(cfg.edge_nice if db == "views" else 0)  # the read model's store serves the reads
    subprocess.run(nice + _as_postgres_user() + [pg_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(data),
                                                 "-l", str(log)], check=True, capture_output=True)
    link = cfg.logs / f"postgres-{db}.log"
    if not link.exists():
        link.symlink_to(log)


def stop_cluster(cfg: StackConfig, db: str, mode: str = "fast") -> None:
    if not is_running(cfg, db):
        return
    say(f"postgres[{db}]: stopping ({mode})")
    subprocess.run(_as_postgres_user() + [pg_bin("pg_ctl"), "stop", "-w", "-m", mode, "-D",
                                          str(cluster_dir(cfg, db))], capture_output=True)


def _accepts(url: str, times: int = 1) -> bool:
    """`times` connections in a row succeed. In the HA profile two HAProxy processes share the port and each finds a
    newly promoted primary with its own checks, up to a check interval apart: a client the kernel hands to the later
    one meanwhile has its connection closed. Several connections in a row reach both (the kernel spreads them)."""
    for _ in range(times):
        psycopg.connect(url, connect_timeout=2).close()
    return True


def ensure_roles(cfg: StackConfig, db: str, secrets: Secrets) -> None:
    """The database's roles and privileges (walsaga/stack/roles.py), and pg_hba.conf taken in."""
    admin_url = db_url(cfg, db, "admin", driver="postgresql").replace(f"/{db}", "/postgres")
    timeout = 60 if cfg.postgres_members == 1 else 180  # a Patroni pair: initdb, then the standby's base backup
    times = 1 if cfg.postgres_members == 1 else 8
    wait_for(f"postgres[{db}] accepts connections", lambda: _accepts(admin_url, times), timeout=timeout)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
        roles.ensure_roles(conn, db, {r: secrets.get(password_key(db, r)) for r in roles.LOGIN_ROLES})
    with psycopg.connect(db_url(cfg, db, "admin", driver="postgresql"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        roles.grant_privileges(conn, db)


def up(cfg: StackConfig, secrets: Secrets) -> None:
    if cfg.postgres_members > 1:
        from walsaga.stack import etcd, patroni, pg_proxy  # the HA profile's; they import this module

        etcd.start(cfg)
        patroni.start(cfg, secrets)
        pg_proxy.start(cfg)
    else:
        for db in DATABASES:
            init_cluster(cfg, db, secrets)
            write_hba(cfg, db)
            start_cluster(cfg, db)
    for db in DATABASES:
        ensure_roles(cfg, db, secrets)


def down(cfg: StackConfig) -> None:
    if cfg.postgres_members > 1:
        from walsaga.stack import etcd, patroni, pg_proxy

        pg_proxy.stop(cfg)
        patroni.stop(cfg)
        etcd.stop(cfg)
    for db in DATABASES:
        stop_cluster(cfg, db)


def wipe(cfg: StackConfig) -> None:
    root = pg_root(cfg)
    if root.exists():
        shutil.rmtree(root, onerror=_vanished_is_fine)


def _vanished_is_fine(func: Callable[..., object], path: str,
                      exc_info: tuple[type[BaseException], BaseException, TracebackType]) -> None:
    """A file a stopping cluster removed itself between listing and unlinking is gone either way."""
    if not issubclass(exc_info[0], FileNotFoundError):
        raise
