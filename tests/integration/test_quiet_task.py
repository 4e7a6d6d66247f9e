"""Every outbox connector runs walsaga's Debezium task (cdc/quiet-task) on the real Connect worker, and the task found
the queue internals it waits on (it would log and fall back to Debezium's spinning poll otherwise). That records
flow through it at all is what every end-to-end test shows."""
from __future__ import annotations

import pytest

from cdc import connectors as cdc_connectors
from schemas.participants import NAMES as PARTICIPANTS
from walsaga.stack.config import StackConfig
from walsaga.stack.kafka import connect_client

pytestmark = pytest.mark.stack


def test_every_outbox_connector_runs_the_quiet_task(stack: StackConfig) -> None:
    client = connect_client(stack, stack.connect_url)
    assert cdc_connectors.connector_class() == "io.walsaga.cdc.QuietPostgresConnector"
    for service in PARTICIPANTS:
        name, _ = cdc_connectors.identity(service)
        assert client.config(name)["connector.class"] == "io.walsaga.cdc.QuietPostgresConnector", name
        status = client.status(name)
        assert status is not None and [t["state"] for t in status["tasks"]] == ["RUNNING"], status


def test_the_quiet_task_did_not_fall_back_to_debeziums_poll(stack: StackConfig) -> None:
    logs = sorted(stack.logs.glob("connect*.log*"))
    assert logs, f"no Connect log in {stack.logs}"
    said = "\n".join(log.read_text(errors="replace") for log in logs)
    assert "io.walsaga.cdc.QuietPostgresConnector" in said  # the log is the worker's, and it loaded the plugin
    assert "cannot wait on Debezium's change event queue" not in said
