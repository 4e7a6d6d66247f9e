"""Writes deploy/compose/.env from env.example with a random value for every *_PASSWORD and a fresh API token key
pair (by openssl), as the local stack generates its secrets on first start (walsaga/stack/config.py Secrets). Refuses
to overwrite: the databases keep the passwords they were created with. Standard library and openssl only, so it runs
before anything is installed."""
from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def token_keys() -> dict[str, str]:
    """A fresh Ed25519 pair for the API tokens (services/common/auth.py), by openssl: the standard library has no
    Ed25519."""
    private = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-outform", "DER"], capture_output=True,
                             check=True).stdout
    public = subprocess.run(["openssl", "pkey", "-inform", "DER", "-pubout", "-outform", "DER"], input=private,
                            capture_output=True, check=True).stdout
    return {"WALSAGA_TOKEN_SIGNING_KEY": base64.b64encode(private).decode(),
            "WALSAGA_TOKEN_PUBLIC_KEY": base64.b64encode(public).decode()}


def render(example: str, keys: dict[str, str]) -> str:
    lines = []
    for line in example.splitlines():
        key, sep, _ = line.partition("=")
        if sep and not line.startswith("#") and key.endswith("_PASSWORD"):
            # token_urlsafe: letters, digits, '-' and '_', safe unescaped in a database URL
            line = f"{key}={secrets.token_urlsafe(24)}"
        elif sep and not line.startswith("#") and key in keys:
            line = f"{key}={keys[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> None:
    target = HERE / ".env"
    if target.exists():
        sys.exit(f"{target} exists; delete it first (and the data volumes: `docker compose down -v`) to start over")
    body = render((HERE / "env.example").read_text(), token_keys())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(body)
    print(f"wrote {target}; now: docker compose --env-file {os.path.relpath(target)} up -d --build")


if __name__ == "__main__":
    main()
