"""Crash points for the fault suite: a process started with WALSAGA_CRASH_POINT=<name> dies like `kill -9` the
first time it reaches that point (exit 137, no cleanup, no offset commit). The marker file makes it crash once, so
the restarted process gets past. Unset in normal runs, where crash_point() does nothing."""
from __future__ import annotations

import os
from pathlib import Path


def crash_point(name: str) -> None:
    if os.environ.get("WALSAGA_CRASH_POINT") != name:
        return
    marker = Path(os.environ.get("WALSAGA_CRASH_MARKER", f"/tmp/walsaga-crash-{name}"))
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    os._exit(137)
