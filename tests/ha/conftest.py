"""The HA profile's stack for tests/ha: 3 KRaft nodes (every topic replicated 3x, 2 in sync for a write), 2 Kafka
Connect workers, two of every worker process. `make test-ha` runs this folder on its own (never beside the default
suite's stack: one stack at a time on this box); it overrides the `stack` fixture, so the fault suite's harness and
fixtures work unchanged against it."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.conftest import RECONCILE_GRACE_S, TEST_PORT_OFFSET, running_stack

# the fault suite's fixtures, against this folder's stack
from tests.faults.conftest import Report, ctx, slots, written_at_the_end  # noqa: F401
from walsaga.stack.config import REPO, Ports, StackConfig


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[StackConfig]:
    yield from running_stack(request, replace(StackConfig.from_env(ha=True), home=REPO / ".stack" / "test-ha-home",
                                     ports=Ports(TEST_PORT_OFFSET), reconcile_grace=RECONCILE_GRACE_S, test_mode=True))


@pytest.fixture(scope="session")
def report() -> Iterator[Report]:
    yield from written_at_the_end(Report("HA", "walsaga failover report (HA profile)", "make faults-ha"))

