"""Fault-suite fixtures: the shared test stack (see tests/conftest.py), the replication slots, and the reliability
report.

`make faults` sets WALSAGA_WRITE_REPORT=1, and the report is written to docs/reliability/ at the end of the run."""
from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from tests.faults.harness import Slots
from walsaga.client import Gateway
from walsaga.stack.config import DEBEZIUM_VERSION, KAFKA_VERSION, REPO, StackConfig

REPORT_DIR = REPO / "docs" / "reliability"


@dataclass
class CaseResult:
    case: str
    orders: int
    in_flight_at_fault: int
    outcomes: dict[str, int]
    parked: int
    dedup_hits: int
    transient_retries: int
    dead_letters: int
    deadline_resends: int
    recovery_s: float
    evidence: str


class Report:
    def __init__(self, name: str = "REPORT", title: str = "walsaga reliability report",
                 command: str = "make faults") -> None:
        self.rows: list[CaseResult] = []
        self.name, self.title, self.command = name, title, command

    def add(self, row: CaseResult) -> None:
        self.rows.append(row)

    def write(self) -> None:
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        results = "results.json" if self.name == "REPORT" else f"{self.name.lower()}-results.json"
        (REPORT_DIR / results).write_text(json.dumps([asdict(r) for r in self.rows], indent=2) + "\n")
        lines = [
            f"# {self.title}",
            "",
            f"Generated {stamp} by `{self.command}` on a {os.cpu_count()}-core "
            f"{platform.machine()} machine, Python {platform.python_version()}, Kafka {KAFKA_VERSION}, "
            f"Debezium {DEBEZIUM_VERSION}. Each case runs a mixed batch of orders (approvals, declines, out of "
            "stock, three hot SKUs), injects the fault in the middle, heals, drains (consumer lag 0, every slot "
            "present and bounded) and checks I1-I4 (see tests/faults/harness.py). A row exists only for a case that "
            "passed.",
            "",
            "| fault | orders | in flight at fault | outcomes | parked | dedup hits | transient retries | "
            "dead letters | deadline re-sends | recovery (s) | the fault bit because |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
            lines.append(f"| {r.case} | {r.orders} | {r.in_flight_at_fault} | {outcomes} | {r.parked} | "
                         f"{r.dedup_hits} | {r.transient_retries} | {r.dead_letters} | {r.deadline_resends} | "
                         f"{r.recovery_s:.1f} | {r.evidence} |")
        lines += ["", f"Regenerate: `{self.command}` (runs its own stack, then stops it).", ""]
        (REPORT_DIR / f"{self.name}.md").write_text("\n".join(lines))


@pytest.fixture(scope="session")
def report() -> Iterator[Report]:
    yield from written_at_the_end(Report())


def written_at_the_end(rep: Report) -> Iterator[Report]:
    """The report for the session; written to docs/reliability/ when WALSAGA_WRITE_REPORT=1 and a case passed."""
    yield rep
    if os.environ.get("WALSAGA_WRITE_REPORT") == "1" and rep.rows:
        rep.write()


@pytest.fixture(scope="session")
def slots(stack: StackConfig) -> Slots:
    return Slots(stack)


Ctx = tuple[StackConfig, Gateway, dict[str, Engine], Slots, Report]


@pytest.fixture()
def ctx(stack: StackConfig, gateway: Gateway, engines: dict[str, Engine], slots: Slots, report: Report) -> Ctx:
    """What every fault case needs, in run_case's argument order."""
    return stack, gateway, engines, slots, report
