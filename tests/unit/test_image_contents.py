"""The Python image holds every in-repo package its processes import: the commands of docker-compose.yml and
docker-compose.ha.yml are followed through their imports (any depth, function-level imports included) and each
top-level package they reach must be copied by the Dockerfile. A process that imports a folder the image lacks would
crash at start in Compose only."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.ha.yml")  # the light profile and the HA one


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return names


def _reachable(entry_modules: set[str]) -> set[str]:
    """Every in-repo module reachable from the entry modules through imports."""
    seen: set[str] = set()
    todo = list(entry_modules)
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run their __init__
        todo.extend(_imports(path, name))
    return seen


def _compose_entry_modules() -> set[str]:
    modules: set[str] = set()
    services = [s for f in COMPOSE_FILES for s in yaml.safe_load((ROOT / f).read_text())["services"].values()]
    for service in services:
        command = service.get("command")
        if not isinstance(command, list) or not command or command[0] != "python":
            continue
        if command[1] == "-m":
            modules.add(command[2])
        elif command[1].endswith(".py"):
            modules.add(command[1].removesuffix(".py").replace("/", "."))
    return modules


def _copied_paths() -> set[str]:
    copied: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if match:
            copied.update(p.strip("./") for p in match.group(1).split())
    return copied


def test_the_compose_file_runs_python_processes_from_the_image() -> None:
    entries = _compose_entry_modules()
    assert {"stream_processors.main", "stream_processors.reconciler.main", "services.orders.main"} <= entries
    assert all(_module_file(m) for m in entries), entries


def test_the_image_copies_every_package_the_processes_import() -> None:
    needed = {m.split(".")[0] for m in _reachable(_compose_entry_modules())}
    copied = _copied_paths()
    missing = sorted(top for top in needed if top not in copied and not any(c.startswith(f"{top}/") for c in copied))
    assert not missing, f"the Dockerfile does not COPY {missing}, which the compose processes import"
    assert "reconciliation" in needed  # the reconciler's checks: the package this test was written for
