"""Delivery channels. Each send carries the notification id, so a receiver can drop a repeat (at-least-once)."""
from __future__ import annotations

import json
import logging
from typing import Protocol

import httpx

log = logging.getLogger("walsaga.notifications.delivery")


class DeliveryFailed(Exception):
    """The channel did not accept the message; the consumer retries the command."""


class ChannelPort(Protocol):
    def send(self, notification_id: str, customer_id: str, text: str) -> None: ...


class LogChannel:
    def send(self, notification_id: str, customer_id: str, text: str) -> None:
        log.info(json.dumps({"notification_id": notification_id, "customer_id": customer_id, "text": text}))


class WebhookChannel:
    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.client = httpx.Client(timeout=timeout)

    def send(self, notification_id: str, customer_id: str, text: str) -> None:
        try:
            resp = self.client.post(self.url, json={"notification_id": notification_id, "customer_id": customer_id,
                                                    "text": text},
                                    headers={"Idempotency-Key": notification_id})
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook unreachable: {exc}") from exc
        if resp.status_code >= 300:
            raise DeliveryFailed(f"webhook answered {resp.status_code}")
