"""What the continuous checks do with what they found, pure: a new violation is counted and, where a repair is safe,
repaired; a repair that did not take is retried a few times, then the violation waits for an operator; a violation
that is no longer found is resolved."""
from __future__ import annotations

from dataclasses import dataclass, field

from reconciliation.checks import Divergence

MAX_REPAIRS = 3


class Status:
    REPAIRING = "REPAIRING"
    NEEDS_OPERATOR = "NEEDS_OPERATOR"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True)
class Known:
    kind: str
    status: str
    repairs_sent: int


@dataclass(frozen=True)
class Row:
    kind: str
    status: str
    detail: str
    repair: str | None
    repairs_sent: int


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)        # violations to upsert
    new: list[Row] = field(default_factory=list)         # of those, the ones not open before (to count and log)
    repairs: list[Divergence] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)    # kinds no longer found
    recheck: bool = False                                # a repair was sent: look again after the grace period


def decide(found: list[Divergence], known: dict[str, Known], max_repairs: int = MAX_REPAIRS) -> Outcome:
    out = Outcome()
    by_kind: dict[str, list[Divergence]] = {}
    for d in found:
        by_kind.setdefault(d.kind.value, []).append(d)
    for kind, ds in by_kind.items():
        before = known.get(kind)
        open_before = before is not None and before.status != Status.RESOLVED
        sent = before.repairs_sent if open_before and before else 0
        repairable = [d for d in ds if d.repair is not None]
        detail = "; ".join(d.detail for d in ds)
        if repairable and sent < max_repairs:
            out.repairs += repairable
            row = Row(kind, Status.REPAIRING, detail, repairable[0].repair.value, sent + 1)  # type: ignore[union-attr]
            out.recheck = True
        else:
            repair = repairable[0].repair.value if repairable else None  # type: ignore[union-attr]
            row = Row(kind, Status.NEEDS_OPERATOR, detail, repair, sent)
        out.rows.append(row)
        if not open_before:
            out.new.append(row)
    out.resolved = sorted(k for k, v in known.items() if v.status != Status.RESOLVED and k not in by_kind)
    return out
