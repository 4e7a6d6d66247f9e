"""docker-compose.ha.yml describes the HA profile's topology (issue 11 item 4): three Kafka nodes replicating every
topic three times, two Connect workers in one group, every database a Patroni pair with automatic failover behind two
proxies on its usual name, Debezium's slots declared permanent and guarded by the promote gate, and at least two of
every Python process. Both compose files pass compose-go, the loader Docker Compose v2 is built on
(deploy/compose/check)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdc import connectors
from schemas.participants import PARTICIPANTS
from walsaga.stack.config import DATABASES, SERVICES

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "deploy" / "compose" / "check"
ENV_EXAMPLE = ROOT / "deploy" / "compose" / "env.example"


def _ha() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.ha.yml").read_text())  # type: ignore[no-any-return]


def _replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def test_three_kafka_nodes_replicate_every_topic_three_times() -> None:
    services = _ha()["services"]
    nodes = [services[f"kafka-{n}"]["environment"] for n in (1, 2, 3)]
    assert "kafka" not in services
    assert {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in nodes} == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert [env["KAFKA_NODE_ID"] for env in nodes] == [1, 2, 3]
    for env in nodes:
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    # the init job creates the topics with factor 3, and every client bootstraps from all three nodes
    init = services["init"]["environment"]
    assert init["WALSAGA_KAFKA_REPLICATION"] == "3"
    assert init["WALSAGA_KAFKA_BOOTSTRAP"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    for worker in ("connect-1", "connect-2"):
        assert services[worker]["environment"]["BOOTSTRAP_SERVERS"] == init["WALSAGA_KAFKA_BOOTSTRAP"]


def test_two_connect_workers_share_one_group_and_hand_over_quickly() -> None:
    services = _ha()["services"]
    workers = [services[w]["environment"] for w in ("connect-1", "connect-2")]
    assert {w["GROUP_ID"] for w in workers} == {"walsaga-connect"}
    assert [w["ADVERTISED_HOST_NAME"] for w in workers] == ["connect-1", "connect-2"]
    for w in workers:
        assert w["CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR"] == 3
        assert int(w["CONNECT_SCHEDULED_REBALANCE_MAX_DELAY_MS"]) <= 10_000


def test_every_database_is_a_patroni_pair_behind_two_proxies_on_its_usual_name() -> None:
    ha = _ha()
    services, configs = ha["services"], ha["configs"]
    for db in DATABASES:
        members = [services[f"{db}-db-{m}"] for m in (1, 2)]
        assert [m["environment"]["PATRONI_NAME"] for m in members] == [f"{db}-1", f"{db}-2"]
        assert all(m["environment"]["PATRONI_ETCD3_HOSTS"] == "etcd-1:2379,etcd-2:2379,etcd-3:2379" for m in members)
        assert len({m["volumes"][0] for m in members}) == 2, db  # a data volume each
        patroni = yaml.safe_load(configs[f"patroni-{db}"]["content"])
        dcs = patroni["bootstrap"]["dcs"]
        assert dcs["synchronous_mode"] is True and dcs["postgresql"]["use_pg_rewind"] is True
        assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
        assert dcs["postgresql"]["parameters"]["wal_level"] == "logical"
        proxy = services[f"{db}-db"]
        assert _replicas(proxy) == 2, db
        haproxy = configs[f"pg-proxy-{db}"]["content"]
        assert "option httpchk GET /patroni" in haproxy and "http-check expect rstring role.{1,4}master" in haproxy
        assert all(f"{db}-db-{m}:5432 check port 8008" in haproxy for m in (1, 2)), db
    assert all(_replicas(services[f"etcd-{n}"]) == 1 for n in (1, 2, 3))


def test_debeziums_slots_are_permanent_and_a_promotion_passes_the_gate_first() -> None:
    ha = _ha()
    services, configs = ha["services"], ha["configs"]
    for db in SERVICES:
        _, identity = connectors.identity(db)
        dcs = yaml.safe_load(configs[f"patroni-{db}"]["content"])
        assert dcs["bootstrap"]["dcs"]["slots"] == {
            identity["slot.name"]: {"type": "logical", "database": db, "plugin": "pgoutput"}}
        assert dcs["postgresql"]["pre_promote"].endswith("promote_gate.py /etc/patroni/promote-gate.json")
        for m in (1, 2):
            gate = json.loads(configs[f"promote-gate-{db}-{m}"]["content"])
            assert (gate["member"], gate["slot"], gate["connector"]) == (
                f"{db}-{m}", identity["slot.name"], connectors.name_of(db))
            assert gate["connect_urls"] == ["http://connect-1:8083", "http://connect-2:8083"]
            mounted = {c["source"]: c for c in services[f"{db}-db-{m}"]["configs"]}
            assert mounted[f"promote-gate-{db}-{m}"]["mode"] == 0o400  # it holds passwords
    for db in set(DATABASES) - set(SERVICES):  # no slot, no gate
        assert "slots" not in yaml.safe_load(configs[f"patroni-{db}"]["content"])["bootstrap"]["dcs"]
    dockerfile = (ROOT / "deploy" / "compose" / "patroni.Dockerfile").read_text()
    assert "COPY walsaga/stack/promote_gate.py /usr/local/lib/walsaga/promote_gate.py" in dockerfile
    assert (ROOT / "walsaga" / "stack" / "promote_gate.py").is_file()


def test_every_python_process_runs_at_least_twice() -> None:
    services = _ha()["services"]
    python = {name: s for name, s in services.items() if s.get("image") == "walsaga-python:local"
              and name not in ("init", "kafka-access")}  # the one-shot jobs
    expected = {f"{p.name}-{kind}" for p in PARTICIPANTS for kind in ("api", "consumer")}
    assert expected | {"queries-api", "processors", "views", "reconciler"} <= set(python)
    assert {name: _replicas(s) for name, s in python.items() if _replicas(s) < 2} == {}


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go, "Go is needed to build deploy/compose/check (compose-go)"
    binary = tmp_path_factory.mktemp("compose-check") / "compose-check"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=CHECK, check=True, timeout=600)
    return binary


def test_both_compose_files_load_in_compose_go(checker: Path) -> None:
    run = subprocess.run([str(checker), "-env-file", str(ENV_EXAMPLE), str(ROOT / "docker-compose.yml"),
                          str(ROOT / "docker-compose.ha.yml")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "docker-compose.ha.yml: valid (project walsaga-ha" in run.stdout


def test_compose_go_rejects_a_dependency_on_a_missing_service(checker: Path, tmp_path: Path) -> None:
    ha = _ha()
    ha["services"]["init"]["depends_on"]["orders-db-3"] = {"condition": "service_healthy"}
    broken = tmp_path / "docker-compose.ha.yml"
    broken.write_text(yaml.safe_dump(ha))
    run = subprocess.run([str(checker), "-env-file", str(ENV_EXAMPLE), str(broken)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1
    assert "orders-db-3" in run.stderr


def test_compose_go_rejects_a_file_that_needs_a_variable_env_example_lacks(checker: Path, tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text("".join(line + "\n" for line in ENV_EXAMPLE.read_text().splitlines()
                           if not line.startswith("WALSAGA_PATRONI_REST_PASSWORD=")))
    run = subprocess.run([str(checker), "-env-file", str(env), str(ROOT / "docker-compose.ha.yml")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "WALSAGA_PATRONI_REST_PASSWORD" in run.stderr
