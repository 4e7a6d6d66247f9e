"""Refuses a request whose URL carries control characters (NUL above all) with 400, before any route sees it.

PostgreSQL cannot store a NUL in text, so `/payments?order_id=%00` used to reach the database and fail there as a
500. No walsaga identifier, SKU or query value ever contains a control character, so the whole URL is checked once
here instead of in every route."""
from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from services.common import problems

CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_BODY = problems.encoded(400, "invalid_request", "the URL contains control characters")


def has_control_characters(path: str, query: bytes) -> bool:
    # the path arrives percent-decoded already; the query string does not
    return bool(CONTROL.search(path.encode("utf-8", "surrogateescape")) or CONTROL.search(unquote_to_bytes(query)))


class UrlGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_control_characters(scope["path"], scope.get("query_string", b"")):
            await send({"type": "http.response.start", "status": 400, "headers": [
                (b"content-type", problems.MEDIA_TYPE.encode()), (b"content-length", str(len(_BODY)).encode())]})
            await send({"type": "http.response.body", "body": _BODY})
            return
        await self.app(scope, receive, send)
