"""The stack's passwords file is shared by several Secrets objects in one process (the supervisor's, each Kafka
user's): one that generates a key must keep what the others wrote since it read the file."""
from __future__ import annotations

from pathlib import Path

from walsaga.stack.config import Secrets


def test_a_new_key_keeps_the_keys_another_secrets_object_wrote_since(tmp_path: Path) -> None:
    path = tmp_path / "secrets.properties"
    supervisor = Secrets(path, shared=False)
    supervisor.get("orders.admin.password")
    kafka_user = Secrets(path, shared=False).get("kafka.walsaga-processors.password")
    supervisor.get("patroni.rest.password")  # read the file before the Kafka user's password existed
    again = Secrets(path, shared=False)
    assert again.get("kafka.walsaga-processors.password") == kafka_user
    assert {"orders.admin.password", "patroni.rest.password"} <= set(again._values)
