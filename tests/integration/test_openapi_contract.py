"""Each API's OpenAPI document against the running API (schemathesis, every check): generated requests, valid and
not, must get a documented status with a documented body and content type, never a 5xx; a missing bearer token or
required header must be refused. Each API is tested on an instance of its own (the gateway sends GETs of /orders to
the read side, whose contract is the queries document; and the fuzzing's slow writes would teach the shared
instances' admission limits to refuse the tests that follow)."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import cli_token
from walsaga.stack import apps, procs
from walsaga.stack.config import API_SERVICES, REPO, StackConfig

pytestmark = pytest.mark.stack

CONFIG = REPO / "tests" / "integration" / "schemathesis.toml"
MAX_EXAMPLES = 12  # per operation and phase: the whole file runs in about a minute
INSTANCE = 3  # beyond the stack's own instances (ports: walsaga/stack/config.py Ports.api)


@pytest.fixture(params=API_SERVICES)
def own_instance(request: pytest.FixtureRequest, stack: StackConfig) -> Iterator[tuple[str, str]]:
    service = str(request.param)
    apps.start_api(stack, service, INSTANCE)
    try:
        yield service, f"http://127.0.0.1:{stack.ports.api(service, INSTANCE)}"
    finally:
        procs.stop(stack, f"{service}-api-{INSTANCE}")


def test_the_api_answers_what_its_openapi_document_says(stack: StackConfig, own_instance: tuple[str, str]) -> None:
    service, base = own_instance
    token = cli_token(stack, "walsaga-contract", "admin")
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color", "run",
         f"{base}/{service}/openapi.json", "--url", base, "--checks", "all", "--phases", "examples,coverage,fuzzing",
         "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--header", f"Authorization: Bearer {token}",
         "--request-timeout", "10", "--warnings", "off"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
