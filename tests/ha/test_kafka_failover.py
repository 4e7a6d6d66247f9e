"""Kafka and Kafka Connect failover on the HA profile's stack: a node killed, a node paused (a zombie leader), a
Connect worker killed, each with orders in flight and left broken until every saga has ended; the fault suite's
invariants I1-I4 (tests/faults/harness.py) must hold. `WALSAGA_WRITE_REPORT=1 make test-ha` writes
docs/reliability/HA.md."""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import KafkaException
from sqlalchemy import text

from cdc import connectors as cdc_connectors
from schemas import topics
from tests.faults.case import run_case
from tests.faults.harness import Batch
from tests.ha.cluster import admin, restart_stopped_brokers
from tests.support import eventually
from walsaga.stack import kafka, nodes, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack
PAUSE_S = 30.0


def test_kill_9_the_kafka_node_leading_the_orders_events(ctx: Any) -> None:
    stack: StackConfig = ctx[0]

    def fault(info: dict[str, Any]) -> None:
        node = kafka.partition_leader(stack, topics.ORDERS_EVENTS, 0)
        info["node"], info["name"] = node, stack.broker_names()[node - 1]
        procs.kill9(stack, info["name"])  # stays down until the batch has settled and drained

    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        new_leader = kafka.partition_leader(stack, topics.ORDERS_EVENTS, 0)
        assert new_leader != info["node"], "leadership did not move"
        return (f"kafka node {info['node']} (leader of orders events p0) killed with {info['in_flight']} orders in "
                f"flight; p0 led by node {new_leader}, every saga ended with the node still down")

    try:
        info = run_case("HA 1. kill -9 the Kafka node leading the orders events", *ctx, fault=fault,
                        evidence=evidence)
    finally:
        restart_stopped_brokers(stack)
    assert info["node"] in admin(stack).list_topics(timeout=10).brokers


def test_sigstop_the_kafka_node_leading_the_orders_events_for_30_s(ctx: Any) -> None:
    stack: StackConfig = ctx[0]
    engines = ctx[2]

    def ended(batch: Batch) -> int:
        with engines["saga"].connect() as c:
            return c.execute(text("SELECT count(*) FROM saga_instance WHERE saga_id = ANY(:ids) "
                                  "AND status IN ('COMPLETED', 'FAILED')"), {"ids": batch.order_ids}).scalar_one()

    def fault(info: dict[str, Any]) -> None:
        node = kafka.partition_leader(stack, topics.ORDERS_EVENTS, 0)
        pid = procs.read_pid(stack, stack.broker_names()[node - 1])
        assert pid is not None
        info["node"], info["ended_before"] = node, ended(info["batch_ref"])
        paused_at = time.monotonic()
        os.killpg(pid, signal.SIGSTOP)  # alive but silent: the controller must fence it and move its leaderships
        try:
            info["leader_while_paused"] = eventually(lambda: _moved_from(stack, node), timeout=PAUSE_S)
            time.sleep(max(0.0, paused_at + PAUSE_S - time.monotonic()))
            info["ended_during"] = ended(info["batch_ref"]) - info["ended_before"]
        finally:
            os.killpg(pid, signal.SIGCONT)  # back: it must rejoin as a follower and truncate what it never acked

    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        # measured, not required yet: requests in flight to the silent node hold their partitions until a client
        # timeout ends them (the shortened ones are 10-15 s; Faust's consumer requests still wait 90 s), so most
        # sagas wait out the pause (README, HA profile)
        return (f"kafka node {info['node']} (leader of orders events p0) paused {PAUSE_S:.0f} s with "
                f"{info['in_flight']} orders in flight; node {info['leader_while_paused']} led p0 meanwhile; "
                f"{info['ended_during']} sagas ended during the pause; after SIGCONT it rejoined and caught up")

    run_case("HA 2. SIGSTOP the Kafka node leading the orders events for 30 s, then SIGCONT", *ctx,
             fault=fault, evidence=evidence)
    restart_stopped_brokers(stack)  # none is stopped: waits until the paused node's replicas are in sync again


def _moved_from(stack: StackConfig, node: int) -> int:
    try:
        now = kafka.partition_leader(stack, topics.ORDERS_EVENTS, 0)
    except KafkaException as exc:  # the metadata request went to the silent node: ask again
        raise AssertionError(f"no metadata yet: {exc}") from exc
    assert now not in (node, -1), f"p0 still led by {now}"
    return now


def test_kill_9_the_connect_worker_running_the_orders_connector(ctx: Any) -> None:
    stack: StackConfig = ctx[0]
    connector, _ = cdc_connectors.identity("orders")

    def task_worker() -> str:
        status = kafka.connect_client(stack).status(connector)
        assert status is not None
        (task,) = status["tasks"]
        assert task["state"] == "RUNNING", task
        return str(task["worker_id"])

    def fault(info: dict[str, Any]) -> None:
        info["worker_id"] = task_worker()
        worker = kafka.connect_worker_index(stack, info["worker_id"])
        info["name"] = stack.connect_names()[worker]
        info["killed_at"] = time.monotonic()
        procs.kill9(stack, info["name"])  # stays down until the batch has settled

    def evidence(info: dict[str, Any], before: Counter, after: Counter, batch: Batch) -> str:
        moved_to = task_worker()
        assert moved_to != info["worker_id"], "the task did not move"
        return (f"Connect worker {info['worker_id']} (running the orders connector) killed with {info['in_flight']} "
                f"orders in flight; the task runs on {moved_to} and every saga ended with the worker still down")

    try:
        run_case("HA 3. kill -9 the Connect worker running the orders connector", *ctx, fault=fault,
                 evidence=evidence)
    finally:
        for worker, name in enumerate(stack.connect_names()):
            if procs.read_pid(stack, name) is None:
                kafka.start_connect(stack, worker)
    # the returning worker makes the group rebalance (tasks move, UNASSIGNED meanwhile): wait until every node,
    # connector task included, is healthy again before the next test
    eventually(lambda: _all_healthy(stack), timeout=180, interval=2.0)


def _all_healthy(stack: StackConfig) -> None:
    sick = [n for n in nodes.status(stack) if not n.ok]
    assert not sick, sick
