"""The HA stack stopped and started again with its data kept (`walsaga down --ha`, `walsaga up --ha`: a reboot, or
an operator's restart). Patroni deletes a pair's leader key on a clean stop, so each pair elects and promotes a
primary again on the way up, through the promote gate, before Kafka Connect runs: the gate takes the connector
offsets `down` recorded once Connect had stopped (walsaga/stack/connect_offsets.py). The stack must come back whole,
the recorded offsets must be gone once Connect runs, and orders placed after it must complete."""
from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import print_log_tails
from tests.faults.harness import check_invariants, make_batch, settle
from tests.support import eventually
from walsaga.stack import connect_offsets, lifecycle, nodes, patroni
from walsaga.stack.config import DATABASES, SERVICES, StackConfig

pytestmark = pytest.mark.stack


def test_stopped_and_started_again_with_its_data(ctx: Any) -> None:
    stack: StackConfig = ctx[0]
    gateway, engines = ctx[1], ctx[2]
    lifecycle.down(stack)
    recorded = {db: connect_offsets.stopped_file(stack, db).read_text() for db in SERVICES}
    assert all('"lsn' in text for text in recorded.values()), recorded  # every connector had published

    for db in SERVICES:  # earlier failovers' verdicts: only this start's count
        for m in patroni.MEMBERS:
            patroni.verdict_file(stack, db, m).unlink(missing_ok=True)

    try:
        lifecycle.up(stack)
    except Exception:
        print_log_tails(stack)  # the session's stack is wiped afterwards: CI has nothing else
        raise
    for engine in engines.values():
        engine.dispose()  # their pooled connections died with the databases
    assert not any(connect_offsets.stopped_file(stack, db).exists() for db in SERVICES)
    for db in SERVICES:  # each pair promoted a member through the gate, which had the recorded offsets to go by
        verdicts = [f.read_text() for m in patroni.MEMBERS if (f := patroni.verdict_file(stack, db, m)).exists()]
        assert any("allowed promotion" in v for v in verdicts), (db, verdicts)

    def whole() -> None:
        sick = [n for n in nodes.status(stack) if not n.ok]
        assert not sick, sick
        assert all(patroni.primary_of(stack, db) is not None for db in DATABASES)

    eventually(whole, timeout=180, interval=2.0)
    batch = make_batch(stack, gateway, n=8)
    batch.run(lambda: None)
    check_invariants(batch, engines, settle(batch, engines))
