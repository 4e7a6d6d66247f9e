"""How a process reaches Kafka: the bootstrap servers and the SASL identity it authenticates as (the stack's
brokers accept no anonymous client; each principal may do only what its ACLs allow: walsaga/stack/kafka_acls.py).

Read from the environment at a process's wiring point (WALSAGA_KAFKA_BOOTSTRAP, WALSAGA_KAFKA_USERNAME,
WALSAGA_KAFKA_PASSWORD, WALSAGA_KAFKA_MECHANISM); the password is never part of a repr or a log line."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCRAM = "SCRAM-SHA-512"  # every application principal
PLAIN = "PLAIN"          # the stack's own admin tooling and the brokers themselves (no credential to bootstrap)


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    username: str = ""
    password: str = field(default="", repr=False)
    mechanism: str = SCRAM

    @classmethod
    def from_env(cls) -> KafkaAccess:
        bootstrap = os.environ.get("WALSAGA_KAFKA_BOOTSTRAP")
        if not bootstrap:
            raise RuntimeError("WALSAGA_KAFKA_BOOTSTRAP is not set (the stack supervisor sets it: stack/apps.py)")
        env = os.environ.get
        return cls(bootstrap, env("WALSAGA_KAFKA_USERNAME", ""), env("WALSAGA_KAFKA_PASSWORD", ""),
                   env("WALSAGA_KAFKA_MECHANISM", SCRAM))

    def env(self) -> dict[str, str]:
        """The variables from_env() reads, for a child process."""
        return {"WALSAGA_KAFKA_BOOTSTRAP": self.bootstrap, "WALSAGA_KAFKA_USERNAME": self.username,
                "WALSAGA_KAFKA_PASSWORD": self.password, "WALSAGA_KAFKA_MECHANISM": self.mechanism}

    def confluent(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A confluent-kafka (librdkafka) client configuration: where, who, then the client's own `settings`."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap}
        if self.username:
            conf.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": self.mechanism,
                         "sasl.username": self.username, "sasl.password": self.password})
        return {**conf, **(settings or {})}

    def producer(self, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A librdkafka producer's configuration. Keys are hashed as every Java client hashes them (murmur2;
        librdkafka's own default is CRC32), so a record lands on the partition of its key whoever produces it:
        Kafka Connect, the orchestrator, a repair, an operator's command or a replayed dead letter."""
        return self.confluent({"partitioner": "murmur2_random", **(settings or {})})
