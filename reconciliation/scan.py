"""Streams what every service database holds, ordered by order id, and merges it into one OrderFacts per order id
(a k-way merge join): memory stays bounded however many rows there are. Each stream is a server-side cursor sorted
with COLLATE "C", so the databases and Python agree on the order of the keys."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from reconciliation.checks import OrderFacts, OrderRow, PaymentRow, SagaRow, SkuBalance

BATCH = 5000


@dataclass(frozen=True)
class Sources:
    orders: Engine
    payments: Engine
    inventory: Engine
    notifications: Engine
    saga: Engine


# the databases the checks read, each through its read-only role: what the reconciler is given URLs for
SOURCES = tuple(f.name for f in fields(Sources))


def _since(column: str, since: datetime | None) -> str:
    return f"WHERE {column} >= :since" if since else ""


def _stream(engine: Engine, sql: str, since: datetime | None) -> Iterator[Any]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=BATCH).execute(
            text(sql), {"since": since} if since else {})
        yield from result


def streams(src: Sources, since: datetime | None) -> dict[str, Iterator[Any]]:
    return {
        "order": _stream(src.orders,
                         "SELECT order_id AS k, customer_id, status, cancel_reason, total_amount, currency, updated_at "
                         f"FROM orders {_since('created_at', since)} ORDER BY order_id COLLATE \"C\"", since),
        "payment": _stream(src.payments, "SELECT order_id AS k, status, amount, currency, updated_at FROM payments "
                           f"{_since('created_at', since)} ORDER BY order_id COLLATE \"C\"", since),
        "reservation": _stream(src.inventory, "SELECT order_id AS k, status, updated_at FROM reservations "
                               f"{_since('created_at', since)} ORDER BY order_id COLLATE \"C\"", since),
        "notification": _stream(src.notifications, "SELECT order_id AS k, type, channel, count(*) AS n FROM "
                                f"notifications {_since('created_at', since)} GROUP BY 1, 2, 3 "
                                "ORDER BY order_id COLLATE \"C\"", since),
        "saga": _stream(src.saga, "SELECT saga_id AS k, status, updated_at, parked_reason FROM saga_instance "
                        f"{_since('created_at', since)} ORDER BY saga_id COLLATE \"C\"", since),
    }


def merge(named: dict[str, Iterator[Any]]) -> Iterator[tuple[str, dict[str, list[Any]]]]:
    """K-way merge of streams sorted by their `k` column: yields (key, rows of each stream with that key)."""
    heads: dict[str, Any] = {}
    for name, it in named.items():
        heads[name] = next(it, None)
    while True:
        live = [row.k for row in heads.values() if row is not None]
        if not live:
            return
        key = min(live)
        group: dict[str, list[Any]] = {name: [] for name in named}
        for name, it in named.items():
            while heads[name] is not None and heads[name].k == key:
                group[name].append(heads[name])
                heads[name] = next(it, None)
        yield key, group


def facts_of(key: str, rows: dict[str, list[Any]]) -> OrderFacts:
    o = rows["order"][0] if rows["order"] else None
    p = rows["payment"][0] if rows["payment"] else None
    r = rows["reservation"][0] if rows["reservation"] else None
    s = rows["saga"][0] if rows["saga"] else None
    return OrderFacts(
        order_id=key,
        order=OrderRow(o.k, o.customer_id, o.status, o.cancel_reason, o.total_amount, o.currency, o.updated_at)
        if o else None,
        payment=PaymentRow(p.k, p.status, p.amount, p.currency, p.updated_at) if p else None,
        reservation=r.status if r else None,
        reservation_updated_at=r.updated_at if r else None,
        notifications=Counter({(n.type, n.channel): n.n for n in rows["notification"]}),
        saga=SagaRow(s.k, s.status, s.updated_at, s.parked_reason) if s else None,
    )


def order_facts(src: Sources, since: datetime | None) -> Iterator[OrderFacts]:
    for key, rows in merge(streams(src, since)):
        yield facts_of(key, rows)


_SKU_BALANCE = """
    SELECT s.sku, s.reserved, s.committed, s.updated_at,
           coalesce(t.by_reserved, 0) AS by_reserved, coalesce(t.by_committed, 0) AS by_committed
    FROM stock s LEFT JOIN (
        SELECT l.sku, sum(l.quantity) FILTER (WHERE r.status = 'RESERVED') AS by_reserved,
                      sum(l.quantity) FILTER (WHERE r.status = 'COMMITTED') AS by_committed
        FROM reservation_lines l JOIN reservations r USING (order_id) {inner} GROUP BY l.sku) t USING (sku)
    {where}"""


def sku_balances(inventory: Engine) -> Iterator[SkuBalance]:
    """Every SKU with what its stock row says next to what its reservations add up to (computed in the database)."""
    yield from (SkuBalance(r.sku, r.reserved, r.committed, r.by_reserved, r.by_committed, r.updated_at)
                for r in _stream(inventory, _SKU_BALANCE.format(inner="", where="ORDER BY s.sku"), None))


def estimated_orders(orders: Engine, since: datetime | None) -> int:
    """For progress only: the planner's row estimate (instant on millions of rows), or a count when scoped."""
    with orders.connect() as conn:
        if since:
            return int(conn.execute(text("SELECT count(*) FROM orders WHERE created_at >= :s"),
                                    {"s": since}).scalar_one())
        estimate = int(conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'orders'")).scalar() or -1)
        if estimate < 100_000:  # never analyzed (-1) or small: counting is cheap
            return int(conn.execute(text("SELECT count(*) FROM orders")).scalar_one())
        return estimate


Progress = Callable[[int, int], None]


def facts_for(src: Sources, order_id: str) -> OrderFacts:
    """The same facts as order_facts(), for one order id (point queries, for the continuous checks)."""
    return facts_for_many(src, [order_id])[order_id]


_POINT_QUERIES = {
    "order": ("orders", "SELECT order_id AS k, customer_id, status, cancel_reason, total_amount, currency, updated_at "
                        "FROM orders WHERE order_id = ANY(:ks)"),
    "payment": ("payments", "SELECT order_id AS k, status, amount, currency, updated_at FROM payments "
                            "WHERE order_id = ANY(:ks)"),
    "reservation": ("inventory",
                    "SELECT order_id AS k, status, updated_at FROM reservations WHERE order_id = ANY(:ks)"),
    "notification": ("notifications", "SELECT order_id AS k, type, channel, count(*) AS n FROM notifications "
                                      "WHERE order_id = ANY(:ks) GROUP BY 1, 2, 3"),
    "saga": ("saga", "SELECT saga_id AS k, status, updated_at, parked_reason FROM saga_instance "
                     "WHERE saga_id = ANY(:ks)"),
}


def facts_for_many(src: Sources, order_ids: list[str]) -> dict[str, OrderFacts]:
    """facts_for() for several orders: one query per database for all of them."""
    if not order_ids:
        return {}
    by_kind: dict[str, dict[str, list[Any]]] = {}
    for kind, (db, sql) in _POINT_QUERIES.items():
        grouped: dict[str, list[Any]] = {}
        with getattr(src, db).connect() as conn:
            for row in conn.execute(text(sql), {"ks": list(order_ids)}):
                grouped.setdefault(row.k, []).append(row)
        by_kind[kind] = grouped
    return {oid: facts_of(oid, {kind: rows.get(oid, []) for kind, rows in by_kind.items()}) for oid in order_ids}


def sku_balance(inventory: Engine, sku: str) -> SkuBalance | None:
    with inventory.connect() as conn:
        balance = text(_SKU_BALANCE.format(inner="WHERE l.sku = :sku", where="WHERE s.sku = :sku"))
        r = conn.execute(balance, {"sku": sku}).first()
    return SkuBalance(r.sku, r.reserved, r.committed, r.by_reserved, r.by_committed, r.updated_at) if r else None
