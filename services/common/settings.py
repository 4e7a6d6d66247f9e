"""A process's settings, read from the environment once, at its wiring point (never at import time)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from services.common import retention
from services.common.kafka_access import KafkaAccess


@dataclass(frozen=True)
class Settings:
    service: str
    db_url: str
    kafka: KafkaAccess
    instance: str = "0"
    webhook_url: str | None = None
    notification_channels: tuple[str, ...] = ("log",)
    # a write slower than this shrinks the instance's admission limit (services/common/admission.py)
    admission_target_ms: float = 500.0
    # how often the command consumer deletes rows past retention (services/common/retention.py); 0: never
    prune_interval_s: float = 60.0
    retention_scale: float = 1.0  # < 1 only in the soak benchmark (retention.scaled)
    # the public half of the stack's token signing key (services/common/auth.py); an API needs it, a consumer not
    token_public_key: str | None = None
    # serve the command handlers as DTM saga branches (services/common/saga_branches.py): only for the benchmark's
    # DTM baseline and its tests; off otherwise
    saga_branches: bool = False
    # test mode: the simulated payment provider honours its fault-injection payment method (the fault suite's)
    test_mode: bool = False

    @classmethod
    def from_env(cls, service: str) -> Settings:
        def need(name: str) -> str:
            value = os.environ.get(name)
            if not value:
                raise RuntimeError(f"{name} is not set (the stack supervisor sets it; see walsaga/stack/apps.py)")
            return value

        channels = tuple(c for c in os.environ.get("WALSAGA_NOTIFICATION_CHANNELS", "log").split(",") if c)
        return cls(
            service=service,
            db_url=need("WALSAGA_DB_URL"),
            kafka=KafkaAccess.from_env(),
            instance=os.environ.get("WALSAGA_INSTANCE", "0"),
            webhook_url=os.environ.get("WALSAGA_WEBHOOK_URL") or None,
            notification_channels=channels,
            admission_target_ms=float(os.environ.get("WALSAGA_ADMISSION_TARGET_MS", "500")),
            prune_interval_s=float(os.environ.get("WALSAGA_PRUNE_INTERVAL_S", "60")),
            retention_scale=retention.scale_from_env(),
            token_public_key=os.environ.get("WALSAGA_TOKEN_PUBLIC_KEY") or None,
            saga_branches=os.environ.get("WALSAGA_SAGA_BRANCHES") == "1",
            test_mode=os.environ.get("WALSAGA_TEST_MODE") == "1",
        )
