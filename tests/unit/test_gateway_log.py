"""The gateway's access log (log_format timed) read back: what counts as a read, a write, and upstream time."""
from __future__ import annotations

from pathlib import Path

from bench.gateway_log import by_kind, error_reasons, parse


def test_a_line_is_parsed_with_its_upstream_times_added_up() -> None:
    e = parse("1796018739.210 GET /orders/o-1 200 0.012 0.010\n")
    assert e is not None and (e.method, e.uri, e.status, e.request_s, e.upstream_s) == ("GET", "/orders/o-1", 200,
                                                                                        0.012, 0.010)
    retried = parse("1796018739.210 POST /orders 202 2.100 2.001, 0.090\n")  # passed on to a second instance
    assert retried is not None and abs((retried.upstream_s or 0) - 2.091) < 1e-9
    throttled = parse("1796018739.210 POST /orders 429 0.000 -\n")
    assert throttled is not None and throttled.upstream_s is None


def test_lines_of_another_format_are_skipped() -> None:
    assert parse('127.0.0.1 - - [30/Nov/2026:06:00:00 +0000] "GET /orders/x HTTP/1.1" 200 12 "-" "wrk"') is None
    assert parse("") is None


def test_reads_and_writes_are_summarized_from_a_mark_on(tmp_path: Path) -> None:
    log = tmp_path / "nginx-access.log"
    log.write_text("1.0 GET /orders/old 200 9.000 9.000\n")
    mark = log.stat().st_size
    with open(log, "a") as f:
        f.write("2.0 GET /orders/o-1 200 0.010 0.009\n"
                "2.1 GET /orders/o-2 502 0.300 0.300\n"
                "2.2 POST /orders 202 0.050 0.049\n"
                "2.3 POST /orders/o-1/cancel 429 0.000 -\n"
                "2.4 GET /payments?order_id=o-1 200 0.004 0.004\n")
    kinds = by_kind(log, mark)
    assert kinds["reads"].count == 2 and kinds["reads"].statuses == {"200": 1, "502": 1}
    assert kinds["reads"].request_ms["max"] == 300.0  # the old 9 s line is before the mark
    assert kinds["writes"].count == 2 and kinds["writes"].statuses == {"202": 1, "429": 1}
    assert kinds["writes"].upstream_ms["max"] == 49.0  # the 429 never reached an API instance


def test_upstream_errors_are_counted_by_reason_and_throttling_is_left_out(tmp_path: Path) -> None:
    log = tmp_path / "nginx-error.log"
    log.write_text(
        '2026/11/30 07:00:00 [error] 11#11: *5 upstream prematurely closed connection while reading response header '
        'from upstream, client: 127.0.0.1, server: , request: "GET /orders/x HTTP/1.1"\n'
        '2026/11/30 07:00:01 [error] 11#11: *9 no live upstreams while connecting to upstream, client: 127.0.0.1\n'
        '2026/11/30 07:00:01 [error] 11#11: *10 no live upstreams while connecting to upstream, client: 127.0.0.1\n'
        '2026/11/30 07:00:02 [warn] 11#11: *12 limiting requests, excess: 300.1 by zone "writes", client: 127.0.0.1\n'
        '2026/11/30 07:00:03 [error] 11#11: *13 limiting requests, excess: 300.5 by zone "writes", client: 1.2.3.4\n')
    assert error_reasons(log, 0) == {"upstream prematurely closed connection": 1, "no live upstreams": 2}
    assert error_reasons(tmp_path / "missing.log", 0) == {}
