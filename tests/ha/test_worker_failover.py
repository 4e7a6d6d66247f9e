"""Worker failover on the HA profile's stack: one of the two saga orchestrators, one of a participant's two command
consumers, one of an API's two instances killed with orders in flight and left down until every saga has ended; the
survivor takes over (the consumer group hands it the dead member's partitions, the gateway routes around the dead
instance) and the fault suite's invariants I1-I4 (tests/faults/harness.py) hold."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.case import run_case
from tests.faults.harness import Batch
from tests.ha.cluster import members_with_partitions
from walsaga.stack import apps, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def _kill_one_member(stack: StackConfig, name: str, group: str) -> Callable[[dict[str, Any]], None]:
    def fault(info: dict[str, Any]) -> None:
        # both members hold partitions, so whichever dies leaves work the survivor must take over
        assert members_with_partitions(stack, group) == 2, f"{group} does not have two working members"
        procs.kill9(stack, name)
    return fault


def _evidence(what: str) -> Callable[[dict[str, Any], Counter, Counter, Batch], str]:
    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        return (f"{what} killed with {info['in_flight']} orders in flight while both members held partitions; "
                f"every saga ended with it still down")
    return evidence


def test_kill_9_one_of_two_saga_orchestrators(ctx: Any) -> None:
    stack: StackConfig = ctx[0]
    try:
        run_case("HA 4. kill -9 one of two saga orchestrators", *ctx,
                 fault=_kill_one_member(stack, "processors-1", "walsaga-processors"),
                 evidence=_evidence("orchestrator processors-1"))
    finally:
        apps.start_processors(stack, range(1, 2))


def test_kill_9_one_of_two_payments_command_consumers(ctx: Any) -> None:
    stack: StackConfig = ctx[0]
    name = apps.consumer_name("payments", 1)
    try:
        run_case("HA 5. kill -9 one of two payments command consumers", *ctx,
                 fault=_kill_one_member(stack, name, "walsaga-payments"),
                 evidence=_evidence(f"command consumer {name}"))
    finally:
        apps.start_consumer(stack, "payments", instance=1)


def test_kill_9_one_of_two_orders_api_instances(ctx: Any) -> None:
    stack: StackConfig = ctx[0]

    def fault(info: dict[str, Any]) -> None:
        procs.kill9(stack, "orders-api-0")  # the second half of the orders goes through the gateway meanwhile

    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        assert procs.read_pid(stack, "orders-api-0") is None
        return (f"orders-api-0 killed with {info['in_flight']} orders in flight; the gateway sent the rest to "
                f"orders-api-1 ({batch.unavailable_answers} answers the clients retried with their idempotency keys)")

    try:
        run_case("HA 6. kill -9 one of two orders API instances", *ctx, fault=fault, evidence=evidence)
    finally:
        apps.start_api(stack, "orders", 0)
