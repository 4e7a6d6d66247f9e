"""Connector configs (defaults + per-service keys, placeholders) and the reading of Connect's status answer."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdc.connectors import CONNECTORS_DIR, load, state_of

PLACEHOLDERS = {"pg_host": "db.internal", "pg_port": "6543", "secrets_file": "/run/secrets/cdc.properties"}
SERVICES = ["orders", "inventory", "payments", "notifications"]


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.mark.parametrize("service", SERVICES)
def test_load_merges_defaults_with_the_service_file(service: str) -> None:
    name, config = load(service, PLACEHOLDERS)
    defaults = _json(CONNECTORS_DIR / "_outbox-defaults.json")["config"]
    own = _json(CONNECTORS_DIR / f"{service}-outbox.json")["config"]
    assert name == f"walsaga-{service}-outbox"
    assert set(config) == set(defaults) | set(own)
    assert config["database.dbname"] == service
    assert config["slot.name"] == f"walsaga_{service}_outbox"
    assert config["transforms.outbox.type"] == "io.debezium.transforms.outbox.EventRouter"
    assert (config["database.hostname"], config["database.port"]) == ("db.internal", "6543")
    assert config["database.password"] == f"${{file:/run/secrets/cdc.properties:{service}.cdc.password}}"
    assert not [k for k, v in config.items() if "{{" in v]


def test_every_connector_file_is_loadable() -> None:
    files = sorted(p.name for p in CONNECTORS_DIR.glob("*-outbox.json"))
    assert files == sorted(f"{s}-outbox.json" for s in SERVICES)


def test_each_service_has_its_own_slot_and_topic_prefix() -> None:
    configs = [load(s, PLACEHOLDERS)[1] for s in SERVICES]
    assert len({c["slot.name"] for c in configs}) == len(SERVICES)
    assert len({c["topic.prefix"] for c in configs}) == len(SERVICES)


def test_missing_placeholder_value_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unfilled placeholders in .*database.hostname"):
        load("orders", {k: v for k, v in PLACEHOLDERS.items() if k != "pg_host"})


def _write_pair(directory: Path, service_config: dict[str, str], extends: bool = True) -> None:
    (directory / "_defaults.json").write_text(json.dumps(
        {"config": {"shared": "yes", "host": "{{host}}", "overridden": "default"}}))
    spec: dict[str, Any] = {"name": "made-up", "config": service_config}
    if extends:
        spec["extends"] = "_defaults.json"
    (directory / "svc-outbox.json").write_text(json.dumps(spec))


def test_service_keys_override_defaults(tmp_path: Path) -> None:
    _write_pair(tmp_path, {"overridden": "mine", "own": "{{host}}:{{port}}"})
    assert load("svc", {"host": "h", "port": "1"}, tmp_path) == (
        "made-up", {"shared": "yes", "host": "h", "overridden": "mine", "own": "h:1"})


def test_unfilled_placeholder_names_the_connector_and_key(tmp_path: Path) -> None:
    _write_pair(tmp_path, {"own": "{{port}}"})
    with pytest.raises(ValueError, match=r"connector made-up: unfilled placeholders in \['own'\]"):
        load("svc", {"host": "h"}, tmp_path)


def test_placeholder_in_the_defaults_is_checked_too(tmp_path: Path) -> None:
    _write_pair(tmp_path, {"own": "x"})
    with pytest.raises(ValueError, match=r"\['host'\]"):
        load("svc", {}, tmp_path)


def test_a_spec_without_extends_stands_alone(tmp_path: Path) -> None:
    _write_pair(tmp_path, {"own": "{{host}}"}, extends=False)
    assert load("svc", {"host": "h"}, tmp_path) == ("made-up", {"own": "h"})


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
