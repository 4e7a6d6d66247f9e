"""The reconciliation report: totals by kind, an age histogram, samples of each kind (bounded), repairs sent;
written as JSON and as a self-contained HTML page with SVG charts."""
from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciliation.checks import Divergence, Kind

AGE_BUCKETS = [(60, "< 1 min"), (300, "1-5 min"), (900, "5-15 min"), (3600, "15-60 min"), (6 * 3600, "1-6 h"),
               (24 * 3600, "6-24 h"), (float("inf"), "> 1 day")]
SAMPLES_PER_KIND = 200


def age_bucket(seconds: float) -> str:
    return next(label for limit, label in AGE_BUCKETS if seconds < limit)


@dataclass
class Report:
    started_at: datetime
    scope: str
    orders_scanned: int = 0
    skus_scanned: int = 0
    in_flight: int = 0
    by_kind: Counter = field(default_factory=Counter)
    by_age: Counter = field(default_factory=Counter)
    repairs: Counter = field(default_factory=Counter)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    finished_at: datetime | None = None

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def add(self, d: Divergence, now: datetime, repaired: bool) -> None:
        self.by_kind[d.kind.value] += 1
        age = (now - d.since).total_seconds() if d.since else 0.0
        self.by_age[age_bucket(age)] += 1
        if repaired and d.repair:
            self.repairs[d.repair.value] += 1
        kept = self.samples.setdefault(d.kind.value, [])
        if len(kept) < SAMPLES_PER_KIND:
            kept.append({"subject": d.subject, "detail": d.detail, "age_s": round(age, 1),
                         "repair": d.repair.value if d.repair else None, "repaired": repaired and bool(d.repair)})

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "scope": self.scope, "orders_scanned": self.orders_scanned, "skus_scanned": self.skus_scanned,
            "in_flight_skipped": self.in_flight, "divergences": self.total,
            "by_kind": {k.value: self.by_kind.get(k.value, 0) for k in Kind},
            "by_age": {label: self.by_age.get(label, 0) for _, label in AGE_BUCKETS},
            "repairs_sent": dict(self.repairs), "samples": self.samples,
        }

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        data = self.to_json()
        json_path, html_path = directory / "reconciliation.json", directory / "reconciliation.html"
        json_path.write_text(json.dumps(data, indent=2) + "\n")
        html_path.write_text(render_html(data))
        return json_path, html_path


def bar_chart(title: str, values: dict[str, int], width: int = 640, bar_h: int = 22) -> str:
    """A horizontal bar chart as inline SVG (no plotting library needed)."""
    label_w, top = 190, 28
    peak = max(values.values(), default=0) or 1
    height = top + bar_h * len(values) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="0" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    for i, (label, value) in enumerate(values.items()):
        y = top + i * bar_h
        w = int((width - label_w - 60) * value / peak)
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{html.escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{bar_h - 6}" '
                     f'fill="{"#c0392b" if value else "#bbb"}"/>')
        parts.append(f'<text x="{label_w + w + 6}" y="{y + 15}" font-size="12">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(data: dict[str, Any]) -> str:
    verdict = "clean" if data["divergences"] == 0 else f'{data["divergences"]} divergences'
    rows = "".join(
        f"<tr><td>{html.escape(kind)}</td><td>{html.escape(s['subject'])}</td><td>{html.escape(s['detail'])}</td>"
        f"<td>{s['age_s']}</td><td>{html.escape(s['repair'] or '-')}{' (sent)' if s['repaired'] else ''}</td></tr>"
        for kind, samples in data["samples"].items() for s in samples)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>walsaga reconciliation: {html.escape(verdict)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}td,th{{padding:2px 8px;text-align:left;
border-bottom:1px solid #ddd;font-size:13px}}</style></head><body>
<h1>walsaga reconciliation: {html.escape(verdict)}</h1>
<p>Scope: {html.escape(data["scope"])}. Started {data["started_at"]}, finished {data["finished_at"]}.
{data["orders_scanned"]} order ids and {data["skus_scanned"]} SKUs compared across the service databases;
{data["in_flight_skipped"]} changed within the grace period were left for the next run.
Repairs sent: {html.escape(json.dumps(data["repairs_sent"])) if data["repairs_sent"] else "none"}.</p>
{bar_chart("Divergences by kind", data["by_kind"])}
{bar_chart("Age of divergences (since the subject last changed)", data["by_age"])}
<h2>Samples (at most {SAMPLES_PER_KIND} per kind)</h2>
<table><tr><th>kind</th><th>subject</th><th>detail</th><th>age (s)</th><th>repair</th></tr>{rows}</table>
</body></html>
"""
