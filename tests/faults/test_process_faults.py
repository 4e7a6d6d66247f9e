"""Fault cases that break processes: Connect, the Faust workers, a service database, a participant, the broker."""
from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults.case import run_case
from tests.faults.conftest import Ctx
from tests.faults.harness import Batch, OrderSpec, Slots, delta
from tests.support import eventually
from walsaga.stack import apps, kafka, lifecycle, postgres, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack



def _probe_order(batch: Batch) -> None:
    """One more order, so a crash point armed in the fault is reached for sure."""
    spec = batch.specs[0]
    extra = OrderSpec(str(uuid.uuid4()), spec.customer, spec.sku, 1, "pm_card_visa")
    batch.specs.append(extra)
    batch.submit(extra)


def _crash_once(stack: StackConfig, name: str, restart: Callable[[dict[str, str] | None], None], point: str,
                batch_ref: dict[str, Batch]) -> None:
    procs.stop(stack, name)
    # the marker goes where the process (the stack's runtime user) may write: the stack's run directory
    marker = stack.run / f"crash-{uuid.uuid4().hex[:8]}-{point}"
    restart({"WALSAGA_CRASH_POINT": point, "WALSAGA_CRASH_MARKER": str(marker)})
    _probe_order(batch_ref["batch"])
    eventually(lambda: _assert_dead(stack, name), timeout=90, interval=0.2)
    restart(None)


def _assert_dead(stack: StackConfig, name: str) -> None:
    assert procs.read_pid(stack, name) is None, f"{name} has not crashed yet"


def _in_flight(info: dict[str, Any]) -> int:
    assert info["in_flight"] > 0, "no order was in flight when the fault hit"
    return info["in_flight"]


def test_kill_9_kafka_connect(ctx: Ctx) -> None:
    stack = ctx[0]

    def fault(info: dict[str, Any]) -> None:
        info["old_pid"] = procs.read_pid(stack, "connect")
        procs.kill9(stack, "connect")
        kafka.start_connect(stack)
        lifecycle.register_connectors(stack)
        info["new_pid"] = procs.read_pid(stack, "connect")

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        assert info["old_pid"] and info["new_pid"] != info["old_pid"]
        return (f"Connect killed with {_in_flight(info)} orders in flight; its uncommitted source offsets were "
                f"re-read ({delta(after, before, ':duplicates')} duplicates dropped)")

    run_case("1. kill -9 Kafka Connect, restart", *ctx, fault=fault, evidence=evidence)


def test_kill_9_faust_worker_between_reply_and_next_command(ctx: Ctx) -> None:
    stack = ctx[0]
    ref: dict[str, Batch] = {}

    def restart(env: dict[str, str] | None) -> None:
        apps.start_processors(stack, range(1), env, wait=env is None)

    def fault(info: dict[str, Any]) -> None:
        ref["batch"] = info["batch_ref"]
        _crash_once(stack, "processors-0", restart, "processors:after-commit", ref)

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        dups = delta(after, before, "saga-orchestrator:duplicates")
        assert dups >= 1, "the record consumed before the crash was not redelivered"
        return (f"worker died after committing a saga step and before producing its command; the redelivered "
                f"record hit the inbox {dups}x and its pending command was re-sent")

    run_case("2. kill -9 a Faust worker between a reply and the next command", *ctx, fault=fault,
             evidence=evidence)


def test_immediate_stop_of_a_service_database(ctx: Ctx) -> None:
    stack, gateway = ctx[0], ctx[1]

    def fault(info: dict[str, Any]) -> None:
        postgres.stop_cluster(stack, "orders", mode="immediate")

        def answers_503() -> str:
            resp = gateway.place_order("probe", [{"sku": "probe", "quantity": 1, "unit_price": "1.00"}])
            assert resp.status_code == 503, resp.status_code
            return resp.headers["Retry-After"]

        info["retry_after"] = eventually(answers_503, timeout=15)
        info["down_s"] = 3.0
        time.sleep(info["down_s"])  # the outage itself: the database stays down for a while
        postgres.start_cluster(stack, "orders")

    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        assert info["retry_after"]
        return (f"orders DB stopped (immediate) with {_in_flight(info)} in flight; the API answered 503 with "
                f"Retry-After {info['retry_after']}s; clients retried with their keys")

    run_case("3. immediate stop of the orders Postgres, restart", *ctx, fault=fault, evidence=evidence)


def test_kill_9_participant_after_commit_before_offset_commit(ctx: Ctx) -> None:
    stack = ctx[0]
    ref: dict[str, Batch] = {}

    def restart(env: dict[str, str] | None) -> None:
        apps.start_consumer(stack, "payments", env)

    def fault(info: dict[str, Any]) -> None:
        ref["batch"] = info["batch_ref"]
        _crash_once(stack, "payments-consumer", restart, "payments-consumer:after-commit", ref)

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        dups = delta(after, before, "payments:duplicates")
        assert dups >= 1, "the committed command was not redelivered to payments"
        return f"payments died after its commit, before its offset commit; the redelivery hit the inbox {dups}x"

    run_case("4. kill -9 a participant after commit, before offset commit", *ctx, fault=fault, evidence=evidence)


def test_restart_the_kafka_broker(ctx: Ctx) -> None:
    stack = ctx[0]

    def fault(info: dict[str, Any]) -> None:
        info["old_pid"] = procs.read_pid(stack, "kafka")
        procs.stop(stack, "kafka", timeout=60)
        kafka.start_broker(stack)
        info["new_pid"] = procs.read_pid(stack, "kafka")

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        assert info["old_pid"] and info["new_pid"] != info["old_pid"]
        return f"broker restarted with {_in_flight(info)} orders in flight; every client reconnected"

    run_case("5. restart the Kafka broker", *ctx, fault=fault, evidence=evidence)


PARTICIPANTS = ("orders-consumer", "inventory-consumer", "payments-consumer", "notifications-consumer")
GROUP_SESSION_S = 45  # librdkafka's session.timeout.ms, the participant consumers' group session


def test_the_kafka_broker_away_longer_than_a_group_session(ctx: Ctx) -> None:
    """Every participant consumer's assignment is lost while the broker is away; closing the lost consumer has
    hung for minutes here (librdkafka waiting on the old group coordinator), which stopped consumption for good:
    each one must rejoin with a fresh consumer and the batch settle."""
    stack = ctx[0]
    logs = {name: stack.logs / f"{name}.log" for name in PARTICIPANTS}

    def fault(info: dict[str, Any]) -> None:
        info["marks"] = {name: log.stat().st_size for name, log in logs.items()}
        procs.stop(stack, "kafka", timeout=60)
        time.sleep(GROUP_SESSION_S + 15)
        kafka.start_broker(stack)

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        started_over = [name for name, log in logs.items() if "starting over" in _since(log, info["marks"][name])]
        assert started_over, "no participant consumer lost its assignment: the fault did not outlast the session"
        return (f"broker away {GROUP_SESSION_S + 15} s with {_in_flight(info)} orders in flight; "
                f"{len(started_over)} of {len(logs)} participant consumers lost their assignment and rejoined")

    run_case("5b. the Kafka broker away longer than a group session", *ctx, fault=fault, evidence=evidence)


def _since(log: Path, mark: int) -> str:
    with open(log, "rb") as f:
        f.seek(mark)
        return f.read().decode(errors="replace")


def test_kafka_connect_down_for_a_while_under_load(ctx: Ctx) -> None:
    stack, slots = ctx[0], ctx[3]

    def fault(info: dict[str, Any]) -> None:
        procs.stop(stack, "connect", timeout=30)
        batch: Batch = info["batch_ref"]
        extra = [OrderSpec(str(uuid.uuid4()), s.customer, s.sku, 1, s.payment_method) for s in batch.specs[:10]]
        for spec in extra:  # load while CDC is down: accepted, committed, waiting in the WAL
            batch.specs.append(spec)
            batch.submit(spec)
        info["retained"] = eventually(lambda: _retained(slots), timeout=30)
        kafka.start_connect(stack)
        lifecycle.register_connectors(stack)

    def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
        assert info["retained"] > 0
        return (f"10 orders accepted while Connect was down; the orders slot retained {info['retained']} bytes of "
                "WAL and was caught up after")

    run_case("10. Kafka Connect down under load, then back", *ctx, fault=fault, evidence=evidence)


def _retained(slots: Slots) -> int:
    lag = slots.lags()["orders"]
    assert lag > 0, "no WAL retained yet"
    return lag


def test_two_faust_workers_one_killed_mid_batch(ctx: Ctx) -> None:
    stack = ctx[0]
    apps.start_processors(stack, range(1, 2))
    survivor_log = stack.logs / "processors-1.log"
    try:
        def fault(info: dict[str, Any]) -> None:
            info["log_mark"] = survivor_log.stat().st_size
            procs.kill9(stack, "processors-0")

        def evidence(info: dict[str, Any], before: Counter, after: Counter, _: Batch) -> str:
            took_over = _since(survivor_log, info["log_mark"]).count(" saga ")
            assert took_over > 0, "the surviving worker applied no saga step after the kill"
            return f"worker 0 killed; worker 1 took its partitions and applied {took_over} saga steps"

        run_case("11. two Faust workers, one killed mid-batch", *ctx, fault=fault, evidence=evidence)
    finally:
        apps.start_processors(stack, range(1))
        procs.stop(stack, "processors-1")
