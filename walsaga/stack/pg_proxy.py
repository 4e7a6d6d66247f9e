"""HA profile: HAProxy on each database's usual port, passing connections to whichever Patroni member runs as the
primary (`"role": "master"` in GET /patroni; Debezium cannot take a list of hosts; the services, the orchestrator and
the tools need no change). When the primary goes, its sessions are cut so every client reconnects to the new one.

Two HAProxy processes bind the same ports (SO_REUSEPORT, HAProxy's default on Linux): the kernel spreads new
connections over both and stops sending to one that died, so the proxy is not a single point of failure either."""
from __future__ import annotations

import os
import shutil
import subprocess

from walsaga.stack import patroni, procs, runtime_user
from walsaga.stack.config import DATABASES, StackConfig

INSTANCES = (1, 2)


def binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not found:
        raise RuntimeError("haproxy not found: run `make install` (installs Debian's haproxy for the HA profile)")
    return found


def names() -> list[str]:
    return [f"pg-proxy-{i}" for i in INSTANCES]


def render(cfg: StackConfig) -> str:
    lines = [
        "# rendered by walsaga/stack/pg_proxy.py on every start",
        "global",
        "    maxconn 8000",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        # a replication or pooled connection may sit quiet for long; keepalives find a dead peer instead
        "    timeout client 1h",
        "    timeout server 1h",
        "    timeout check 1s",
        "    option clitcpka",
        "    option srvtcpka",
        # a member that reports itself the primary is taken at its first such answer (rise 1: a promoted primary is
        # found by both proxies within half a second of each other), and dropped after two failed checks
        "    default-server inter 1s fastinter 500ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions",
    ]
    for db in DATABASES:
        lines += [f"listen postgres-{db}",
                  f"    bind 127.0.0.1:{cfg.ports.postgres(db)}",
                  # not OPTIONS /primary: that answers 200 as soon as a member holds the leader lock, before its
                  # promotion and through every cycle the promote gate refuses it; the member's role says writable
                  "    option httpchk GET /patroni",
                  "    http-check expect rstring role.{1,4}master"]
        lines += [f"    server {patroni.member_name(db, m)} 127.0.0.1:{cfg.ports.pg_member(db, m)} check port "
                  f"{cfg.ports.patroni_rest(db, m)}" for m in patroni.MEMBERS]
    return "\n".join(lines) + "\n"


def start(cfg: StackConfig) -> None:
    conf = runtime_user.write_private(cfg.etc / "pg-proxy.cfg", render(cfg))
    check = subprocess.run([binary(), "-c", "-q", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode:
        raise RuntimeError(f"haproxy rejects {conf}: {check.stderr.strip()}")
    for name in names():
        procs.start(cfg, name, [binary(), "-db", "-f", str(conf)])


def stop(cfg: StackConfig) -> None:
    for name in names():
        procs.stop(cfg, name)
