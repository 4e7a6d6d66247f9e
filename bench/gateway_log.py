"""Server-side latency from the gateway's own access log (nginx `log_format timed`, stack/templates/nginx.conf):
`$msec $request_method $uri $status $request_time $upstream_response_time`, one request a line. Unlike a client's
figure, this does not include the client's own queueing (on one box the load generator shares the CPU)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import percentiles


@dataclass(frozen=True)
class Entry:
    at: float
    method: str
    uri: str
    status: int
    request_s: float           # first byte read from the client -> last byte sent
    upstream_s: float | None   # time waiting on the API instance(s); None when no upstream was involved (a 429)


def parse(line: str) -> Entry | None:
    parts = line.split(maxsplit=5)
    if len(parts) != 6:
        return None  # another format (a log line from before the format changed)
    try:
        # one time per upstream tried ("2.001, 0.090" when passed on to a second instance; "-" when none was)
        upstream = [float(x) for x in parts[5].replace(",", " ").replace(":", " ").split() if x != "-"]
        return Entry(float(parts[0]), parts[1], parts[2], int(parts[3]), float(parts[4]),
                     sum(upstream) if upstream else None)
    except ValueError:
        return None


def entries(log: Path, since_offset: int) -> Iterator[Entry]:
    with open(log, "rb") as f:
        f.seek(since_offset)
        for raw in f:
            entry = parse(raw.decode(errors="replace"))
            if entry is not None:
                yield entry


@dataclass
class Summary:
    """Per kind of request: count, statuses, gateway time percentiles (ms), upstream time percentiles (ms)."""
    count: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    request_ms: dict[str, float] = field(default_factory=dict)
    upstream_ms: dict[str, float] = field(default_factory=dict)


def summarize(found: list[Entry]) -> Summary:
    statuses: dict[str, int] = {}
    for e in found:
        statuses[str(e.status)] = statuses.get(str(e.status), 0) + 1
    return Summary(len(found), statuses, percentiles(e.request_s * 1000 for e in found),
                   percentiles(e.upstream_s * 1000 for e in found if e.upstream_s is not None))


def by_kind(log: Path, since_offset: int, read_prefix: str = "/orders/") -> dict[str, Summary]:
    """'reads': GETs of one order (what the open-loop reader asks); 'writes': every POST/PUT."""
    reads, writes = [], []
    for e in entries(log, since_offset):
        if e.method == "GET" and e.uri.startswith(read_prefix):
            reads.append(e)
        elif e.method in ("POST", "PUT"):
            writes.append(e)
    return {"reads": summarize(reads), "writes": summarize(writes)}


def error_reasons(log: Path, since_offset: int) -> dict[str, int]:
    """What nginx's error log says went wrong with upstreams since a mark, counted by reason (e.g. `connect() failed
    (111: Connection refused)`, `no live upstreams`, `upstream prematurely closed connection`); throttling notices
    (limit_req) are left out: they are the 429s."""
    if not log.exists():
        return {}
    reasons: dict[str, int] = {}
    with open(log, "rb") as f:
        f.seek(since_offset)
        for raw in f:
            line = raw.decode(errors="replace")
            if "limiting requests" in line or "[error]" not in line and "[crit]" not in line:
                continue
            message = line.split("*", 1)[-1].split(" ", 1)[-1]  # after the connection number
            reason = message.split(" while ", 1)[0].split(", client:", 1)[0].strip()
            reasons[reason] = reasons.get(reason, 0) + 1
    return reasons
