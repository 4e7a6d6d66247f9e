"""The JVM half: a KRaft Kafka broker and a Kafka Connect worker, both run from the jars `make install` fetched."""
from __future__ import annotations

import base64
import dataclasses
import subprocess
import uuid
from functools import partial
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from cdc.connectors import ConnectClient, connector_class
from services.common.kafka_access import KafkaAccess
from walsaga.stack import connect_offsets, kafka_acls, procs, runtime_user
from walsaga.stack.config import REPO, StackConfig, connect_credentials

TEMPLATES = REPO / "stack" / "templates"
BROKER_HEAP = "-Xmx768m"
CONNECT_HEAP = "-Xmx768m"
REBALANCE_DELAY_MS = 10_000  # scheduled.rebalance.max.delay.ms of every Connect worker


def _render(cfg: StackConfig, template: str, target: str, values: dict[str, object]) -> Path:
    """The template filled in, readable by this user only (the brokers' and Connect's files hold passwords)."""
    return runtime_user.write_private(cfg.etc / target, (TEMPLATES / template).read_text().format(**values))


def _java(cfg: StackConfig, main: str, heap: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
    if not cfg.lib_dir.exists():
        raise RuntimeError(f"{cfg.lib_dir} is missing: run `make install` first")
    return ["java", heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={TEMPLATES / 'log4j2.xml'}", *jvm,
            "-cp", f"{cfg.lib_dir}/*", main, *args]


def broker_data(cfg: StackConfig, node: int) -> Path:
    return cfg.data / ("kafka" if node == 1 else f"kafka-{node}")


def _broker_props(cfg: StackConfig, node: int) -> Path:
    if cfg.kafka_nodes == 1:
        # one node: a dynamic quorum it forms alone (formatted with --standalone)
        quorum = f"controller.quorum.bootstrap.servers=127.0.0.1:{cfg.ports.kafka_controller_node(1)}"
    else:
        # several: a static quorum of every node, each broker + controller; a majority must be up to elect a leader
        quorum = "controller.quorum.voters=" + ",".join(
            f"{n}@127.0.0.1:{cfg.ports.kafka_controller_node(n)}" for n in range(1, cfg.kafka_nodes + 1))
    return _render(cfg, "kafka-server.properties", f"kafka-server-{node}.properties", {
        "node_id": node, "quorum": quorum,
        "kafka_port": cfg.ports.kafka_node(node), "kafka_controller_port": cfg.ports.kafka_controller_node(node),
        "kafka_data": broker_data(cfg, node),
        "replication_factor": cfg.replication_factor, "min_insync": cfg.min_insync_replicas,
        "broker_user": kafka_acls.BROKER, "broker_password": kafka_acls.access(cfg, kafka_acls.BROKER).password,
        "admin_user": kafka_acls.ADMIN, "admin_password": kafka_acls.admin(cfg).password,
    })


def _cluster_id(cfg: StackConfig) -> str:
    """One id for every node of the cluster, kept with the data so a node formatted later joins the same cluster."""
    path = cfg.data / "kafka-cluster-id"
    if path.exists():
        return path.read_text().strip()
    cluster_id = "-"
    while not cluster_id[0].isalnum():  # one starting with "-" would be read as an option by StorageTool
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.write_text(cluster_id)
    return cluster_id


def start_broker(cfg: StackConfig, node: int = 1, wait: bool = True) -> None:
    """Formats the node's storage on first start, then runs it."""
    props = _broker_props(cfg, node)
    name = cfg.broker_names()[node - 1]
    if not (broker_data(cfg, node) / "meta.properties").exists():
        procs.say(f"{name}: formatting KRaft storage")
        standalone = ["--standalone"] if cfg.kafka_nodes == 1 else []
        subprocess.run(_java(cfg, "kafka.tools.StorageTool", "-Xmx256m", "format", *standalone, "-t",
                             _cluster_id(cfg), "-c", str(props)), check=True, capture_output=True,
                       preexec_fn=runtime_user.dropper(runtime_user.account()))  # its files: the runtime user's
    procs.start(cfg, name, _java(cfg, "kafka.Kafka", BROKER_HEAP, str(props)))
    if wait:
        _wait_broker(cfg, node)


def start_brokers(cfg: StackConfig) -> None:
    """Every node at once (a quorum of several needs a majority up before any of them serves), then waits."""
    for node in range(1, cfg.kafka_nodes + 1):
        start_broker(cfg, node, wait=False)
    for node in range(1, cfg.kafka_nodes + 1):
        _wait_broker(cfg, node)


def _wait_broker(cfg: StackConfig, node: int) -> None:
    name = cfg.broker_names()[node - 1]
    procs.wait_for(f"{name} (kafka node {node})", lambda: _broker_ready(cfg, node), timeout=120,
                   log=cfg.logs / f"{name}.log")


def _broker_ready(cfg: StackConfig, node: int) -> bool:
    """The node answers and the cluster it reports counts it among its live brokers."""
    node_only = dataclasses.replace(kafka_acls.admin(cfg), bootstrap=f"127.0.0.1:{cfg.ports.kafka_node(node)}")
    admin = AdminClient(node_only.confluent({"socket.timeout.ms": 2000, "log_level": 0}))
    md = admin.list_topics(timeout=2)
    return node in md.brokers


def start_connect(cfg: StackConfig, worker: int | None = None) -> None:
    """One Connect worker, or every configured one; they form one group and share the connectors' tasks."""
    connect_offsets.clear_stopped(cfg)  # the offsets `down` recorded stop being true once a worker runs
    for w in range(cfg.connect_workers) if worker is None else (worker,):
        name = cfg.connect_names()[w]
        props = _render(cfg, "connect-distributed.properties", f"connect-distributed-{w}.properties", {
            "kafka_bootstrap": cfg.kafka_bootstrap, "connect_port": cfg.ports.connect_worker(w),
            "plugin_path": cfg.plugin_dir, "replication_factor": cfg.replication_factor,
            # a departed worker's tasks move after this delay (Connect's default, 5 min, waits for it to come back).
            # A lone worker too: after the broker was away longer than its session it rejoins as a new member, and
            # its own connectors stayed unassigned for the whole delay, every CDC stream with them (fault case 5b)
            "rebalance_delay_ms": REBALANCE_DELAY_MS,
            "secrets_file": cfg.secrets_file,
            "kafka_user": kafka_acls.CONNECT, "kafka_password": kafka_acls.access(cfg, kafka_acls.CONNECT).password,
        })
        jaas = _connect_users(cfg)
        procs.start(cfg, name, _java(cfg, "org.apache.kafka.connect.cli.ConnectDistributed", CONNECT_HEAP,
                                     str(props), jvm=(f"-Djava.security.auth.login.config={jaas}",)))
        procs.wait_for(f"{name} REST", partial(_connect_ready, cfg, w), timeout=180, log=cfg.logs / f"{name}.log")


def _connect_users(cfg: StackConfig) -> Path:
    """The REST API's one user (from the stack's secrets) and the JAAS file that points Connect at it."""
    user, password = connect_credentials(cfg)
    users = runtime_user.write_private(cfg.connect_users_file, f"{user}: {password}\n")
    return runtime_user.write_private(cfg.etc / "connect-jaas.conf", (
        "KafkaConnect {\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule "
        f'required\n  file="{users}";\n}};\n'))


def connect_client(cfg: StackConfig, url: str | None = None, timeout: float = 10.0) -> ConnectClient:
    """A client of Connect's REST API with the stack's credentials: `url`, or the first worker that answers."""
    return ConnectClient(url or live_connect_url(cfg), timeout, connect_credentials(cfg))


def _connect_ready(cfg: StackConfig, worker: int) -> bool:
    plugins = connect_client(cfg, f"http://127.0.0.1:{cfg.ports.connect_worker(worker)}", 2).plugins()
    wanted = connector_class()
    return any(p["class"] == wanted for p in plugins)


def partition_leader(cfg: StackConfig, topic: str, partition: int) -> int:
    """The node id leading the partition now (-1 while it has none)."""
    admin = AdminClient(kafka_acls.admin(cfg).confluent({"log_level": 0}))
    return int(admin.list_topics(topic, timeout=10).topics[topic].partitions[partition].leader)


def connect_worker_index(cfg: StackConfig, worker_id: str) -> int:
    """Which of cfg.connect_names() a Connect worker id ("host:port", as task statuses name it) is."""
    port = int(worker_id.rsplit(":", 1)[1])
    return next(w for w in range(cfg.connect_workers) if cfg.ports.connect_worker(w) == port)


def live_connect_url(cfg: StackConfig) -> str:
    """The REST URL of the first Connect worker that answers (any worker forwards to the group's leader)."""
    for worker in range(cfg.connect_workers):
        url = f"http://127.0.0.1:{cfg.ports.connect_worker(worker)}"
        try:
            ConnectClient(url, 2, connect_credentials(cfg)).root()
            return url
        except OSError:
            continue
    return cfg.connect_url


def consumer_lag(kafka: KafkaAccess) -> dict[str, int]:
    """Records not yet consumed (and committed) per active consumer group: what every stream processor and consumer
    of the stack still has to do. Groups without members (a finished tool's) are left out; groups in a rebalance
    (a worker just restarted) count."""
    admin = AdminClient(kafka.confluent({"log_level": 3}))
    active = {ConsumerGroupState.STABLE, ConsumerGroupState.PREPARING_REBALANCING,
              ConsumerGroupState.COMPLETING_REBALANCING}
    listed = admin.list_consumer_groups(states=active).result(timeout=10)
    groups = [g.group_id for g in listed.valid]
    if not groups:
        return {}
    probe = Consumer(kafka.confluent({"group.id": "walsaga-lag-probe", "log_level": 3, "enable.auto.commit": False}))
    lag: dict[str, int] = {}
    try:
        for group in groups:
            offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
            behind = 0
            for tp in offsets.result(timeout=10).topic_partitions or []:
                if tp.offset < 0:
                    continue
                _, high = probe.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
                behind += max(0, high - tp.offset)
            lag[group] = behind
    finally:
        probe.close()
    return lag
