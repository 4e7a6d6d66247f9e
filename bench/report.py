"""docs/benchmarks/REPORT.md and results.json from one `make bench` run: the saga steps, the baselines, the
10,000-client run, and every target of the benchmark issue against what was measured."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import charts
from cdc import connectors
from schemas import topics
from walsaga.stack.config import DEBEZIUM_VERSION, KAFKA_VERSION, StackConfig

# A step is sustained when at least this share of the offered rate completed, nothing was left unfinished and no
# backlog built up within it (saga p99 under a second: a queue that grew through a 20 s step shows as seconds).
SUSTAINED = 0.95
SUSTAINED_P99_MS = 1000.0


def meta(cfg: StackConfig) -> dict[str, str]:
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)}"
                   f" GiB, {platform.machine()}, Python {platform.python_version()}",
        "versions": f"Kafka {KAFKA_VERSION}, Debezium {DEBEZIUM_VERSION}, PostgreSQL 15",
        "settings": f"synchronous_commit on; poll.interval.ms {connectors.identity('orders')[1]['poll.interval.ms']}; "
                    f"{topics.PARTITIONS} partitions per topic; {cfg.api_instances} API "
                    f"instances per service; {cfg.faust_instances} Faust worker; one command consumer per service; "
                    f"gateway admits {cfg.gateway_write_rate} writes/s and queues {cfg.gateway_write_queue}; "
                    f"request path at nice {cfg.edge_nice}",
    }


def _sustained(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in steps if s["unfinished_after_drain"] == 0 and s["completed_per_s"] >= SUSTAINED *
            s["offered_per_s"] and s["saga_ms"]["p99"] <= SUSTAINED_P99_MS]


def targets(steps: list[dict[str, Any]], conc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    sustained = _sustained(steps)
    best = max((s["offered_per_s"] for s in sustained), default=0.0)
    peak = max((s["completed_per_s"] for s in steps), default=0.0)
    at_100 = [s for s in sustained if s["offered_per_s"] >= 100]
    hop = max((s["cdc_hop_ms"]["p50"] for s in sustained), default=float("nan"))
    rss = max([s["stack_rss_mib"] for s in steps] + [conc.get("stack_rss_mib", 0.0)])
    reads_p99 = conc["reads"]["latency_ms"]["p99"]

    def verdict(ok: bool, miss: str) -> str:
        return "met" if ok else f"missed: {miss}"

    return [
        ("≥ 300 completed sagas/s sustained", f"{best:g}/s sustained; {peak}/s at saturation",
         verdict(best >= 300, f"{300 / best:.0f}x short" if best else "nothing sustained")),
        ("saga p99 ≤ 500 ms at 100 sagas/s",
         f"{at_100[0]['saga_ms']['p99']} ms" if at_100 else "100/s not sustained",
         verdict(bool(at_100) and at_100[0]["saga_ms"]["p99"] <= 500, "100/s is past the knee")),
        ("CDC hop p50 ≤ 20 ms", f"{hop} ms (worst sustained step; sustained = ≥ 95 % completed, saga p99 ≤ 1 s)",
         verdict(hop <= 20, f"{hop - 20:.1f} ms over")),
        (f"{conc['clients']:,} concurrent clients: zero 5xx", f"{conc['server_errors']} 5xx",
         verdict(conc["server_errors"] == 0, f"{conc['server_errors']} 5xx")),
        (f"{conc['clients']:,} concurrent clients: zero lost updates",
         f"{conc['lost_orders']} orders, {conc['lost_cancels']} cancels lost",
         verdict(conc["lost_orders"] + conc["lost_cancels"] == 0, "updates lost")),
        ("GET p99 ≤ 50 ms during that run", f"{reads_p99} ms", verdict(reads_p99 <= 50, f"{reads_p99 / 50:.1f}x")),
        ("whole stack ≤ 6 GiB RSS", f"{rss:.0f} MiB (most of any step and the clients' run)",
         verdict(rss <= 6144, f"{rss - 6144:.0f} MiB over")),
    ]


def dtm_section(steps: list[dict[str, Any]], dtm: dict[str, Any]) -> list[str]:
    """walsaga and DTM at the same offered rates, side by side (bench/dtm.py has the saga in DTM's terms)."""
    head = ["## Baseline: DTM running the same saga against the same participants", ""]
    if "unavailable" in dtm:
        return head + [f"Not measured in this run: {dtm['unavailable']}", ""]
    by_rate = {d["offered_per_s"]: d for d in dtm["steps"]}
    rows = []
    for s in steps:
        d = by_rate.get(s["offered_per_s"])
        if d is None:
            continue
        rows.append(f"| {s['offered_per_s']:g} | {s['completed_per_s']} | {s['saga_ms']['p50']} | "
                    f"{s['saga_ms']['p99']} | {s['unfinished_after_drain']} | {d['completed_per_s']} | "
                    f"{d['saga_ms']['p50']} | {d['saga_ms']['p99']} | {d['unfinished_after_drain']} | "
                    f"{', '.join(f'{k} {v}' for k, v in sorted(d['outcomes'].items()))} |")
    return head + [
        f"DTM {dtm['version']} (built here from the Go module proxy with {dtm['go']}), its store a database on the "
        "saga cluster, defaults otherwise (RequestTimeout 3 s, RetryInterval 10 s; store connections capped at 50). "
        "It calls the services' command handlers over HTTP (`/{service}/saga-branches/{Command}`, one local "
        "transaction per call with an idempotency row, as with a Kafka command) on the services' API instances in "
        "turn. Same open-loop rates, SKUs mix and 10 % declined payments as walsaga's steps. Latency: order row stamp "
        "to the last branch's transaction (database clocks). The participants still write their events to the outbox, "
        "so Debezium, the read models and the notifications run during DTM's steps too.", "",
        "| offered /s | walsaga completed /s | walsaga p50 | walsaga p99 | walsaga unfinished | DTM completed /s | "
        "DTM p50 | DTM p99 | DTM unfinished | DTM outcomes |",
        "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        "![walsaga vs DTM](dtm_vs_walsaga.png)", ""]


def tuning_section(rows: list[dict[str, Any]]) -> list[str]:
    """One row per setting tried (bench/tuning.py), under the reference row of the shipped settings."""
    if not rows:
        return []
    first = rows[0]["step"]
    out = ["## Settings, one at a time", "",
           "The same running stack; one setting changed, one open-loop step of "
           f"{first['offered_per_s']:g} orders/s for {first['seconds']:g} s, the setting put back. CPU = % of one "
           "core, averaged over the step and its drain (the box has 200 %).", "",
           "| setting | shipped | tried | completed /s | saga p50 | saga p99 | CDC hop p50 | CDC hop p99 | "
           "unfinished | CPU Connect | CPU orchestrator | CPU APIs |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        st, cpu = r["step"], r["cpu_percent"]
        out.append(f"| {r['setting']} | {r['shipped']} | {r['tried']} | {st['completed_per_s']} | "
                   f"{st['saga_ms']['p50']} | {st['saga_ms']['p99']} | {st['cdc_hop_ms']['p50']} | "
                   f"{st['cdc_hop_ms']['p99']} | {st['unfinished_after_drain']} | {cpu['connect']} | "
                   f"{cpu['orchestrator']} | {cpu['apis']} |")
    return out + ["", "Latencies in ms. Kafka partitions are not varied in this run: see bench/tuning.py.", ""]


def _statuses(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))


def write(cfg: StackConfig, results: dict[str, Any], seconds: float, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    steps = [asdict(s) for s in results["steps"]]
    baselines = [asdict(b) for b in results["baselines"]]
    conc = asdict(results["concurrency"])
    m = meta(cfg)
    (out / "results.json").write_text(json.dumps({"meta": m, "steps": steps, "baselines": baselines,
                                                  "dtm": results.get("dtm"), "tuning": results.get("tuning"),
                                                  "concurrency": conc}, indent=2) + "\n")
    lines = [
        "# walsaga benchmarks", "",
        f"Generated {m['generated']} by `make bench` on {m['machine']}; {m['versions']}; {m['settings']}. "
        "Every number below was measured in that one run; docs/benchmarks/FINDINGS.md explains them.", "",
        "## Targets", "",
        "| target | measured | verdict |", "|---|---|---|",
        *[f"| {t} | {v} | {d} |" for t, v, d in targets(steps, conc)],
        "", "## Saga throughput and latency (open loop)", "",
        f"Requests leave on schedule and latency counts from the schedule; each rate for {seconds:g} s; 90 % approved, "
        "10 % declined orders over 20 SKUs. Saga latency = saga end (saga DB clock) - order commit stamp (orders DB "
        "clock); CDC hop = outbox row stamp -> Kafka record timestamp.", "",
        "| offered /s | accepted | errors | completed /s | unfinished | saga p50 | p95 | p99 | max | "
        "accept p99 | CDC hop p50 | CDC hop p99 | stack RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        lines.append(f"| {s['offered_per_s']:g} | {s['accepted']} | {sum(s['errors'].values())} | "
                     f"{s['completed_per_s']} | {s['unfinished_after_drain']} | {s['saga_ms']['p50']} | "
                     f"{s['saga_ms']['p95']} | {s['saga_ms']['p99']} | {s['saga_ms']['max']} | "
                     f"{s['accept_ms']['p99']} | {s['cdc_hop_ms']['p50']} | {s['cdc_hop_ms']['p99']} | "
                     f"{s['stack_rss_mib']} |")
    lines += ["", "All latencies in ms.", ""]
    lines += [f"![{title}]({name})" for name, title in charts.CHARTS.items()]
    lines += [
        "", f"## {conc['clients']:,} concurrent clients", "",
        f"wrk holds {conc['clients']:,} connections through the gateway for {conc['seconds']:g} s, each a client "
        "writing as fast as it is answered: 80 % place orders on 4 hot SKUs for 20 hot customers, 20 % cancel 400 "
        "orders placed before the run (the first cancel of each wins, the rest must get 409). Meanwhile an open-loop "
        "reader (aiohttp, fixed rate, latency from the schedule) reads those orders. Lost = a 202 without its effect "
        "in the orders database; unanswered = an effect whose client had no answer yet when wrk stopped.", "",
        "| clients | answers (status: count) | wrk latency p50 / p99 (s) | lost | unanswered |",
        "|---|---|---|---|---|",
        f"| order writers | {_statuses(conc['orders'])} | {conc['orders']['latency_us']['p50'] / 1e6:.1f} / "
        f"{conc['orders']['latency_us']['p99'] / 1e6:.1f} | {conc['lost_orders']} | {conc['unanswered_orders']} |",
        f"| cancellers | {_statuses(conc['cancels'])} | {conc['cancels']['latency_us']['p50'] / 1e6:.1f} / "
        f"{conc['cancels']['latency_us']['p99'] / 1e6:.1f} | {conc['lost_cancels']} | {conc['unanswered_cancels']} |",
        "",
        f"Orders placed: {conc['orders_per_s']}/s. Reads: {_statuses(conc['reads'])}; latency p50 "
        f"{conc['reads']['latency_ms']['p50']} ms, p95 {conc['reads']['latency_ms']['p95']} ms, p99 "
        f"{conc['reads']['latency_ms']['p99']} ms (client send lag p99 {conc['reads']['send_lag_ms']['p99']} ms). "
        f"Stack RSS at the end of the run: {conc['stack_rss_mib']:.0f} MiB.",
        "", "## Baseline: naive dual write vs the outbox", "",
        "The same closed-loop order writer on one connection, killed with SIGKILL after the time shown; then the "
        "committed orders are matched with their events on Kafka.", "",
        "| writer | seconds | orders committed | per s | events on Kafka | lost |", "|---|---|---|---|---|---|",
        *[f"| {b['mode']} | {b['seconds']:g} | {b['committed']} | {b['per_s']} | {b['events']} | {b['lost']} |"
          for b in baselines],
        "", *dtm_section(steps, results.get("dtm") or {"unavailable": "not run"}),
        *tuning_section(results.get("tuning") or []),
        "Regenerate: `make bench`.", "",
    ]
    charts.render(steps, out, (results.get("dtm") or {}).get("steps", []))
    (out / "REPORT.md").write_text("\n".join(lines))
