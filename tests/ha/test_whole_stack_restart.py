"""The HA stack stopped and started again with its data kept (`walsaga down --ha`, `walsaga up --ha`: a reboot, or
an operator's restart). Patroni deletes a pair's leader key on a clean stop, so each pair elects and promotes a
primary again on the way up, through the promote gate, which asks Kafka Connect where Debezium stands: the stack
must come back whole, and orders placed after it must complete."""
from __future__ import annotations

from typing import Any

import pytest

from tests.faults.harness import check_invariants, make_batch, settle
from tests.support import eventually
from walsaga.stack import lifecycle, nodes, patroni
from walsaga.stack.config import DATABASES, StackConfig

pytestmark = pytest.mark.stack


def test_stopped_and_started_again_with_its_data(ctx: Any) -> None:
    stack: StackConfig = ctx[0]
    gateway, engines = ctx[1], ctx[2]
    lifecycle.down(stack)
    lifecycle.up(stack)
    for engine in engines.values():
        engine.dispose()  # their pooled connections died with the databases

    def whole() -> None:
        sick = [n for n in nodes.status(stack) if not n.ok]
        assert not sick, sick
        assert all(patroni.primary_of(stack, db) is not None for db in DATABASES)

    eventually(whole, timeout=180, interval=2.0)
    batch = make_batch(stack, gateway, n=8)
    batch.run(lambda: None)
    check_invariants(batch, engines, settle(batch, engines))
