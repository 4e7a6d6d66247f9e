"""Builds each participant's outbox connector (data in connectors/, identity from schemas/participants.py) and
registers it through Kafka Connect's REST API."""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.participants import NAMES as PARTICIPANTS

CONNECTORS_DIR = Path(__file__).resolve().parents[1] / "connectors"
DEFAULTS = "_outbox-defaults.json"


def connector_class() -> str:
    """The class every outbox connector runs (walsaga's Debezium task, cdc/quiet-task): a worker is ready once it
    has it."""
    return str(json.loads((CONNECTORS_DIR / DEFAULTS).read_text())["config"]["connector.class"])


# what makes a connector itself: Connect keeps its offsets under its name and PostgreSQL its position in the slot, so
# these follow from the participant's name alone and no file may change them
IDENTITY_KEYS = ("database.dbname", "database.password", "topic.prefix", "slot.name")


def name_of(service: str) -> str:
    return f"walsaga-{service}-outbox"


def identity_keys(service: str) -> dict[str, str]:
    return {"database.dbname": service,
            "database.password": f"${{file:{{{{secrets_file}}}}:{service}.cdc.password}}",
            "topic.prefix": f"walsaga-cdc-{service}",
            "slot.name": f"walsaga_{service}_outbox"}


def load(service: str, placeholders: dict[str, str], directory: Path = CONNECTORS_DIR) -> tuple[str, dict[str, str]]:
    """The connector's name and full config: the shared defaults, the participant's identity, then its own tuning
    (connectors/<service>-outbox.json, optional), placeholders filled."""
    if service not in PARTICIPANTS:
        raise ValueError(f"{service!r} is not a participant (schemas/participants.py): it has no outbox connector")
    name = name_of(service)
    config: dict[str, Any] = {**json.loads((directory / DEFAULTS).read_text())["config"], **identity_keys(service)}
    own = directory / f"{service}-outbox.json"
    if own.exists():
        tuning = json.loads(own.read_text())["config"]
        fixed = sorted(set(tuning) & set(IDENTITY_KEYS))
        if fixed:
            raise ValueError(f"connector {name}: {own.name} may not set {fixed} (they follow from the participant)")
        config.update(tuning)
    filled = {k: _fill(str(v).lower() if isinstance(v, bool) else str(v), placeholders) for k, v in config.items()}
    left = [k for k, v in filled.items() if "{{" in v]
    if left:
        raise ValueError(f"connector {name}: unfilled placeholders in {left}")
    return name, filled


def identity(service: str) -> tuple[str, dict[str, str]]:
    """The connector's name and config with placeholders blanked: enough to know its name and slot."""
    return load(service, {"pg_host": "", "pg_port": "", "secrets_file": ""})


def _fill(value: str, placeholders: dict[str, str]) -> str:
    for key, replacement in placeholders.items():
        value = value.replace("{{" + key + "}}", replacement)
    return value


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class ConnectClient:
    """Kafka Connect's REST API, with HTTP basic authentication when given credentials (the stack turns it on)."""

    def __init__(self, base_url: str, timeout: float = 10.0, credentials: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.auth = basic_auth(*credentials) if credentials else {}

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json",
                                              **self.auth})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def put_config(self, name: str, config: dict[str, str]) -> None:
        """Create or update: PUT /connectors/{name}/config is idempotent, so re-registering is harmless."""
        self._call("PUT", f"/connectors/{name}/config", config)

    def root(self) -> Any:
        return self._call("GET", "/")

    def plugins(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/connector-plugins"))

    def connectors(self, expand: str | None = None) -> Any:
        return self._call("GET", "/connectors" + (f"?expand={expand}" if expand else ""))

    def config(self, name: str) -> dict[str, str]:
        return self._call("GET", f"/connectors/{name}/config")

    def task_configs(self, name: str) -> list[dict[str, str]]:
        """The configs the connector's tasks were (re)started with: a put config is in force once they carry it."""
        return [task["config"] for task in self._call("GET", f"/connectors/{name}/tasks")]

    def status(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"/connectors/{name}/status")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def has_offsets(self, name: str) -> bool:
        """Whether the connector has committed source offsets (it streamed before). GET .../offsets is KIP-875."""
        try:
            return bool(self._call("GET", f"/connectors/{name}/offsets").get("offsets"))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise

    def stop(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/stop")

    def reset_offsets(self, name: str) -> None:
        """Forget where the connector was (it must be STOPPED); it then starts from a fresh slot."""
        self._call("DELETE", f"/connectors/{name}/offsets")

    def resume(self, name: str) -> None:
        self._call("PUT", f"/connectors/{name}/resume")

    def restart(self, name: str) -> None:
        self._call("POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")

    def names(self) -> list[str]:
        return list(self._call("GET", "/connectors"))


def state_of(status: dict[str, Any] | None) -> str:
    """RUNNING only when the connector and all its tasks run; else the worst state seen (or MISSING)."""
    if status is None:
        return "MISSING"
    states = [status["connector"]["state"]] + [t["state"] for t in status.get("tasks", [])]
    if not status.get("tasks"):
        return "NO_TASKS" if states[0] == "RUNNING" else states[0]
    for bad in ("FAILED", "UNASSIGNED", "PAUSED", "STOPPED", "RESTARTING"):
        if bad in states:
            return bad
    return "RUNNING"


def wait_running(client: ConnectClient, name: str, timeout: float = 90.0,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
    """A connector that failed before (e.g. under an older config) is restarted once; failing again is fatal."""
    deadline = time.monotonic() + timeout
    last = ""
    restarted = False
    while time.monotonic() < deadline:
        status = client.status(name)
        state = state_of(status)
        if state == "RUNNING":
            return
        if state == "FAILED" and not restarted:
            progress(f"connector {name}: FAILED; restarting it once")
            client.restart(name)
            restarted = True
            time.sleep(1.0)
            continue
        if state == "FAILED" and status:
            traces = [t.get("trace", "") for t in status.get("tasks", []) if t.get("state") == "FAILED"]
            trace = (status["connector"].get("trace") or (traces[0] if traces else ""))[:2000]
            raise RuntimeError(f"connector {name} FAILED:\n{trace}")
        if state != last:
            progress(f"connector {name}: {state}")
            last = state
        time.sleep(0.5)
    raise RuntimeError(f"connector {name} not RUNNING after {timeout:.0f}s (state {last})")
