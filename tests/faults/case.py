"""Runs one fault case: batch, fault in the middle, settle, drain, invariants, I4 evidence, report row."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from tests.faults.conftest import CaseResult, Report
from tests.faults.harness import Batch, Slots, check_invariants, counters, delta, drain, make_batch, settle
from walsaga.client import Gateway
from walsaga.stack.config import StackConfig

Fault = Callable[[dict[str, Any]], None]
# (info, counters before, counters after, batch) -> a sentence saying how the fault bit; asserts I4
Evidence = Callable[[dict[str, Any], Counter, Counter, Batch], str]


def pending(engines: dict[str, Engine], batch: Batch) -> int:
    with engines["orders"].connect() as c:
        return c.execute(text("SELECT count(*) FROM orders WHERE order_id = ANY(:ids) AND status = 'PENDING'"),
                         {"ids": batch.order_ids}).scalar_one()


def run_case(name: str, stack: StackConfig, gateway: Gateway, engines: dict[str, Engine],
             slots: Slots, report: Report, fault: Fault, evidence: Evidence,
             n: int = 40, extra_methods: tuple[str, ...] = ()) -> dict[str, Any]:
    before = counters(engines)
    batch = make_batch(stack, gateway, n, extra_methods)
    info: dict[str, Any] = {}

    info["batch_ref"] = batch

    def in_the_middle() -> None:
        info["in_flight"] = pending(engines, batch)
        fault(info)
        info["healed_at"] = time.monotonic()

    batch.run(in_the_middle)
    statuses = settle(batch, engines)
    drain(stack, slots)
    recovery = time.monotonic() - info["healed_at"]
    outcome = check_invariants(batch, engines, statuses)
    after = counters(engines)
    sentence = evidence(info, before, after, batch)
    report.add(CaseResult(
        case=name, orders=len(batch.order_ids), in_flight_at_fault=info["in_flight"], outcomes=dict(outcome.statuses),
        parked=outcome.parked, dedup_hits=delta(after, before, ":duplicates"),
        transient_retries=delta(after, before, ":transient_retries"),
        dead_letters=delta(after, before, ":dead_letters"), deadline_resends=delta(after, before, ":deadline_retries"),
        recovery_s=recovery, evidence=sentence))
    info["batch"] = batch
    return info
