"""The JVM half: a KRaft Kafka broker and a Kafka Connect worker, both run from the jars `make install` fetched."""
from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from walsaga.stack import procs
from walsaga.stack.config import REPO, StackConfig

TEMPLATES = REPO / "stack" / "templates"
BROKER_HEAP = "-Xmx768m"
CONNECT_HEAP = "-Xmx768m"


def _render(cfg: StackConfig, template: str, target: str) -> Path:
    values = {
        "kafka_port": cfg.ports.kafka,
        "kafka_controller_port": cfg.ports.kafka_controller,
        "connect_port": cfg.ports.connect,
        "kafka_data": cfg.data / "kafka",
        "plugin_path": cfg.plugin_dir,
    }
    out = cfg.etc / target
    out.write_text((TEMPLATES / template).read_text().format(**values))
    return out


def _java(cfg: StackConfig, main: str, heap: str, *args: str) -> list[str]:
    if not cfg.lib_dir.exists():
        raise RuntimeError(f"{cfg.lib_dir} is missing: run `make install` first")
    return ["java", heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={TEMPLATES / 'log4j2.xml'}",
            "-cp", f"{cfg.lib_dir}/*", main, *args]


def start_broker(cfg: StackConfig) -> None:
    props = _render(cfg, "kafka-server.properties", "kafka-server.properties")
    data = cfg.data / "kafka"
    if not (data / "meta.properties").exists():
        procs.say("kafka: formatting KRaft storage")
        cluster_id = "-"
        while not cluster_id[0].isalnum():  # one starting with "-" would be read as an option by StorageTool
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run(_java(cfg, "kafka.tools.StorageTool", "-Xmx256m", "format", "--standalone", "-t",
                             cluster_id, "-c", str(props)), check=True, capture_output=True)
    procs.start(cfg, "kafka", _java(cfg, "kafka.Kafka", BROKER_HEAP, str(props)))
    procs.wait_for("kafka broker", lambda: _broker_ready(cfg), timeout=120, log=cfg.logs / "kafka.log")


def _broker_ready(cfg: StackConfig) -> bool:
    admin = AdminClient({"bootstrap.servers": cfg.kafka_bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
    md = admin.list_topics(timeout=2)
    return bool(md.brokers)


def start_connect(cfg: StackConfig) -> None:
    props = _render(cfg, "connect-distributed.properties", "connect-distributed.properties")
    procs.start(cfg, "connect", _java(cfg, "org.apache.kafka.connect.cli.ConnectDistributed", CONNECT_HEAP,
                                      str(props)))
    procs.wait_for("kafka connect REST", lambda: _connect_ready(cfg), timeout=180, log=cfg.logs / "connect.log")


def _connect_ready(cfg: StackConfig) -> bool:
    with urllib.request.urlopen(f"{cfg.connect_url}/connector-plugins", timeout=2) as resp:
        plugins = json.load(resp)
    return any(p["class"].endswith("PostgresConnector") for p in plugins)


def consumer_lag(bootstrap: str) -> dict[str, int]:
    """Records not yet consumed (and committed) per active consumer group: what every stream processor and consumer
    of the stack still has to do. Groups without members (a finished tool's) are left out; groups in a rebalance
    (a worker just restarted) count."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    active = {ConsumerGroupState.STABLE, ConsumerGroupState.PREPARING_REBALANCING,
              ConsumerGroupState.COMPLETING_REBALANCING}
    listed = admin.list_consumer_groups(states=active).result(timeout=10)
    groups = [g.group_id for g in listed.valid]
    if not groups:
        return {}
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "walsaga-lag-probe", "log_level": 3,
                      "enable.auto.commit": False})
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
