"""A component's CPU priority is the configured one, whatever its starter's (walsaga/stack/procs.py)."""
from __future__ import annotations

import os
import subprocess
import sys

from walsaga.stack import procs


def _child_nice(starter_nice: int, configured: int) -> int:
    """The priority a child started the way procs.start does (set_nice before exec) ends up with, from a starter at
    `starter_nice`."""
    code = ("import os, subprocess, sys\n"
            f"os.setpriority(os.PRIO_PROCESS, 0, {starter_nice})\n"
            "from walsaga.stack import procs\n"
            f"child = subprocess.run([sys.executable, '-c', 'import os; print(os.getpriority(os.PRIO_PROCESS, 0))'],\n"
            f"                       preexec_fn=lambda: procs.set_nice({configured}), capture_output=True, text=True)\n"
            "print(child.stdout.strip())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_a_component_gets_its_configured_priority_not_its_starters_shifted() -> None:
    starter = min(os.getpriority(os.PRIO_PROCESS, 0) + 5, 17)  # lower priorities: any user may take them
    assert _child_nice(starter, starter + 2) == starter + 2  # shifted, it would be 2 * starter + 2
    if os.geteuid() == 0:  # the benchmark's case: started from the clients' -10, a component configured at 0 runs at 0
        assert _child_nice(-10, 0) == 0
        assert _child_nice(-10, -10) == -10


def test_pg_ctl_is_shifted_by_the_difference_from_our_own_priority() -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert procs.nice_prefix(own) == []
    assert procs.nice_prefix(own + 3) == ["nice", "-n", "3"]
