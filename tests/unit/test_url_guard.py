"""Control characters in a URL are a 400 before any route (and the database) sees them."""
from __future__ import annotations

import pytest

from services.common.url_guard import has_control_characters

BAD = [("/inventory/\x00", b""), ("/orders/a\x1fb", b""), ("/payments", b"order_id=%00"),
       ("/notifications", b"order_id=a%0Ab"), ("/orders", b"customer_id=%7F"), ("/orders", b"x=1&customer_id=\x00")]


@pytest.mark.parametrize("path,query", BAD)
def test_control_characters_anywhere_in_the_url_are_found(path: str, query: bytes) -> None:
    assert has_control_characters(path, query)


@pytest.mark.parametrize("path,query", [("/orders/3f2a-9c", b""), ("/payments", b"order_id=abc"),
                                        ("/orders", b"customer_id=c%3A1&limit=5"), ("/inventory/caf\u00e9", b"")])
def test_ordinary_urls_pass(path: str, query: bytes) -> None:
    assert not has_control_characters(path, query)
