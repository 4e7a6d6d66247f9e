"""Kafka Connect's REST API on the real worker: HTTP basic authentication (401 without the stack's credentials), no
admin endpoints, and a FileConfigProvider that reads only the stack's secrets directory."""
from __future__ import annotations

import urllib.error
import uuid

import pytest

from cdc.connectors import ConnectClient
from walsaga.stack import runtime_user
from walsaga.stack.config import CONNECT_REST_USER, Secrets, StackConfig, connect_credentials, password_key
from walsaga.stack.kafka import connect_client

pytestmark = pytest.mark.stack


@pytest.mark.parametrize("credentials", [None, (CONNECT_REST_USER, "wrong"), ("someone", "else")])
def test_the_rest_api_refuses_a_caller_without_the_stacks_credentials(stack: StackConfig,
                                                                      credentials: tuple[str, str] | None) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        ConnectClient(stack.connect_url, 10, credentials).connectors()
    assert refused.value.code == 401


def test_the_stacks_credentials_are_let_in(stack: StackConfig) -> None:
    assert isinstance(connect_client(stack, stack.connect_url).connectors(), list)


def test_there_are_no_admin_endpoints(stack: StackConfig) -> None:
    client = ConnectClient(stack.connect_url, 10, connect_credentials(stack))
    with pytest.raises(urllib.error.HTTPError) as missing:
        client._call("GET", "/admin/loggers")
    assert missing.value.code == 404


def _resolved(stack: StackConfig, reference: str) -> str:
    """What the worker makes of a `${file:...}` reference in a connector config: the validate endpoint resolves the
    config providers the way a connector start does, and echoes the connector's `name` as resolved."""
    client = connect_client(stack, stack.connect_url)
    answer = client._call("PUT", "/connector-plugins/PostgresConnector/config/validate", {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector", "name": reference})
    values = {c["value"]["name"]: c["value"]["value"] for c in answer["configs"] if c.get("value")}
    return str(values["name"])


def test_a_connector_config_can_read_only_the_connectors_secrets_file(stack: StackConfig) -> None:
    key = password_key("orders", "cdc")
    from_secrets = _resolved(stack, f"${{file:{stack.secrets_file}:{key}}}")
    resolved = from_secrets == Secrets(stack.secrets_file).get(key)  # a bool: pytest must not print the secret
    assert resolved, "the control: the worker resolves a reference to the connectors' secrets file"

    # a file the worker's user could read (its own, in its own directory): only allowed.paths keeps it out
    marker = uuid.uuid4().hex
    outside = runtime_user.write_private(stack.etc / f"probe-{marker}.properties", f"value=seen-{marker}\n")
    try:
        assert f"seen-{marker}" not in _resolved(stack, f"${{file:{outside}:value}}")
    finally:
        outside.unlink()
    token_key = _resolved(stack, f"${{file:{stack.token_key_file}:token.signing_key}}")
    assert token_key.startswith("${file:"), "the token signing key next to the secrets file is not handed out"
