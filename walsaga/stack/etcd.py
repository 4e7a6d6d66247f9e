"""HA profile: a 3-node etcd cluster, the consensus store the Patroni pairs elect their primaries in (Debian's
etcd-server). A majority (2 of 3) keeps it writable, so no single node is a point of failure; and with Patroni's
failsafe mode a primary keeps its role while etcd is unreachable as long as it still sees its standby."""
from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request

from walsaga.stack import procs, runtime_user
from walsaga.stack.config import StackConfig

NODES = 3


def binary() -> str:
    found = shutil.which("etcd")
    if not found:
        raise RuntimeError("etcd not found: run `make install` (installs Debian's etcd-server for the HA profile)")
    return found


def names() -> list[str]:
    return [f"etcd-{n}" for n in range(1, NODES + 1)]


def endpoints(cfg: StackConfig) -> list[str]:
    return [f"127.0.0.1:{cfg.ports.etcd_client(n)}" for n in range(1, NODES + 1)]


def cluster_token(cfg: StackConfig) -> str:
    """Unique per stack home: an etcd node of another stack can never join this cluster."""
    return "walsaga-" + hashlib.sha1(str(cfg.home).encode()).hexdigest()[:12]


def argv(cfg: StackConfig, node: int) -> list[str]:
    peers = ",".join(f"etcd-{n}=http://127.0.0.1:{cfg.ports.etcd_peer(n)}" for n in range(1, NODES + 1))
    client, peer = f"http://127.0.0.1:{cfg.ports.etcd_client(node)}", f"http://127.0.0.1:{cfg.ports.etcd_peer(node)}"
    return [binary(), "--name", f"etcd-{node}", "--data-dir", str(cfg.data / f"etcd-{node}"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", peers, "--initial-cluster-state", "new",
            "--initial-cluster-token", cluster_token(cfg),
            # a local cluster: a quarter-second heartbeat keeps idle CPU low and still elects within ~3 s
            "--heartbeat-interval", "250", "--election-timeout", "2500",
            "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1h",
            "--quota-backend-bytes", str(256 * 1024 * 1024), "--log-level", "warn"]


def start(cfg: StackConfig) -> None:
    for node, name in enumerate(names(), start=1):
        data = cfg.data / name
        data.mkdir(exist_ok=True)
        runtime_user.own(data, 0o700)
        procs.start(cfg, name, argv(cfg, node))
    procs.wait_for("etcd quorum", lambda: healthy(cfg) >= 2, timeout=60, log=cfg.logs / "etcd-1.log")


def healthy(cfg: StackConfig) -> int:
    """How many nodes answer /health with health true."""
    return sum(1 for n in range(1, NODES + 1) if node_health(cfg, n))


def node_health(cfg: StackConfig, node: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{cfg.ports.etcd_client(node)}/health", timeout=2) as resp:
            return bool(json.load(resp).get("health") == "true")
    except (OSError, ValueError):
        return False


def leader_id(cfg: StackConfig, node: int) -> tuple[bool, int | None]:
    """(is this node the raft leader, raft index) from its own /v3 maintenance status."""
    req = urllib.request.Request(f"http://127.0.0.1:{cfg.ports.etcd_client(node)}/v3/maintenance/status",
                                 data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=2) as resp:
        body = json.load(resp)
    return body.get("leader") == body.get("header", {}).get("member_id"), int(body.get("raftIndex", 0))


def stop(cfg: StackConfig) -> None:
    for name in names():
        procs.stop(cfg, name)
