"""The `walsaga` command: up, down, status, demo, wipe. The Makefile calls it; so can you."""
from __future__ import annotations

import argparse
import json
import sys

from walsaga.stack import lifecycle
from walsaga.stack.config import StackConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="walsaga", description="walsaga local stack and operations")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start the whole stack in the background and wait until it is healthy")
    sub.add_parser("down", help="stop everything, keeping data")
    st = sub.add_parser("status", help="health of every component, connector states and slot lag")
    st.add_argument("--json", action="store_true")
    sub.add_parser("demo", help="run three orders (confirmed, declined, out of stock) and print their journeys")
    wp = sub.add_parser("wipe", help="stop everything and delete all stack data")
    wp.add_argument("--yes", action="store_true", help="really delete")
    args = parser.parse_args(argv)
    cfg = StackConfig.from_env()

    if args.cmd == "up":
        lifecycle.up(cfg)
    elif args.cmd == "down":
        lifecycle.down(cfg)
    elif args.cmd == "status":
        health = lifecycle.status(cfg)
        if args.json:
            print(json.dumps([h.__dict__ for h in health], indent=2))
        else:
            for h in health:
                print(f"{'OK  ' if h.ok else 'DOWN'}  {h.component:<26} {h.detail}")
        return 0 if all(h.ok for h in health) else 1
    elif args.cmd == "demo":
        from walsaga import demo

        return demo.run(cfg)
    elif args.cmd == "wipe":
        if not args.yes:
            print("walsaga wipe deletes every database, topic and log of this stack; add --yes", file=sys.stderr)
            return 2
        lifecycle.wipe(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
