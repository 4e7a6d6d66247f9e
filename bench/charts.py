"""PNG charts of a benchmark run (matplotlib, headless): saga latency percentiles, throughput, CDC hop latency and
stack memory, each against the offered rate. Written next to REPORT.md and linked from it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after matplotlib.use(): the backend is chosen first

CHARTS = {
    "saga_latency.png": "Saga completion latency (ms)",
    "throughput.png": "Completed sagas/s",
    "cdc_hop.png": "CDC hop: commit to Kafka record (ms)",
    "stack_rss.png": "Stack memory (RSS, MiB)",
}


def render(steps: list[dict[str, Any]], out: Path, dtm_steps: list[dict[str, Any]] | None = None) -> list[Path]:
    rates = [s["offered_per_s"] for s in steps]
    series = {
        "saga_latency.png": {p: [s["saga_ms"][p] for s in steps] for p in ("p50", "p95", "p99")},
        "throughput.png": {"completed/s": [s["completed_per_s"] for s in steps], "offered/s": rates},
        "cdc_hop.png": {p: [s["cdc_hop_ms"][p] for s in steps] for p in ("p50", "p99")},
        "stack_rss.png": {"RSS MiB": [s["stack_rss_mib"] for s in steps]},
    }
    written = []
    for name, lines in series.items():
        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
        for label, values in lines.items():
            ax.plot(rates, values, marker="o", label=label, linestyle="--" if label == "offered/s" else "-")
        if name in ("saga_latency.png", "cdc_hop.png"):
            ax.set_yscale("log")  # a knee spans orders of magnitude
        ax.set_xlabel("offered sagas/s (open loop)")
        ax.set_title(CHARTS[name])
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    if dtm_steps:
        written.append(_side_by_side(steps, dtm_steps, out / "dtm_vs_walsaga.png"))
    return written


def _side_by_side(steps: list[dict[str, Any]], dtm_steps: list[dict[str, Any]], path: Path) -> Path:
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    for name, runs in (("walsaga", steps), ("DTM", dtm_steps)):
        rates = [s["offered_per_s"] for s in runs]
        for p, style in (("p50", "-"), ("p99", ":")):
            lat.plot(rates, [s["saga_ms"][p] for s in runs], marker="o", linestyle=style, label=f"{name} {p}")
        thr.plot(rates, [s["completed_per_s"] for s in runs], marker="o", label=name)
    thr.plot([s["offered_per_s"] for s in steps], [s["offered_per_s"] for s in steps], linestyle="--",
             label="offered")
    lat.set_yscale("log")
    lat.set_title("Saga latency (ms)")
    thr.set_title("Completed sagas/s")
    for ax in (lat, thr):
        ax.set_xlabel("offered sagas/s (open loop)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
