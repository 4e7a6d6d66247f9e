"""The HA profile's Patroni members as configured (walsaga/stack/patroni.py), and the ports they take."""
from __future__ import annotations

from pathlib import Path

from cdc import connectors as cdc_connectors
from walsaga.stack import patroni
from walsaga.stack.config import DATABASES, SERVICES, STACK_DATABASES, Ports, Secrets, StackConfig


def _cfg(tmp_path: Path) -> StackConfig:
    return StackConfig(home=tmp_path / "home", ports=Ports(3000), kafka_nodes=3, connect_workers=2,
                       postgres_members=2)


def test_every_debezium_slot_is_a_permanent_slot_of_its_own_database(tmp_path: Path) -> None:
    cfg, secrets = _cfg(tmp_path), Secrets(tmp_path / "secrets.properties", shared=False)
    for db in SERVICES:
        for member in patroni.MEMBERS:
            conf = patroni.config(cfg, db, member, secrets)
            slot = cdc_connectors.identity(db)[1]["slot.name"]
            # Patroni drops an inactive slot it was not told about: an undeclared Debezium slot would be lost
            assert conf["bootstrap"]["dcs"]["slots"] == {slot: {"type": "logical", "database": db,
                                                                 "plugin": "pgoutput"}}
            assert "promote_gate.py" in conf["postgresql"]["pre_promote"]
    for db in STACK_DATABASES:  # no outbox connector, nothing for the gate to protect
        conf = patroni.config(cfg, db, 1, secrets)
        assert "slots" not in conf["bootstrap"]["dcs"] and "pre_promote" not in conf["postgresql"]


def test_a_commit_waits_for_the_standby_and_failover_is_automatic(tmp_path: Path) -> None:
    conf = patroni.config(_cfg(tmp_path), "orders", 1, Secrets(tmp_path / "s.properties", shared=False))
    dcs = conf["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True and dcs["failsafe_mode"] is True
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]  # Patroni's own rule
    assert dcs["postgresql"]["parameters"]["wal_level"] == "logical"


def test_sockets_live_outside_the_data_directory(tmp_path: Path) -> None:
    """pg_rewind copies the primary's data directory: its socket lock files there broke a former primary's rejoin."""
    cfg = _cfg(tmp_path)
    conf = patroni.config(cfg, "saga", 2, Secrets(tmp_path / "s.properties", shared=False))
    sockets = Path(conf["postgresql"]["parameters"]["unix_socket_directories"])
    assert not sockets.is_relative_to(Path(conf["postgresql"]["data_dir"]))


def test_member_ports_never_meet_another_port_of_any_stack() -> None:
    offsets = (0, 1000, 2000, 3000)  # dev, tests, benchmark, HA
    taken: dict[int, str] = {}

    def take(port: int, what: str) -> None:
        assert port not in taken, f"{what} and {taken[port]} share {port}"
        taken[port] = what

    for offset in offsets:
        ports = Ports(offset)
        for db in DATABASES:
            take(ports.postgres(db), f"postgres {db} +{offset}")
            for member in patroni.MEMBERS:
                take(ports.pg_member(db, member), f"member {db}-{member} +{offset}")
                take(ports.patroni_rest(db, member), f"patroni {db}-{member} +{offset}")
        for node in (1, 2, 3):
            take(ports.etcd_client(node), f"etcd {node} +{offset}")
            take(ports.etcd_peer(node), f"etcd peer {node} +{offset}")
            take(ports.kafka_node(node), f"kafka {node} +{offset}")
            take(ports.kafka_controller_node(node), f"controller {node} +{offset}")
        for worker in (0, 1):
            take(ports.connect_worker(worker), f"connect {worker} +{offset}")
        take(ports.gateway, f"gateway +{offset}")
