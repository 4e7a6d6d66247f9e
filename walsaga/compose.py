"""docker-compose.yml and the compose gateway's and settings' files, rendered from deploy/compose/templates/ and the
participant registry: a new participant gets its database, API, consumer, secrets and gateway route by its registry
entry alone. The rendered files are committed (users read them and run them without this tool); `make lint` fails
when one is stale."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cdc import connectors as cdc_connectors
from reconciliation import scan
from schemas.participants import PARTICIPANTS, Participant
from walsaga.stack.config import REPO, STACK_DATABASES

TEMPLATES = REPO / "deploy" / "compose" / "templates"
# each rendered file: its template, and whether it is the HA profile's
RENDERED = {REPO / "docker-compose.yml": ("docker-compose.yml.j2", False),
            REPO / "docker-compose.ha.yml": ("docker-compose.yml.j2", True),
            REPO / "deploy" / "compose" / "nginx.conf": ("nginx.conf.j2", False),
            REPO / "deploy" / "compose" / "env.example": ("env.example.j2", False)}


def render(participants: Sequence[Participant] = PARTICIPANTS) -> dict[Path, str]:
    """Each rendered file's path and text, for these participants (the registry's, unless a test adds one)."""
    import jinja2  # a development tool's dependency (the lint extra): the stack never renders these

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    identities = {p.name: cdc_connectors.identity_keys(p.name) for p in participants}
    context = {"participants": participants, "databases": (*(p.name for p in participants), *STACK_DATABASES),
               "reconciled": scan.SOURCES,
               # the HA profile's Patroni pairs declare each participant's Debezium slot; its gate names the connector
               "slots": {name: keys["slot.name"] for name, keys in identities.items()},
               "connectors": {name: cdc_connectors.name_of(name) for name in identities}}
    return {target: env.get_template(name).render(context, ha=ha) for target, (name, ha) in RENDERED.items()}


def stale(rendered: dict[Path, str] | None = None) -> list[Path]:
    """The rendered files whose committed text differs from what the templates and the registry give."""
    return [path for path, text in (rendered or render()).items() if not path.exists() or path.read_text() != text]


def write() -> list[Path]:
    """Renders every file (once); returns those that changed."""
    rendered = render()
    changed = stale(rendered)
    for path in changed:
        path.write_text(rendered[path])
    return changed
