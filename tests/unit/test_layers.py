"""No import runs back up a layer: contracts (schemas) import nothing of ours above them; the services and their
shared runtime (services/common) import no stream processor, reconciliation or tooling; reconciliation imports no
stream processor; stream processors no tooling; the generic saga orchestrator and engine no particular saga."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLING = ("walsaga", "bench", "tests", "deploy")
# package -> the top-level packages of ours it must not import
FORBIDDEN = {
    "schemas": ("services", "stream_processors", "reconciliation", "cdc", *TOOLING),
    "services": ("stream_processors", "reconciliation", *TOOLING),
    "cdc": ("stream_processors", "reconciliation", *TOOLING),
    "reconciliation": ("stream_processors", *TOOLING),
    "stream_processors": TOOLING,
}
GENERIC_SAGA_MODULES = ("stream_processors/saga/orchestrator.py", "stream_processors/saga/engine.py",
                        "stream_processors/saga/store.py", "stream_processors/saga/model.py")
PARTICULAR_SAGAS = ("stream_processors.saga.place_order", "stream_processors.saga.refund_order")


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_runs_back_up_a_layer(package: str) -> None:
    wrong = [f"{path.relative_to(REPO)} imports {name}"
             for path in sorted((REPO / package).rglob("*.py")) if "migrations" not in path.parts
             for name in _imports(path) if name.split(".")[0] in FORBIDDEN[package]]
    assert not wrong, wrong


def test_the_generic_saga_machinery_knows_no_particular_saga() -> None:
    wrong = [f"{module} imports {name}" for module in GENERIC_SAGA_MODULES
             for name in _imports(REPO / module) if name.startswith(PARTICULAR_SAGAS)]
    assert not wrong, wrong
