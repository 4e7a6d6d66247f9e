"""The `walsaga` command: up, down, status, token, demo, wipe. The Makefile calls it; so can you."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from services.common import auth
from services.common.auth import Role
from stream_processors.saga.model import SagaStatus
from walsaga.client import issue_token
from walsaga.stack import lifecycle, nodes, rolling
from walsaga.stack.config import REPO, SERVICES, StackConfig


class _Sub:
    """add_parser with the shared options added to every subcommand."""

    def __init__(self, actions: argparse._SubParsersAction[argparse.ArgumentParser],
                 parent: argparse.ArgumentParser) -> None:
        self.actions, self.parent = actions, parent

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return self.actions.add_parser(name, parents=[self.parent], **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="walsaga", description="walsaga local stack and operations")
    # every subcommand takes --ha: it then acts on the HA profile's stack (its own home and ports)
    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument("--ha", action="store_true",
                         help="the HA profile: 3 KRaft nodes, 2 Connect workers, two of every worker process")
    sub = _Sub(parser.add_subparsers(dest="cmd", required=True), profile)
    sub.add_parser("up", help="start the whole stack in the background and wait until it is healthy")
    sub.add_parser("down", help="stop everything, keeping data")
    rs = sub.add_parser("restart", help="HA profile: restart every node one at a time, each healthy before the next "
                                        "(what an upgrade does); the databases switch over to their standbys")
    rs.add_argument("--rolling", action="store_true", required=True, help="one node at a time (the only way)")
    rs.add_argument("--tiers", nargs="+", choices=rolling.TIERS, default=list(rolling.TIERS),
                    help="only these tiers, in the order of all of them (default: every tier)")
    st = sub.add_parser("status", help="every node: kind, role (primary/standby, quorum leader/follower), state, "
                                       "pid and lag; exit 1 when one is down")
    st.add_argument("--json", action="store_true", help="the same as a JSON list of objects")
    tk = sub.add_parser("token", help="print a bearer token for the API (only the token, on stdout)")
    tk.add_argument("--subject", required=True, help="who the token speaks for (a customer id for --role customer)")
    tk.add_argument("--role", required=True, choices=[r.value for r in Role])
    tk.add_argument("--ttl", type=int, default=auth.DEFAULT_TTL_S, help="lifetime in seconds (default: %(default)s)")
    sub.add_parser("demo", help="run three orders (confirmed, declined, out of stock) and print their journeys")
    wp = sub.add_parser("wipe", help="stop everything and delete all stack data")
    wp.add_argument("--yes", action="store_true", help="really delete")
    sg = sub.add_parser("sagas", help="list sagas in a status (default: PARKED), or count them by version")
    sg.add_argument("--status", default="PARKED", choices=[s.value for s in SagaStatus])
    sg.add_argument("--versions", action="store_true",
                    help="instances not over, by definition version and status: a version may leave the catalog "
                         "once it has none")
    one = sub.add_parser("saga", help="one saga: show its history, re-drive or skip its awaited step when parked")
    one.add_argument("action", choices=["show", "redrive", "skip"])
    one.add_argument("saga_id")
    dlq = sub.add_parser("dlq", help="dead letters: list them, or replay one to its origin topic")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--partition", type=int)
    dlq.add_argument("--offset", type=int)
    dlq.add_argument("--limit", type=int, default=100)
    cdc = sub.add_parser("cdc", help="CDC: print a participant's connector config as registered (config), or accept "
                                     "the gap after a lost replication slot (accept-gap)")
    cdc.add_argument("action", choices=["config", "accept-gap"])
    cdc.add_argument("service", choices=list(SERVICES))
    cdc.add_argument("--yes", action="store_true", help="really restart the connector from a fresh slot")
    sc = sub.add_parser("schemas", help="contracts: check every version against the earlier ones and the frozen "
                                         "fingerprints (exit 1 on a problem), or publish them to the stack")
    sc.add_argument("action", choices=["check", "publish"])
    cp = sub.add_parser("compose", help="docker-compose.yml, docker-compose.ha.yml, their gateway config and "
                                        "env.example: render them from deploy/compose/templates/ and the participant "
                                        "registry, or check (exit 1 when one is stale)")
    cp.add_argument("action", choices=["render", "check"])
    rc = sub.add_parser("reconcile", help="compare the service databases, report every divergence (JSON + HTML); "
                                          "exit 0 when clean, 1 when divergences were found")
    rc.add_argument("--repair", action="store_true", help="send the safe repairs (refund, void, release, notify)")
    rc.add_argument("--out", help="report directory (default: <stack home>/reports)")
    rc.add_argument("--since", help="only orders created at or after this ISO-8601 time")
    rc.add_argument("--grace", type=float, default=60.0, help="skip orders changed within this many seconds")
    rc.add_argument("--saga-sla", type=float, default=300.0, help="an unfinished saga older than this is stuck")
    args = parser.parse_args(argv)
    cfg = StackConfig.from_env(ha=True if args.ha else None)
    if args.cmd == "token":
        try:
            print(issue_token(cfg, args.subject, Role(args.role), args.ttl))
        except ValueError as exc:
            print(f"walsaga token: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "reconcile":
        return _reconcile(cfg, args)
    if args.cmd == "schemas":
        return _schemas(cfg, args.action)
    if args.cmd == "compose":
        return _compose(args.action)
    if args.cmd == "cdc" and args.action == "config":
        name, config = lifecycle.connector_config(cfg, args.service)
        print(json.dumps({"name": name, "config": config}, indent=2))
        return 0
    if args.cmd == "cdc":
        if not args.yes:
            print("events committed while the slot was lost will not be published; add --yes", file=sys.stderr)
            return 2
        lifecycle.accept_slot_gap(cfg, args.service)
        return 0
    if args.cmd in ("sagas", "saga", "dlq"):
        return _operate(cfg, args)

    if args.cmd == "restart":
        try:
            rolling.run(cfg, args.tiers)
        except RuntimeError as exc:
            print(f"walsaga restart: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "up":
        lifecycle.up(cfg)
    elif args.cmd == "down":
        lifecycle.down(cfg)
    elif args.cmd == "status":
        found = nodes.status(cfg)
        if args.json:
            print(json.dumps([asdict(n) for n in found], indent=2))
        else:
            for n in found:
                lag = "-" if n.lag is None else str(n.lag)
                print(f"{'OK  ' if n.ok else 'DOWN'}  {n.name:<22} {n.kind:<20} {n.role:<28} {n.state:<9} "
                      f"pid {n.pid or '-':<8} lag {lag:<6} {n.detail}")
        return 0 if all(n.ok for n in found) else 1
    elif args.cmd == "demo":
        from walsaga import demo

        return demo.run(cfg)
    elif args.cmd == "wipe":
        if not args.yes:
            print("walsaga wipe deletes every database, topic and log of this stack; add --yes", file=sys.stderr)
            return 2
        lifecycle.wipe(cfg)
    return 0


def _reconcile(cfg: StackConfig, args: argparse.Namespace) -> int:
    import os
    from datetime import datetime
    from pathlib import Path

    from sqlalchemy import create_engine

    from reconciliation import scan
    from reconciliation.run import reconcile
    from walsaga.stack import kafka_acls
    from walsaga.stack.config import db_url

    since = datetime.fromisoformat(args.since) if args.since else None
    engines = {db: create_engine(db_url(cfg, db, "reader"), pool_size=1) for db in scan.SOURCES}
    channels = tuple(c for c in os.environ.get("WALSAGA_NOTIFICATION_CHANNELS", "log").split(",") if c)
    report = reconcile(scan.Sources(**engines), Path(args.out) if args.out else cfg.home / "reports", since=since,
                       grace_s=args.grace, saga_sla_s=args.saga_sla, channels=channels,
                       repair_kafka=kafka_acls.admin(cfg) if args.repair else None)
    for engine in engines.values():
        engine.dispose()
    return 0 if report.total == 0 else 1


def _schemas(cfg: StackConfig, action: str) -> int:
    from schemas import codec, evolution
    from walsaga.stack import kafka_acls, topics

    if action == "publish":
        topics.publish_contracts(kafka_acls.admin(cfg))
        return 0
    problems = evolution.release_problems(codec.sources())
    for problem in problems:
        print(problem, file=sys.stderr)
    subjects = {name for name, _ in codec.sources()}
    print(f"{len(codec.sources())} contract versions of {len(subjects)} subjects: "
          + (f"{len(problems)} problem(s)" if problems else "every version reads every other, none changed"))
    return 1 if problems else 0


def _compose(action: str) -> int:
    from walsaga import compose

    if action == "render":
        changed = compose.write()
        names = ", ".join(str(p.relative_to(REPO)) for p in changed)
        print(f"rendered {names}" if changed else "rendered nothing: all current")
        return 0
    stale = compose.stale()
    for path in stale:
        print(f"{path.relative_to(REPO)} is stale: run `walsaga compose render` and commit it", file=sys.stderr)
    print(f"compose files: {len(stale)} stale" if stale else "compose files: current")
    return 1 if stale else 0


def _operate(cfg: StackConfig, args: argparse.Namespace) -> int:
    from walsaga import operate

    if args.cmd == "sagas" and args.versions:
        for line in operate.versions_in_use(cfg):
            print(line)
    elif args.cmd == "sagas":
        for line in operate.list_sagas(cfg, SagaStatus(args.status)):
            print(line)
    elif args.cmd == "saga" and args.action == "show":
        print("\n".join(operate.show_saga(cfg, args.saga_id)))
    elif args.cmd == "saga":
        dispatch = operate.act_on_saga(cfg, args.saga_id, args.action)
        sent = ", ".join(c.command_type for c in dispatch.commands) or "nothing"
        print(f"saga {args.saga_id}: {args.action} done; sent {sent}")
    elif args.action == "list":
        letters = operate.read_dead_letters(cfg, args.limit)
        for letter in letters:
            print(letter.describe())
        print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    else:
        if args.partition is None or args.offset is None:
            print("walsaga dlq replay needs --partition and --offset (see walsaga dlq list)", file=sys.stderr)
            return 2
        matches = [d for d in operate.read_dead_letters(cfg, 100_000)
                   if (d.partition, d.offset) == (args.partition, args.offset)]
        if not matches:
            print(f"no dead letter at {args.partition}:{args.offset}", file=sys.stderr)
            return 1
        print(f"replayed to {operate.replay_dead_letter(cfg, matches[0])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
