"""Connector configs (defaults + each participant's identity + its tuning, placeholders) and the reading of
Connect's status answer."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdc.connectors import CONNECTORS_DIR, IDENTITY_KEYS, load, state_of
from schemas.participants import NAMES

PLACEHOLDERS = {"pg_host": "db.internal", "pg_port": "6543", "secrets_file": "/run/secrets/cdc.properties"}


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("service", NAMES)
def test_every_participant_gets_the_defaults_and_its_own_identity(service: str) -> None:
    name, config = load(service, PLACEHOLDERS)
    defaults = _json(CONNECTORS_DIR / "_outbox-defaults.json")["config"]
    assert name == f"walsaga-{service}-outbox"
    assert set(config) == set(defaults) | set(IDENTITY_KEYS)
    assert config["database.dbname"] == service
    assert config["slot.name"] == f"walsaga_{service}_outbox"
    assert config["topic.prefix"] == f"walsaga-cdc-{service}"
    assert config["transforms.outbox.type"] == "io.debezium.transforms.outbox.EventRouter"
    assert (config["database.hostname"], config["database.port"]) == ("db.internal", "6543")
    assert config["database.password"] == f"${{file:/run/secrets/cdc.properties:{service}.cdc.password}}"
    assert not [k for k, v in config.items() if "{{" in v]


def test_a_participant_file_tunes_its_connector() -> None:
    """notifications-outbox.json slows its poll (not on a saga's path); the others take the shared 40 ms."""
    assert load("notifications", PLACEHOLDERS)[1]["poll.interval.ms"] == "250"
    assert load("orders", PLACEHOLDERS)[1]["poll.interval.ms"] == "40"


def test_every_tuning_file_belongs_to_a_participant() -> None:
    owners = {p.name.removesuffix("-outbox.json") for p in CONNECTORS_DIR.glob("*-outbox.json")}
    assert owners <= set(NAMES)


def test_each_participant_has_its_own_slot_and_topic_prefix() -> None:
    configs = [load(s, PLACEHOLDERS)[1] for s in NAMES]
    assert len({c["slot.name"] for c in configs}) == len(NAMES)
    assert len({c["topic.prefix"] for c in configs}) == len(NAMES)


def test_a_database_that_is_no_participant_has_no_connector() -> None:
    with pytest.raises(ValueError, match="'saga' is not a participant"):
        load("saga", PLACEHOLDERS)


def test_missing_placeholder_value_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unfilled placeholders in .*database.hostname"):
        load("orders", {k: v for k, v in PLACEHOLDERS.items() if k != "pg_host"})


def _write(directory: Path, tuning: dict[str, str] | None) -> None:
    (directory / "_outbox-defaults.json").write_text(json.dumps(
        {"config": {"shared": "yes", "host": "{{host}}", "overridden": "default"}}))
    if tuning is not None:
        (directory / "orders-outbox.json").write_text(json.dumps({"config": tuning}))


def test_tuning_overrides_defaults(tmp_path: Path) -> None:
    _write(tmp_path, {"overridden": "mine", "own": "{{host}}:{{port}}"})
    name, config = load("orders", {"host": "h", "port": "1", "secrets_file": "/s"}, tmp_path)
    assert name == "walsaga-orders-outbox"
    assert {k: config[k] for k in ("shared", "host", "overridden", "own")} == {
        "shared": "yes", "host": "h", "overridden": "mine", "own": "h:1"}


def test_without_a_tuning_file_the_defaults_stand(tmp_path: Path) -> None:
    _write(tmp_path, None)
    config = load("orders", {"host": "h", "secrets_file": "/s"}, tmp_path)[1]
    assert config["overridden"] == "default" and config["slot.name"] == "walsaga_orders_outbox"


def test_a_tuning_file_may_not_move_the_slot(tmp_path: Path) -> None:
    """Changing a connector's slot or prefix would start it over from nothing: refused."""
    _write(tmp_path, {"slot.name": "elsewhere"})
    with pytest.raises(ValueError, match=r"orders-outbox.json may not set \['slot.name'\]"):
        load("orders", {"host": "h", "secrets_file": "/s"}, tmp_path)


def test_unfilled_placeholder_names_the_connector_and_key(tmp_path: Path) -> None:
    _write(tmp_path, {"own": "{{port}}"})
    with pytest.raises(ValueError, match=r"connector walsaga-orders-outbox: unfilled placeholders in \['own'\]"):
        load("orders", {"host": "h", "secrets_file": "/s"}, tmp_path)


def test_placeholder_in_the_defaults_is_checked_too(tmp_path: Path) -> None:
    _write(tmp_path, {"own": "x"})
    with pytest.raises(ValueError, match=r"\['host'\]"):
        load("orders", {"secrets_file": "/s"}, tmp_path)


def _status(connector: str, *tasks: str) -> dict[str, Any]:
    return {"name": "c", "connector": {"state": connector, "worker_id": "w:8083"},
            "tasks": [{"id": i, "state": s, "worker_id": "w:8083"} for i, s in enumerate(tasks)]}


@pytest.mark.parametrize("status, expected", [
    pytest.param(None, "MISSING", id="missing"),
    pytest.param(_status("RUNNING", "RUNNING"), "RUNNING", id="running"),
    pytest.param(_status("RUNNING", "RUNNING", "RUNNING"), "RUNNING", id="running-2-tasks"),
    pytest.param(_status("RUNNING", "RUNNING", "FAILED"), "FAILED", id="one-task-failed"),
    pytest.param(_status("FAILED", "RUNNING"), "FAILED", id="connector-failed"),
    pytest.param(_status("RUNNING", "PAUSED", "FAILED"), "FAILED", id="worst-state-wins"),
    pytest.param(_status("PAUSED", "PAUSED"), "PAUSED", id="paused"),
    pytest.param(_status("RUNNING", "UNASSIGNED"), "UNASSIGNED", id="task-unassigned"),
    pytest.param(_status("RUNNING", "RESTARTING"), "RESTARTING", id="task-restarting"),
    pytest.param(_status("RUNNING"), "NO_TASKS", id="no-tasks"),
    pytest.param({"name": "c", "connector": {"state": "RUNNING"}}, "NO_TASKS", id="no-tasks-key"),
    pytest.param(_status("FAILED"), "FAILED", id="no-tasks-connector-failed"),
    pytest.param(_status("UNASSIGNED"), "UNASSIGNED", id="no-tasks-connector-unassigned"),
])
def test_state_of(status: dict[str, Any] | None, expected: str) -> None:
    assert state_of(status) == expected
