"""The read-your-writes contract between the write side (orders API) and the read side (order queries): every order
write answers `X-Consistency-Token: <order_id>@<version>`; a read presenting it waits until the view has applied
that version (services/queries/api.py)."""
from __future__ import annotations

TOKEN_HEADER = "X-Consistency-Token"
STATE_HEADER = "X-Consistency"  # on reads that presented a token: fresh | stale


def parse_token(token: str) -> tuple[str, int]:
    """A consistency token is `<order_id>@<version>` (what every order write answers); ValueError otherwise."""
    order_id, sep, version = token.rpartition("@")
    if not sep or not order_id or not version.isascii() or not version.isdigit() or len(version) > 9:
        raise ValueError(f"consistency token {token!r} is not <order_id>@<version>")
    return order_id, int(version)


def make_token(order_id: str, version: int) -> str:
    return f"{order_id}@{version}"
