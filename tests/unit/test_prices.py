"""The pure price rules: inventory's versioned price, and how the orders service prices an order from its copy."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.inventory import domain as inventory
from services.orders import domain as orders
from services.orders.domain import CatalogPrice, NotOrderable, OrderRuleViolation, PriceChanged, RequestedLine

CATALOG = {"a": CatalogPrice(Decimal("10.00"), "USD", 3), "b": CatalogPrice(Decimal("2.50"), "USD", 1),
           "eur": CatalogPrice(Decimal("4.00"), "EUR", 1)}


def test_lines_are_priced_by_the_catalog_whatever_the_client_omits() -> None:
    lines = orders.price_lines([RequestedLine("a", 10), RequestedLine("b", 2, Decimal("2.50"))], CATALOG, "USD")
    assert [(line.sku, line.unit_price, line.amount) for line in lines] == [
        ("a", Decimal("10.00"), Decimal("100.00")), ("b", Decimal("2.50"), Decimal("5.00"))]


def test_a_client_price_that_is_not_the_current_one_is_refused_with_the_current_prices() -> None:
    with pytest.raises(PriceChanged) as refused:
        orders.price_lines([RequestedLine("a", 10, Decimal("0.01")), RequestedLine("b", 1, Decimal("2.50"))],
                           CATALOG, "USD")
    assert refused.value.current == {"a": Decimal("10.00")}


def test_a_sku_without_a_price_is_not_orderable() -> None:
    with pytest.raises(NotOrderable) as refused:
        orders.price_lines([RequestedLine("zz", 1), RequestedLine("a", 1), RequestedLine("yy", 1)], CATALOG, "USD")
    assert refused.value.skus == ["yy", "zz"]


def test_the_order_currency_must_be_the_skus() -> None:
    with pytest.raises(OrderRuleViolation, match="EUR"):
        orders.price_lines([RequestedLine("eur", 1)], CATALOG, "USD")


def test_duplicate_skus_are_a_rule_violation_before_any_price_is_looked_at() -> None:
    with pytest.raises(OrderRuleViolation, match="once per order"):
        orders.price_lines([RequestedLine("zz", 1), RequestedLine("zz", 1)], CATALOG, "USD")


def test_the_copy_keeps_the_highest_version() -> None:
    current = CATALOG["a"]
    assert orders.newer_price(None, current)
    assert orders.newer_price(current, CatalogPrice(Decimal("1.00"), "USD", 4))
    assert not orders.newer_price(current, CatalogPrice(Decimal("1.00"), "USD", 3))
    assert not orders.newer_price(current, CatalogPrice(Decimal("1.00"), "USD", 2))


def test_a_price_change_is_a_new_version_and_an_unchanged_price_is_none() -> None:
    first = inventory.set_price(None, "a", Decimal("10.00"), "USD")
    assert first == inventory.Price("a", Decimal("10.00"), "USD", 1)
    assert inventory.set_price(first, "a", Decimal("10.00"), "USD") is None
    second = inventory.set_price(first, "a", Decimal("11.00"), "USD")
    assert second is not None and second.version == 2
    third = inventory.set_price(second, "a", Decimal("11.00"), "EUR")
    assert third is not None and third.version == 3


@pytest.mark.parametrize("price", [Decimal("0"), Decimal("-1.00"), Decimal("1.001")])
def test_a_price_is_positive_and_in_cents(price: Decimal) -> None:
    with pytest.raises(ValueError):
        inventory.set_price(None, "a", price, "USD")
