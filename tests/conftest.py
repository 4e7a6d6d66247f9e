"""Session fixtures. Tests that need the real stack ask for `stack`: it starts a stack of its own (port offset
+1000, data under .stack/test-home, so a developer's running stack is untouched), and stops and wipes it at the end
(set WALSAGA_KEEP_TEST_STACK=1 to keep it for debugging)."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from tests.support import cli_token
from walsaga.client import Gateway
from walsaga.stack import lifecycle
from walsaga.stack.config import DATABASES, REPO, Ports, StackConfig, db_url

TEST_PORT_OFFSET = 1000
# tests/ha needs the HA profile's stack of its own, never beside this one: `make test-ha` runs it on its own
collect_ignore = [] if os.environ.get("WALSAGA_HA_TESTS") == "1" else ["ha"]
RECONCILE_GRACE_S = 3.0  # short, so the continuous checks act within a test's patience
PRUNE_INTERVAL_S = 2.0   # short, so a test sees the running consumers delete rows past retention
TEST_ADMIN = "walsaga-tests"  # the subject of the `gateway` fixture's admin token


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[StackConfig]:
    yield from running_stack(request, StackConfig(home=REPO / ".stack" / "test-home", ports=Ports(TEST_PORT_OFFSET),
                                         api_instances=2, faust_instances=1, reconcile_grace=RECONCILE_GRACE_S,
                                         prune_interval=PRUNE_INTERVAL_S, saga_branches=True,
                                         test_mode=True))


def running_stack(request: pytest.FixtureRequest, cfg: StackConfig) -> Iterator[StackConfig]:
    """A fresh stack for the session: wiped, started (the logs' tails printed if it fails), then wiped again. When a
    test failed, what the components logged is printed before the wipe: an intermittent failure in CI leaves
    nothing else to read."""
    lifecycle.wipe(cfg)
    try:
        try:
            lifecycle.up(cfg)
        except Exception:
            print_log_tails(cfg)
            raise
        yield cfg
        if request.session.testsfailed:
            print_log_problems(cfg)
    finally:
        if os.environ.get("WALSAGA_KEEP_TEST_STACK") == "1":
            print(f"\nkeeping the test stack at {cfg.home}")
        else:
            lifecycle.wipe(cfg)


@pytest.fixture(scope="session")
def gateway(stack: StackConfig) -> Gateway:
    """An admin's client (it sets stock levels and places orders on the test customers' behalf); the security tests
    take customers' tokens of their own."""
    return Gateway(stack.gateway_url, cli_token(stack, TEST_ADMIN, "admin", ttl_s=24 * 3600))


@pytest.fixture(scope="session")
def engines(stack: StackConfig) -> Iterator[dict[str, Engine]]:
    made = {db: create_engine(db_url(stack, db), pool_size=2, pool_pre_ping=True) for db in DATABASES}
    yield made
    for engine in made.values():
        engine.dispose()


def stack_logs(cfg: StackConfig) -> Iterator[tuple[str, list[str]]]:
    """Each component's log (name, lines); one that cannot be read is left out."""
    for log in sorted(cfg.logs.glob("*.log")) if cfg.logs.exists() else []:
        try:
            yield log.name, log.read_text(errors="replace").splitlines()
        except OSError:
            continue


def print_log_tails(cfg: StackConfig, lines: int = 40) -> None:
    """A failed start is wiped afterwards: show what each component said first (CI has nothing else)."""
    for name, text in stack_logs(cfg):
        print(f"\n===== {name} =====\n" + "\n".join(text[-lines:]))


PROBLEM = re.compile(r"\b(ERROR|CRITICAL|FATAL|PANIC|Traceback|WARN(ING)?)\b")


def print_log_problems(cfg: StackConfig, lines: int = 60) -> None:
    """Each log's last warnings and errors, and its last lines, for a failed test that left no other trace."""
    for name, text in stack_logs(cfg):
        problems = [line for line in text if PROBLEM.search(line)][-lines:]
        print(f"\n===== {name}: {len(problems)} last warnings and errors =====\n" + "\n".join(problems))
        print(f"===== {name}: last 10 lines =====\n" + "\n".join(text[-10:]))
