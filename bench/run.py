"""`make bench`: starts a stack of its own, steps an open-loop order load up through fixed arrival rates, and writes
docs/benchmarks/REPORT.md and results.json. `--smoke` runs one tiny step (CI runs it so the harness never rots)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, create_engine

from bench import charts
from bench.loadgen import run_step
from bench.measure import cdc_hop_ms, percentiles, saga_latencies_ms, stack_rss_bytes, wait_settled
from walsaga.client import Gateway
from walsaga.stack import lifecycle
from walsaga.stack.config import DEBEZIUM_VERSION, KAFKA_VERSION, REPO, Ports, StackConfig, db_url

OUT = REPO / "docs" / "benchmarks"
RATES = [10, 20, 30, 40]
STEP_SECONDS = 20.0


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


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def measure_step(cfg: StackConfig, engines: dict[str, Engine], rate: float, seconds: float,
                 skus: list[str]) -> StepReport:
    say(f"offered {rate:g} orders/s for {seconds:g}s ...")
    step = asyncio.run(run_step(cfg.gateway_url, rate, seconds, skus))
    rss = stack_rss_bytes([str(cfg.home), str(REPO / ".stack" / "lib"), "services.", "stream_processors."])
    unfinished = wait_settled(engines["saga"], step.accepted, timeout=max(30.0, seconds * 2))
    saga_lat, completed_per_s = saga_latencies_ms(engines["orders"], engines["saga"], step.accepted)
    hops = cdc_hop_ms(cfg.kafka_bootstrap, engines["orders"], step.accepted)
    report = StepReport(rate, seconds, len(step.accepted), step.errors, round(completed_per_s, 1), unfinished,
                        percentiles(saga_lat), percentiles(step.accept_latencies_ms),
                        percentiles(step.send_lag_ms), percentiles(hops), round(rss / 2**20, 1))
    say(f"  completed {report.completed_per_s}/s, saga p50 {report.saga_ms['p50']} ms p99 {report.saga_ms['p99']} ms,"
        f" CDC hop p50 {report.cdc_hop_ms['p50']} ms, unfinished {unfinished}, errors {step.errors}")
    return report


def run(cfg: StackConfig, rates: list[float], seconds: float) -> list[StepReport]:
    engines = {db: create_engine(db_url(cfg, db), pool_size=2) for db in ("orders", "saga")}
    gw = Gateway(cfg.gateway_url)
    run_id = uuid.uuid4().hex[:6]
    skus = [f"bench-{run_id}-{i}" for i in range(20)]
    for sku in skus:
        gw.set_stock(sku, 1_000_000)
    try:
        return [measure_step(cfg, engines, rate, seconds, skus) for rate in rates]
    finally:
        for engine in engines.values():
            engine.dispose()


def write_report(cfg: StackConfig, steps: list[StepReport], seconds: float) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)}"
                   f" GiB, {platform.machine()}, Python {platform.python_version()}",
        "versions": f"Kafka {KAFKA_VERSION}, Debezium {DEBEZIUM_VERSION}, PostgreSQL 15",
        "settings": f"synchronous_commit on; poll.interval.ms 5; 4 partitions per topic; {cfg.api_instances} API "
                    f"instances per service; {cfg.faust_instances} Faust worker; one command consumer per service",
    }
    (OUT / "results.json").write_text(json.dumps({"meta": meta, "steps": [asdict(s) for s in steps]}, indent=2) + "\n")
    lines = [
        "# walsaga benchmarks", "",
        f"Generated {meta['generated']} by `make bench` on {meta['machine']}; {meta['versions']}; {meta['settings']}.",
        "",
        f"Open-loop load (requests leave on schedule; latency counted from the schedule), each rate for "
        f"{seconds:g} s; 90 % approved, 10 % declined orders over 20 SKUs. Saga latency = saga end (saga DB clock) - "
        "order commit stamp (orders DB clock); CDC hop = outbox row stamp -> Kafka record timestamp.", "",
        "| offered /s | accepted | errors | completed /s | unfinished | saga p50 | p95 | p99 | max | "
        "accept p99 | CDC hop p50 | CDC hop p99 | stack RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        lines.append(f"| {s.offered_per_s:g} | {s.accepted} | {sum(s.errors.values())} | {s.completed_per_s} | "
                     f"{s.unfinished_after_drain} | {s.saga_ms['p50']} | {s.saga_ms['p95']} | {s.saga_ms['p99']} | "
                     f"{s.saga_ms['max']} | {s.accept_ms['p99']} | {s.cdc_hop_ms['p50']} | {s.cdc_hop_ms['p99']} | "
                     f"{s.stack_rss_mib} |")
    charts.render([asdict(s) for s in steps], OUT)
    lines += ["", "All latencies in ms. Regenerate: `make bench`.", ""]
    lines += [f"![{title}]({name})" for name, title in charts.CHARTS.items()] + [""]
    (OUT / "REPORT.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.run")
    parser.add_argument("--smoke", action="store_true", help="one tiny step, no report")
    parser.add_argument("--rates", type=float, nargs="*", default=RATES)
    parser.add_argument("--seconds", type=float, default=STEP_SECONDS)
    args = parser.parse_args()
    cfg = StackConfig(home=REPO / ".stack" / "bench-home", ports=Ports(2000), api_instances=2, faust_instances=1)
    t0 = time.monotonic()
    lifecycle.wipe(cfg)
    try:
        lifecycle.up(cfg)
        rates, seconds = ([5.0], 2.0) if args.smoke else (args.rates, args.seconds)
        steps = run(cfg, rates, seconds)
        if not args.smoke:
            write_report(cfg, steps, seconds)
            say(f"report written to {OUT / 'REPORT.md'} ({time.monotonic() - t0:.0f}s)")
    finally:
        lifecycle.wipe(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
