"""What a saga costs: CPU-ms per completed saga, per component of the stack.

Every component is a process tree the stack started (pid files in run/, each cluster's postmaster.pid). Its CPU is
read from /proc: utime + stime of every live process in the tree, plus cutime + cstime (what its reaped children
used: a PostgreSQL backend that disconnected, an nginx worker that was replaced). The idle rate of each component is
measured on the same stack just before a step, so a step's cost is given gross and net of idling.

Besides CPU, each step counts the statements every database ran for the stack per completed saga
(pg_stat_statements: every role but the admin, which only the benchmark's own reads use). Outside pipeline mode each
statement is a round trip, BEGIN and COMMIT included (an executemany's rows count one each). Unlike CPU, the count
does not depend on how busy the shared machine is, so a change that removes round trips shows in it exactly.

`python -m bench.cost` measures one step on the benchmark stack (started if it is not up, left up with --keep);
`make bench` measures every saga step, DTM's steps and each tuning row the same way.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from walsaga.stack import postgres
from walsaga.stack.config import DATABASES, StackConfig, db_url

# process name (pid file stem) prefix -> component, in the order the report lists them
GROUPS: tuple[tuple[str, str], ...] = (
    ("processors-", "orchestrator + notification fan-out"),
    ("-consumer", "participant consumers"),
    ("views-", "views"),
    ("reconciler-", "reconciler"),
    ("postgres[", "PostgreSQL"),
    ("kafka", "Kafka broker"),
    ("connect", "Kafka Connect"),
    ("-api-", "service APIs"),
    ("gateway", "gateway (nginx)"),
    ("dtm", "DTM server"),
)
COMPONENTS = tuple(dict.fromkeys(group for _, group in GROUPS))
JVM_COMPONENTS = ("Kafka broker", "Kafka Connect")
TICK = os.sysconf("SC_CLK_TCK")


def component_of(name: str) -> str:
    for marker, group in GROUPS:
        if marker in name if marker.startswith("-") else name.startswith(marker):
            return group
    return "other"


def roots(cfg: StackConfig, pg_dir: Callable[[str], Path]) -> dict[str, int]:
    """name -> pid of every process the stack started and that is alive now."""
    out: dict[str, int] = {}
    seen: set[int] = set()
    # sorted: "gateway" (the supervisor's pid file) before "nginx" (the one nginx writes itself): one process, once
    for pid_file in sorted(cfg.run.glob("*.pid")) if cfg.run.exists() else []:
        pid = _read_pid(pid_file)
        if pid and pid not in seen:
            out[pid_file.stem] = pid
            seen.add(pid)
    for db in DATABASES:
        pid = _read_pid(pg_dir(db) / "postmaster.pid")
        if pid:
            out[f"postgres[{db}]"] = pid
    return out


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (FileNotFoundError, PermissionError, IndexError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _stat(stat: Path) -> tuple[str, list[str]] | None:
    """A /proc stat file: the command (or thread) name, and the fields after it (state ppid ... utime(12) stime(13)
    cutime(14) cstime(15), 1-based from `state`); None when the process or thread is gone."""
    try:
        head, _, tail = stat.read_text().rpartition(")")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return (head.partition("(")[2], tail.split()) if head else None


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, clock ticks used by the process and its reaped children)."""
    table: dict[int, tuple[int, int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and (found := _stat(proc / "stat")):
            fields = found[1]
            table[int(proc.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return table


def tree_seconds(root_pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process tree."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {}
    for name, root in root_pids.items():
        ticks, todo = 0, [root]
        while todo:
            pid = todo.pop()
            ticks += table.get(pid, (0, 0))[1]
            todo.extend(children.get(pid, []))
        out[name] = ticks / TICK
    return out


def jit_seconds(root_pids: Mapping[str, int]) -> float:
    """CPU seconds the JIT compiler threads (HotSpot's "C1/C2 CompilerThread") of the JVM components used so far."""
    ticks = 0
    for name, pid in root_pids.items():
        if component_of(name) not in JVM_COMPONENTS:
            continue
        for task in Path(f"/proc/{pid}/task").glob("*"):
            found = _stat(task / "stat")
            if found and "CompilerThre" in found[0]:  # the name cut to 15 characters: "C2 CompilerThre"
                ticks += int(found[1][11]) + int(found[1][12])
    return ticks / TICK


def by_component(seconds: Mapping[str, float]) -> dict[str, float]:
    out = {c: 0.0 for c in COMPONENTS}
    for name, value in seconds.items():
        group = component_of(name)
        out[group] = out.get(group, 0.0) + value
    return out


# the statements of every role but the one running this query (the admin, which only the benchmark's own reads
# use); utility statements (BEGIN, COMMIT) count too: pg_stat_statements.track_utility is on by default
_STATEMENTS = """SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)"""


def statement_counts(cfg: StackConfig) -> dict[str, int]:
    """Per database: the statements the stack's roles ran so far."""
    out = {}
    for db in DATABASES:
        with psycopg.connect(db_url(cfg, db, "admin", driver="postgresql"), autocommit=True) as conn:
            row = conn.execute(_STATEMENTS).fetchone()
        out[db] = int(row[0]) if row else 0
    return out


def per_saga(before: Mapping[str, int], after: Mapping[str, int], completed: int) -> dict[str, float]:
    n = max(completed, 1)
    return {db: round((after[db] - before[db]) / n, 1) for db in after if db in before}


@dataclass
class Cost:
    """CPU-ms per completed saga by component, gross and net of the idle rate measured just before."""
    label: str
    offered_per_s: float
    completed: int
    elapsed_s: float
    idle_percent: dict[str, float]       # % of one core per component while idle
    gross_ms: dict[str, float]
    net_ms: dict[str, float]
    # {db: statements per completed saga}; empty in reports older than this field
    statements: dict[str, float] = field(default_factory=dict)

    @property
    def total_gross_ms(self) -> float:
        return round(sum(self.gross_ms.values()), 1)

    @property
    def total_net_ms(self) -> float:
        return round(sum(self.net_ms.values()), 1)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "total_gross_ms": self.total_gross_ms, "total_net_ms": self.total_net_ms}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Cost:
        return cls(**{k: v for k, v in d.items() if k not in ("total_gross_ms", "total_net_ms")})  # type: ignore


class Meter:
    """Samples the stack's process trees (DTM's server too: it has a pid file in run/ like the rest)."""

    def __init__(self, cfg: StackConfig, pg_dir: Callable[[str], Path]) -> None:
        self._cfg, self._pg_dir = cfg, pg_dir
        self.idle: dict[str, float] = {}
        self._statements_before: dict[str, int] = {}

    def sample(self) -> tuple[float, dict[str, float]]:
        return time.monotonic(), by_component(tree_seconds(roots(self._cfg, self._pg_dir)))

    def start_step(self) -> tuple[float, dict[str, float]]:
        """The CPU sample a step's cost_since starts from; the databases' statement counts are taken with it."""
        self._statements_before = statement_counts(self._cfg)
        return self.sample()

    def jit_seconds(self) -> float:
        return jit_seconds(roots(self._cfg, self._pg_dir))

    def measure_idle(self, seconds: float) -> dict[str, float]:
        """CPU seconds per second of each component on a quiet stack; kept for the net figures of later steps."""
        t0, before = self.sample()
        time.sleep(seconds)
        t1, after = self.sample()
        self.idle = {c: max(0.0, after.get(c, 0.0) - before.get(c, 0.0)) / (t1 - t0) for c in after}
        return self.idle

    def cost_since(self, before: tuple[float, dict[str, float]], label: str, offered: float,
                   completed: int) -> Cost:
        spent = cost(label, offered, completed, before, self.sample(), self.idle)
        if self._statements_before:
            spent.statements = per_saga(self._statements_before, statement_counts(self._cfg), completed)
            self._statements_before = {}
        return spent


def cost(label: str, offered: float, completed: int, before: tuple[float, dict[str, float]],
         after: tuple[float, dict[str, float]], idle: Mapping[str, float]) -> Cost:
    (t0, b), (t1, a) = before, after
    elapsed = t1 - t0
    per = max(completed, 1)
    gross = {c: round(max(0.0, a.get(c, 0.0) - b.get(c, 0.0)) * 1000 / per, 2) for c in a}
    net = {c: round(max(0.0, (a.get(c, 0.0) - b.get(c, 0.0)) - idle.get(c, 0.0) * elapsed) * 1000 / per, 2)
           for c in a}
    return Cost(label, offered, completed, round(elapsed, 1),
                {c: round(v * 100, 1) for c, v in idle.items()}, gross, net)


def table(costs: Iterable[Cost]) -> list[str]:
    """Markdown: one column pair (gross / net) per measured step, one row per component."""
    costs = list(costs)
    if not costs:
        return []
    head = "| component | idle (% of a core) | " + " | ".join(
        f"{c.label}: gross | net" for c in costs) + " |"
    rows = [head, "|---|---|" + "---|---|" * len(costs)]
    comps = [c for c in COMPONENTS if any(x.gross_ms.get(c, 0) > 0 for x in costs)]
    for comp in comps:
        rows.append(f"| {comp} | {costs[0].idle_percent.get(comp, 0.0)} | " + " | ".join(
            f"{c.gross_ms.get(comp, 0.0):.1f} | {c.net_ms.get(comp, 0.0):.1f}" for c in costs) + " |")
    rows.append(f"| **whole stack** | {round(sum(costs[0].idle_percent.values()), 1)} | " + " | ".join(
        f"**{c.total_gross_ms:.1f}** | **{c.total_net_ms:.1f}**" for c in costs) + " |")
    rows.append("| completed sagas (elapsed s) | | " + " | ".join(
        f"{c.completed} ({c.elapsed_s:g} s) | " for c in costs) + " |")
    return rows


def statements_table(costs: Iterable[Cost]) -> list[str]:
    """Markdown: PostgreSQL statements per completed saga, one row per database, one column per step."""
    costs = [c for c in costs if c.statements]
    if not costs:
        return []
    rows = ["| database | " + " | ".join(c.label for c in costs) + " |", "|---|" + "---|" * len(costs)]
    for db in DATABASES:
        rows.append(f"| {db} | " + " | ".join(f"{c.statements.get(db, 0.0):.1f}" for c in costs) + " |")
    rows.append("| **all** | " + " | ".join(f"**{sum(c.statements.values()):.1f}**" for c in costs) + " |")
    return rows


def stack_meter(cfg: StackConfig) -> Meter:
    return Meter(cfg, lambda db: postgres.cluster_dir(cfg, db))


def main() -> int:
    from bench.run import bench_config, run
    from walsaga.stack import lifecycle

    parser = argparse.ArgumentParser(prog="bench.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    parser.add_argument("--warmup-seconds", type=float, default=300.0,
                        help="most seconds of unmeasured load first, until the JVMs' JIT compilers are quiet "
                             "(bench.run.warm_up; 0: none)")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark stack running afterwards")
    args = parser.parse_args()
    cfg = bench_config()
    lifecycle.up(cfg)
    try:
        # the benchmark's own step (bench.run.run): warm-up, idle rate, then the step measured to the last consumer
        (step,) = run(cfg, [args.rate], args.seconds, stack_meter(cfg), args.warmup_seconds, args.idle_seconds)
        assert step.cost is not None
        print("\n".join(table([Cost.from_dict(step.cost)])))
        print("PostgreSQL statements (each a round trip) per completed saga:")
        print("\n".join(statements_table([Cost.from_dict(step.cost)])))
        print(f"POST /orders answered in p50 {step.accept_ms['p50']} ms, p99 {step.accept_ms['p99']} ms "
              f"(accepted {step.accepted}, errors {step.errors or 'none'})")
    finally:
        if not args.keep:
            lifecycle.down(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
