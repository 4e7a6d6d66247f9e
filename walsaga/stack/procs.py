"""Detached processes with pid files and logs: how the supervisor starts and stops every component."""
from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from walsaga.stack import runtime_user
from walsaga.stack.config import StackConfig

OPEN_FILES = 65536  # per process: the gateway holds two descriptors per concurrent client, an API one


def say(msg: str) -> None:
    print(f"walsaga: {msg}", file=sys.stderr, flush=True)


def pidfile(cfg: StackConfig, name: str) -> Path:
    return cfg.run / f"{name}.pid"


def read_pid(cfg: StackConfig, name: str) -> int | None:
    path = pidfile(cfg, name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still answers kill(0); reap it if so
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def start(cfg: StackConfig, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
          cwd: Path | None = None, nice: int = 0, user: str | None = None) -> int:
    """Start `argv` detached in its own session; stdout+stderr go to logs/<name>.log. Idempotent. `nice` shifts its
    CPU priority (see StackConfig.edge_nice). It runs as the runtime user, or as `user` (Patroni: `postgres`)."""
    running = read_pid(cfg, name)
    if running:
        return running
    log = os.fdopen(os.open(cfg.logs / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640), "ab")
    # a process that drops to the runtime user gets a home it may write (root's is closed to it)
    acct = runtime_user.account(user)
    home = {"HOME": str(cfg.run)} if acct else {}
    drop = runtime_user.dropper(acct)
    proc = subprocess.Popen(
        list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **home, **(env or {})}, cwd=str(cwd) if cwd else None, start_new_session=True,
        preexec_fn=lambda: _child_setup(nice, drop),
    )
    pidfile(cfg, name).write_text(str(proc.pid))
    return proc.pid


def _child_setup(nice: int, drop: Callable[[], None]) -> None:
    """Runs in the child before exec: room for many connections (the gateway and the APIs hold one per client), its
    CPU priority (both may need root), then the runtime user (walsaga/stack/runtime_user.py)."""
    raise_open_files()
    set_nice(nice)
    drop()


def raise_open_files(wanted: int = OPEN_FILES) -> int:
    """Raises this process's descriptor limit toward `wanted`, the hard limit too where that is allowed (root), else
    up to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for ceiling in (hard if hard == resource.RLIM_INFINITY else max(hard, wanted), hard):
        target = wanted if ceiling == resource.RLIM_INFINITY else min(wanted, ceiling)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), ceiling))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def renice(increment: int) -> None:
    """Shifts this process's CPU priority; a priority the user may not take (negative without root) is skipped."""
    if increment:
        try:
            os.nice(increment)
        except PermissionError:
            pass


def set_nice(value: int) -> None:
    """This process's CPU priority, absolute: a component's priority must not depend on its starter's. The benchmark
    starts the stack from a process at the clients' priority (nice -10), and with a relative shift every component
    ran 10 steps higher than configured (the request path clamped at -20). Skipped where the user may not take it."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except PermissionError:
        pass


def nice_prefix(value: int) -> list[str]:
    """set_nice for a command started through another program (pg_ctl): `nice` shifts by the difference from this
    process's own priority, and runs it even when it may not renice."""
    increment = value - os.getpriority(os.PRIO_PROCESS, 0)
    return ["nice", "-n", str(increment)] if increment else []


def stop(cfg: StackConfig, name: str, timeout: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Stop a component started by `start`: SIGTERM to its process group, SIGKILL after `timeout`."""
    pid = read_pid(cfg, name)
    if pid is None:
        pidfile(cfg, name).unlink(missing_ok=True)
        return False
    _signal_group(pid, sig)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        _signal_group(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
    pidfile(cfg, name).unlink(missing_ok=True)
    return True


def kill9(cfg: StackConfig, name: str) -> None:
    stop(cfg, name, timeout=0.0, sig=signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120.0, interval: float = 0.25,
             log: Path | None = None) -> None:
    """Poll `check` until it is true; print progress every few seconds; fail with the log's tail on timeout."""
    start_t = time.monotonic()
    last_note = start_t
    last_error: Exception | None = None
    while True:
        try:
            if check():
                say(f"{what}: ready ({time.monotonic() - start_t:.1f}s)")
                return
        except Exception as exc:  # noqa: BLE001 - a probe failing is the normal "not yet" answer
            last_error = exc
        else:
            last_error = None
        now = time.monotonic()
        if now - start_t > timeout:
            tail = ""
            if log and log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s (last error: {last_error})\n{tail}")
        if now - last_note > 5:
            say(f"{what}: waiting ({now - start_t:.0f}s)")
            last_note = now
        time.sleep(interval)
