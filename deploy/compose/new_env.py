"""Writes deploy/compose/.env from env.example with a random value for every *_PASSWORD, as the local stack generates
its secrets file on first start (walsaga/stack/config.py Secrets). Refuses to overwrite: the databases keep the
passwords they were created with. Standard library only, so it runs before anything is installed."""
from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(example: str) -> str:
    lines = []
    for line in example.splitlines():
        key, sep, _ = line.partition("=")
        if sep and not line.startswith("#") and key.endswith("_PASSWORD"):
            # token_urlsafe: letters, digits, '-' and '_', safe unescaped in a database URL
            line = f"{key}={secrets.token_urlsafe(24)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> None:
    target = HERE / ".env"
    if target.exists():
        sys.exit(f"{target} exists; delete it first (and the data volumes: `docker compose down -v`) to start over")
    body = render((HERE / "env.example").read_text())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body)
    print(f"wrote {target}; now: docker compose --env-file {os.path.relpath(target)} up -d --build")


if __name__ == "__main__":
    main()
