"""The webhook channel against a real local HTTP receiver: the notification id travels as the idempotency key, and a
refusal raises DeliveryFailed (so the consumer retries instead of recording a notification that was not sent)."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from services.notifications.channels import DeliveryFailed, WebhookChannel


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, str]] = []
    status = 204

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Receiver.received.append((body, self.headers.get("Idempotency-Key", "")))
        self.send_response(_Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture()
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received.clear()
    _Receiver.status = 204
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_delivers_with_the_notification_id_as_idempotency_key(receiver: str) -> None:
    WebhookChannel(receiver).send("n-1", "c-1", "Your order o-1 is confirmed.")
    assert _Receiver.received == [({"notification_id": "n-1", "customer_id": "c-1",
                                     "text": "Your order o-1 is confirmed."}, "n-1")]


def test_webhook_refusal_raises_delivery_failed(receiver: str) -> None:
    _Receiver.status = 500
    with pytest.raises(DeliveryFailed, match="500"):
        WebhookChannel(receiver).send("n-2", "c-1", "text")


def test_unreachable_webhook_raises_delivery_failed() -> None:
    with pytest.raises(DeliveryFailed, match="unreachable"):
        WebhookChannel("http://127.0.0.1:9/hook", timeout=1).send("n-3", "c-1", "text")
