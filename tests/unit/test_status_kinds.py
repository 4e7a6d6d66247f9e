"""`walsaga status` names each process's kind and consumer group from its process name, for any instance number."""
from __future__ import annotations

import pytest

from walsaga.stack.nodes import _process_kind


@pytest.mark.parametrize("name, kind, group", [
    ("orders-consumer", "participant-consumer", "walsaga-orders"),
    ("payments-consumer-1", "participant-consumer", "walsaga-payments"),
    ("queries-api-1", "api", None),
    ("processors-0", "orchestrator", "walsaga-processors"),
    ("views-1", "view-projector", "walsaga-views"),
    ("reconciler-1", "reconciler", "walsaga-reconciler"),
    ("orders-consumerx", "process", None),
])
def test_kind_and_group_follow_from_the_process_name(name: str, kind: str, group: str | None) -> None:
    assert _process_kind(name) == (kind, group)
