"""`walsaga status --json` on the real stack: every node with its kind, role, state, pid and lag, read from the node
itself; a stopped process is reported down and the command exits 1."""
from __future__ import annotations

import json

import pytest

from tests.conftest import TEST_PORT_OFFSET
from tests.support import eventually
from walsaga.cli import main as walsaga_cli
from walsaga.stack import apps, procs
from walsaga.stack.config import DATABASES, StackConfig

pytestmark = pytest.mark.stack


def _status(stack: StackConfig, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    monkeypatch.setenv("WALSAGA_HOME", str(stack.home))
    monkeypatch.setenv("WALSAGA_PORT_OFFSET", str(TEST_PORT_OFFSET))
    capsys.readouterr()
    code = walsaga_cli(["status", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_status_lists_every_node_with_kind_role_state_pid_and_lag(
        stack: StackConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, found = _status(stack, monkeypatch, capsys)
    by_name = {n["name"]: n for n in found}
    assert code == 0, [n for n in found if not n["ok"]]
    assert all({"name", "kind", "role", "state", "pid", "lag"} <= n.keys() for n in found)
    assert {f"postgres[{db}]" for db in DATABASES} | set(apps.process_names(stack)) <= by_name.keys()
    assert {n["kind"] for n in found} >= {"postgres", "kafka-broker", "connect-worker", "cdc-connector", "gateway",
                                          "api", "participant-consumer", "orchestrator", "view-projector",
                                          "reconciler"}
    for db in DATABASES:
        assert by_name[f"postgres[{db}]"]["role"] == "primary"
        assert isinstance(by_name[f"postgres[{db}]"]["pid"], int)
    broker = next(n for n in found if n["kind"] == "kafka-broker")
    assert (broker["role"], broker["lag"]) == ("quorum-leader", 0)  # one node: it leads and nothing is out of sync
    assert broker["pid"] == procs.read_pid(stack, "kafka")
    orchestrator = by_name["processors-0"]
    assert orchestrator["pid"] == procs.read_pid(stack, "processors-0")
    assert orchestrator["role"] == "member of walsaga-processors" and isinstance(orchestrator["lag"], int)
    assert all(n["state"] == "RUNNING" and n["lag"] is not None for n in found if n["kind"] == "cdc-connector")


def test_a_stopped_process_is_reported_down_and_status_exits_1(
        stack: StackConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    procs.stop(stack, "reconciler-0")
    try:
        code, found = _status(stack, monkeypatch, capsys)
        reconciler = next(n for n in found if n["name"] == "reconciler-0")
        assert code == 1
        assert (reconciler["state"], reconciler["ok"], reconciler["pid"]) == ("down", False, None)
    finally:
        apps.start_reconciler(stack)
    eventually(lambda: _assert_ok(stack, monkeypatch, capsys), timeout=30)


def _assert_ok(stack: StackConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, found = _status(stack, monkeypatch, capsys)
    assert code == 0, [n["name"] for n in found if not n["ok"]]
