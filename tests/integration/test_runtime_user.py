"""No process of the stack runs as root, and its files are nobody else's (walsaga/stack/runtime_user.py): checked on
the running test stack, whoever started it (as root, CI's case, everything but PostgreSQL runs as `walsaga`)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from walsaga.stack import apps, procs, runtime_user
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def _uids(pid: int) -> tuple[int, ...]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return tuple(int(u) for u in line.split()[1:])
    raise AssertionError(f"no Uid line for {pid}")


def _stack_pids(stack: StackConfig) -> dict[str, int]:
    names = [*apps.process_names(stack), *stack.broker_names(), *stack.connect_names(), "gateway"]
    return {n: pid for n in names if (pid := procs.read_pid(stack, n))}


def test_no_process_of_the_stack_runs_as_root(stack: StackConfig) -> None:
    pids = _stack_pids(stack)
    assert len(pids) >= 20, sorted(pids)  # the APIs, consumers, Faust workers, broker, Connect, gateway
    as_root = {name: _uids(pid) for name, pid in pids.items() if 0 in _uids(pid)}
    assert as_root == {}
    if os.geteuid() == 0:
        walsaga = runtime_user.account()
        assert walsaga is not None
        assert {_uids(pid)[1] for pid in pids.values()} == {walsaga.pw_uid}


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_nginx_workers_run_as_the_runtime_user_too(stack: StackConfig) -> None:
    master = procs.read_pid(stack, "gateway")
    assert master is not None
    workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(int(p.name)) == master]
    assert workers
    assert all(0 not in _uids(pid) for pid in workers)


def _open_to_others(root: Path) -> list[str]:
    found = []
    for path in (root, *root.rglob("*")):
        try:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
        except FileNotFoundError:  # a segment or temp file the broker just removed
            continue
        if mode & (stat.S_IROTH | stat.S_IWOTH) or (not stat.S_ISDIR(mode) and mode & stat.S_IXOTH):
            found.append(f"{path.relative_to(root.parent)} {stat.filemode(mode)}")
    return found


def test_the_stacks_data_logs_configs_and_secrets_are_closed_to_other_users(stack: StackConfig) -> None:
    home = stack.home
    assert stat.S_IMODE(home.stat().st_mode) & 0o006 == 0
    roots = [stack.logs, stack.run, stack.etc, stack.secrets_file.parent, *stack.data.glob("kafka*"),
             stack.data / "faust"]
    open_files = [f for root in roots for f in _open_to_others(root)]
    assert open_files == []
    assert any(stack.logs.iterdir()) and any((stack.data / "kafka").iterdir())  # there was something to check
