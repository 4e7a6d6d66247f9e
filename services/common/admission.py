"""Admission control for writes inside each API instance: an adaptive concurrency limit (AIMD on latency).

The gateway's fixed rate cannot know what the services sustain right now (that moves with the saga backlog sharing
the CPU). Each instance therefore keeps its own limit on writes in flight: a write that completes slower than the
target shrinks the limit (multiplicatively, at most once per cooldown: one overload is one signal), a fast one while
the limit is in use grows it (additively, about +1 per limit's worth of writes). A write over the limit is answered
at once with 429 + Retry-After instead of queueing behind the others, so every admitted write answers within a
bounded time and an overload is answered early. Reads are never limited here: they keep the capacity writes leave.
Each instance decides alone (no coordination, nothing shared: no single point of failure)."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from services.common import problems

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRY_AFTER_S = 1

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class AimdLimit:
    """The limit itself, pure (the clock is passed in)."""

    limit: float = 16.0
    min_limit: float = 2.0
    max_limit: float = 256.0
    target_s: float = 0.5      # a write slower than this: the instance is past what it sustains now
    backoff: float = 0.75
    cooldown_s: float = 0.5
    in_flight: int = 0
    admitted: int = 0
    rejected: int = 0
    _last_decrease: float = field(default=float("-inf"), repr=False)

    def try_acquire(self) -> bool:
        if self.in_flight >= int(self.limit):
            self.rejected += 1
            return False
        self.in_flight += 1
        self.admitted += 1
        return True

    def release(self, latency_s: float, now: float) -> None:
        busy = self.in_flight >= self.limit / 2  # only a limit in use learns that it could be higher
        self.in_flight -= 1
        if latency_s > self.target_s:
            if now - self._last_decrease >= self.cooldown_s:
                self.limit = max(self.min_limit, self.limit * self.backoff)
                self._last_decrease = now
        elif busy:
            self.limit = min(self.max_limit, self.limit + 1.0 / self.limit)


_REJECTION = problems.encoded(429, "overloaded", "this instance has as many writes in flight as it completes in "
                              "time; retry later")


class AdmissionMiddleware:
    """Pure ASGI (no per-request task or body copying): counts a write from its start to its last response byte."""

    def __init__(self, app: App, limit: AimdLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.limit, self.clock = app, limit, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        if not self.limit.try_acquire():
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", problems.MEDIA_TYPE.encode()), (b"retry-after", str(RETRY_AFTER_S).encode()),
                (b"content-length", str(len(_REJECTION)).encode())]})
            await send({"type": "http.response.body", "body": _REJECTION})
            return
        started = self.clock()
        try:
            await self.app(scope, receive, send)
        finally:
            self.limit.release(self.clock() - started, self.clock())


def metrics(limit: AimdLimit, service: str, instance: str) -> list[str]:
    """Prometheus lines of one instance's limit (process-local, labelled with the instance)."""
    labels = f'service="{service}",instance="{instance}"'
    return ["# HELP walsaga_admission_limit Writes this API instance admits at once (adaptive).",
            "# TYPE walsaga_admission_limit gauge",
            f"walsaga_admission_limit{{{labels}}} {limit.limit:.1f}",
            "# TYPE walsaga_admission_in_flight gauge",
            f"walsaga_admission_in_flight{{{labels}}} {limit.in_flight}",
            "# TYPE walsaga_admission_rejected_total counter",
            f"walsaga_admission_rejected_total{{{labels}}} {limit.rejected}"]
