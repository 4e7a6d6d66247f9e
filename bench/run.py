"""`make bench`: starts a stack of its own and runs, in one go, the dual-write baseline, the open-loop saga steps
and the 10,000-concurrent-clients run; writes docs/benchmarks/ (bench/report.py). `--smoke` runs every part tiny."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from sqlalchemy import Engine, create_engine, text

from bench import dtm, dual_write, gateway_log, report, tuning
from bench.concurrency import as_client, run_concurrency
from bench.cost import Meter, stack_meter
from bench.dual_write import WriterReport
from bench.loadgen import run_step
from bench.measure import cdc_hop_ms, ended_count, percentiles, saga_latencies_ms, stack_rss_mib, wait_settled
from walsaga.client import Gateway
from walsaga.stack import kafka_acls, lifecycle
from walsaga.stack.config import REPO, Ports, StackConfig, db_url
from walsaga.stack.kafka import consumer_lag

OUT = REPO / "docs" / "benchmarks"
RATES: list[float] = [10, 20, 30, 50, 75, 100]
STEP_SECONDS = 20.0
WARMUP_CHUNK_S = 30.0   # the warm-up's load comes in chunks; after each, the JIT compilers' CPU is read
JIT_QUIET = 0.05        # the JVMs are warm once their compilers used less than this share of a core over a chunk


@dataclass
class StepReport:
    offered_per_s: float
    seconds: float
    accepted: int
    errors: dict[str, int]
    completed_per_s: float
    unfinished_after_drain: int
    saga_ms: dict[str, float]
    accept_ms: dict[str, float]
    client_send_lag_ms: dict[str, float]
    cdc_hop_ms: dict[str, float]
    stack_rss_mib: float
    cost: dict[str, Any] | None = None  # CPU-ms per completed saga by component (bench/cost.py)
    # POST /orders as the gateway timed it (its access log: first byte read -> last byte sent), without the client's
    # own queueing; empty when the log has no entries for the step
    gateway_accept_ms: dict[str, float] = field(default_factory=dict)


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def measure_step(cfg: StackConfig, engines: dict[str, Engine], rate: float, seconds: float,
                 skus: list[str], meter: Meter | None = None) -> StepReport:
    """One open-loop step; with a meter, also its CPU cost per completed saga, from the step's start until every
    consumer group has caught up again (the read side and the checks do their share after the sagas end)."""
    say(f"offered {rate:g} orders/s for {seconds:g}s ...")
    access_log = cfg.logs / "nginx-access.log"
    log_mark = access_log.stat().st_size if access_log.exists() else 0
    before = meter.start_step() if meter else None
    step = asyncio.run(run_step(Gateway.as_(cfg), rate, seconds, skus))
    gateway_writes = gateway_log.by_kind(access_log, log_mark)["writes"] if access_log.exists() else None
    rss = stack_rss_mib(cfg)
    unfinished = wait_settled(engines["saga"], step.accepted, timeout=max(30.0, seconds * 2))
    spent = None
    if meter and before:
        wait_quiet(cfg, engines["saga"], timeout=120)
        spent = meter.cost_since(before, f"{rate:g}/s", rate, ended_count(engines["saga"], step.accepted))
    saga_lat, completed_per_s = saga_latencies_ms(engines["orders"], engines["saga"], step.accepted)
    hops = cdc_hop_ms(kafka_acls.admin(cfg), engines["orders"], step.accepted)
    report = StepReport(rate, seconds, len(step.accepted), step.errors, round(completed_per_s, 1), unfinished,
                        percentiles(saga_lat), percentiles(step.accept_latencies_ms),
                        percentiles(step.send_lag_ms), percentiles(hops), rss,
                        spent.as_dict() if spent else None, gateway_writes.request_ms if gateway_writes else {})
    say(f"  completed {report.completed_per_s}/s, saga p50 {report.saga_ms['p50']} ms p99 {report.saga_ms['p99']} ms,"
        f" CDC hop p50 {report.cdc_hop_ms['p50']} ms, unfinished {unfinished}, errors {step.errors}"
        + (f", {spent.total_gross_ms} CPU-ms per saga ({spent.total_net_ms} net of idle)" if spent else ""))
    return report


def warm_up(gw: Gateway, rate: float, most_s: float, skus: list[str], meter: Meter | None) -> None:
    """Unmeasured load until the JVMs' JIT compilers are quiet (at most `most_s`). After a
    start, Kafka's and Connect's compiler threads used 10-30 % of a core each for the first ~2 minutes of load at
    10 orders/s (FINDINGS, session 12): a step measured in that window counts the compilation as the saga's cost."""
    spent = 0.0
    while spent < most_s:
        chunk = min(WARMUP_CHUNK_S, most_s - spent)
        jit_before = meter.jit_seconds() if meter else 0.0
        say(f"warm-up: {rate:g} orders/s for {chunk:g}s (not measured; {spent:g}s so far) ...")
        asyncio.run(run_step(gw, rate, chunk, skus))
        spent += chunk
        if meter is None:
            continue
        jit = (meter.jit_seconds() - jit_before) / chunk
        say(f"warm-up: the JVMs' JIT compilers used {jit * 100:.1f} % of a core")
        if jit < JIT_QUIET:
            break


def run(cfg: StackConfig, rates: list[float], seconds: float, meter: Meter | None = None,
        warmup_s: float = 0.0, idle_s: float = 15.0) -> list[StepReport]:
    as_client()  # bench.cost and the tuning runs come here without make bench's main
    engines = {db: create_engine(db_url(cfg, db, "admin"), pool_size=2) for db in ("orders", "saga")}
    gw = Gateway.as_(cfg)
    run_id = uuid.uuid4().hex[:6]
    skus = [f"bench-{run_id}-{i}" for i in range(20)]
    for sku in skus:
        gw.set_stock(sku, 1_000_000)
    try:
        if warmup_s > 0:
            warm_up(gw, rates[0], warmup_s, skus, meter)
        if meter:
            wait_quiet(cfg, engines["saga"], timeout=300)
            say(f"idle CPU of every component over {idle_s:g}s ...")
            meter.measure_idle(idle_s)
        reports = []
        for rate in rates:
            wait_quiet(cfg, engines["saga"], timeout=300)  # each step starts on a quiet stack
            reports.append(measure_step(cfg, engines, rate, seconds, skus, meter))
        return reports
    finally:
        for engine in engines.values():
            engine.dispose()


def wait_quiet(cfg: StackConfig, saga: Engine, timeout: float) -> int:
    """Waits (bounded) until no saga is in flight and every consumer group (read models, notifications, the
    reconciler, the participants) has caught up, so one part's backlog does not load the next; returns how many
    sagas still are in flight."""
    deadline = time.monotonic() + timeout
    while True:
        with saga.connect() as c:
            open_ = c.execute(text("SELECT count(*) FROM saga_instance WHERE status NOT IN "
                                   "('COMPLETED', 'FAILED', 'PARKED')")).scalar_one()
        try:
            behind = {g: n for g, n in consumer_lag(kafka_acls.admin(cfg)).items() if n > 0}
        except KafkaException as exc:  # the broker too busy to answer in time: not quiet yet
            behind = {f"(lag unknown: {exc})": 1}
        if (open_ == 0 and not behind) or time.monotonic() > deadline:
            return int(open_)
        say(f"  waiting before the next part: {open_} sagas in flight, consumer groups behind: "
            f"{', '.join(f'{g} {n}' for g, n in sorted(behind.items())) or 'none'}")
        time.sleep(5)


def run_baselines(cfg: StackConfig, orders: Engine, seconds: float) -> list[WriterReport]:
    say(f"baseline: the same closed-loop order writer for {seconds:g}s each, killed with SIGKILL: naive dual write "
        "vs walsaga's outbox ...")
    dual_write.prepare(db_url(cfg, "orders", "owner"), kafka_acls.admin(cfg))
    return [dual_write.run_writer(mode, db_url(cfg, "orders"), orders, kafka_acls.admin(cfg), seconds, say)
            for mode in ("dual", "outbox")]


def run_tuning(cfg: StackConfig, engines: dict[str, Engine], plan: Plan,
               meter: Meter | None = None) -> list[dict[str, Any]]:
    """bench/tuning.py: one setting changed at a time, each under the same open-loop step."""
    skus = [f"tune-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)]
    gw = Gateway.as_(cfg)
    for sku in skus:
        gw.set_stock(sku, 1_000_000)
    return tuning.run_tuning(cfg, lambda rate, secs: measure_step(cfg, engines, rate, secs, skus, meter),
                             lambda: wait_quiet(cfg, engines["saga"], timeout=300), plan.tuning_rate,
                             plan.tuning_seconds, say)


@dataclass
class Plan:
    rates: list[float]
    seconds: float
    writer_seconds: float
    clients: int
    clients_seconds: float
    targets: int
    reads_per_s: float
    tuning_rate: float
    tuning_seconds: float
    warmup_seconds: float = 0.0
    idle_seconds: float = 2.0


FULL = Plan(RATES, STEP_SECONDS, writer_seconds=5.0, clients=10_000, clients_seconds=60.0, targets=400,
            reads_per_s=100.0, tuning_rate=15.0, tuning_seconds=15.0, warmup_seconds=300.0,
            idle_seconds=15.0)
SMOKE = Plan([5.0], 2.0, writer_seconds=1.0, clients=50, clients_seconds=3.0, targets=10, reads_per_s=10.0,
             tuning_rate=5.0, tuning_seconds=2.0)


def run_all(cfg: StackConfig, plan: Plan, tmp: Path) -> dict[str, Any]:
    """The dual-write baseline first (its orders' sagas finish before the steps), walsaga's saga steps, DTM's steps
    at the same rates on the same participants, then the 10,000 clients (the backlog they leave is wiped with the
    stack)."""
    engines = {db: create_engine(db_url(cfg, db, "admin"), pool_size=2) for db in ("orders", "saga")}
    try:
        baselines = run_baselines(cfg, engines["orders"], plan.writer_seconds)
        wait_quiet(cfg, engines["saga"], timeout=600)
        meter = stack_meter(cfg)
        steps = run(cfg, plan.rates, plan.seconds, meter, plan.warmup_seconds, plan.idle_seconds)
        wait_quiet(cfg, engines["saga"], timeout=600)
        dtm_baseline = dtm.run_baseline(cfg, plan.rates, plan.seconds, say,
                                        settle=lambda: wait_quiet(cfg, engines["saga"], timeout=300), meter=meter)
        tuned = run_tuning(cfg, engines, plan, meter)
        concurrency = run_concurrency(cfg, engines["orders"], plan.clients, plan.clients_seconds, tmp, say,
                                      targets_n=plan.targets, reads_per_s=plan.reads_per_s)
        return {"baselines": baselines, "steps": steps, "dtm": dtm_baseline, "tuning": tuned,
                "concurrency": concurrency}
    finally:
        for engine in engines.values():
            engine.dispose()


def bench_config() -> StackConfig:
    """The benchmark's own stack: its own home and ports, so a dev stack's data and ports are left alone."""
    return StackConfig(home=REPO / ".stack" / "bench-home", ports=Ports(2000), api_instances=2, faust_instances=1,
                       saga_branches=True)  # the DTM baseline calls the command handlers over HTTP


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.run")
    parser.add_argument("--smoke", action="store_true",
                        help="every part, tiny; the report goes to the bench home and is wiped with it")
    parser.add_argument("--rates", type=float, nargs="*", default=RATES)
    parser.add_argument("--seconds", type=float, default=STEP_SECONDS)
    parser.add_argument("--clients", type=int, default=FULL.clients)
    args = parser.parse_args()
    plan = SMOKE if args.smoke else replace(FULL, rates=args.rates, seconds=args.seconds, clients=args.clients)
    cfg = bench_config()
    t0 = time.monotonic()
    as_client()
    lifecycle.wipe(cfg)
    try:
        lifecycle.up(cfg)
        results = run_all(cfg, plan, cfg.home)
        out = cfg.home / "report" if args.smoke else OUT  # the smoke run writes its report where the wipe takes it
        report.write(cfg, results, plan.seconds, out)
        say(f"report written to {out / 'REPORT.md'} ({time.monotonic() - t0:.0f}s)")
    finally:
        lifecycle.wipe(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
