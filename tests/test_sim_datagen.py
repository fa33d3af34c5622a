"""The deterministic data generator: determinism, coverage of the awkward cases, money consistency."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amz2erp_sim import datagen
from amz2erp_sim.datagen import (
    MARKETPLACES,
    V0_STATUSES,
    cancel_order,
    generate_listings,
    generate_orders,
    partially_cancel,
    set_listing_price,
    set_listing_title,
    ship_order,
)

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
END = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _data(seed: int = 1, n_listings: int = 60, n_orders: int = 400):
    listings = generate_listings(seed, n_listings, ("US", "DE"), end=START)
    return listings, generate_orders(seed, n_orders, listings, START, END)


def test_same_seed_same_data_different_seed_different_data() -> None:
    a_l, a_o = _data(5)
    b_l, b_o = _data(5)
    assert [dataclasses.asdict(x) for x in a_l] == [dataclasses.asdict(x) for x in b_l]
    assert [dataclasses.asdict(x) for x in a_o] == [dataclasses.asdict(x) for x in b_o]
    c_l, c_o = _data(6)
    assert [x.sku for x in a_l] != [x.sku for x in c_l]
    assert [x.amazon_order_id for x in a_o] != [x.amazon_order_id for x in c_o]


def test_listing_coverage() -> None:
    listings, _ = _data()
    assert len(listings) == 60
    assert {x.marketplace_id for x in listings} == {
        MARKETPLACES["US"].marketplace_id,
        MARKETPLACES["DE"].marketplace_id,
    }
    assert {x.currency for x in listings} == {"USD", "EUR"}
    skus = [x.sku for x in listings]
    assert any("/" in s for s in skus) and any(" " in s for s in skus)
    assert any(len(x.title) > 140 for x in listings)
    assert any(any(ord(c) > 127 for c in x.title) for x in listings)
    assert {x.fulfillment_channel for x in listings} >= {"DEFAULT", "AMAZON_NA", "AMAZON_EU"}
    assert {x.status for x in listings} == {"Active", "Inactive"}
    assert len({(x.sku, x.marketplace_id) for x in listings}) == len(listings)
    # a SKU sold in both marketplaces keeps its ASIN
    shared = {x.sku for x in listings if x.marketplace_id == MARKETPLACES["US"].marketplace_id} & {
        x.sku for x in listings if x.marketplace_id == MARKETPLACES["DE"].marketplace_id
    }
    assert shared
    for sku in shared:
        assert len({x.asin for x in listings if x.sku == sku}) == 1
    for x in listings:
        assert (
            x.open_date.tzinfo is not None and x.price > 0 and x.asin.startswith("B0") and len(x.asin) == 10
        )


def test_order_coverage() -> None:
    _, orders = _data()
    assert {o.status for o in orders} == set(V0_STATUSES)
    assert {o.fulfillment_channel for o in orders} == {"AFN", "MFN"}
    assert {o.currency for o in orders} == {"USD", "EUR"}
    assert all(START <= o.purchase_date <= o.last_update_date <= END for o in orders)
    ids = [o.amazon_order_id for o in orders]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 19 and i[3] == "-" and i[11] == "-" and i.replace("-", "").isdigit() for i in ids)
    items = [it for o in orders for it in o.items]
    assert any(len(o.items) >= 3 for o in orders)
    assert any(it.quantity_ordered > 1 for it in items)
    assert any(it.promotion_discount > 0 for it in items) and any(it.promotion_ids for it in items)
    assert any(it.shipping_price > 0 and it.shipping_tax > 0 for it in items)
    assert any(it.shipping_discount > 0 for it in items)
    assert any(it.gift_wrap_price > 0 and it.is_gift for it in items)
    assert any(it.item_tax > 0 for it in items)
    assert any(it.tax_collection_model == "MarketplaceFacilitator" for it in items)
    # US tax is the marketplace facilitator's (the US default model); seller-collected tax is Canada's
    assert all(it.tax_collection_model == "MarketplaceFacilitator" for o in orders for it in o.items
               if o.marketplace_id == "ATVPDKIKX0DER" and it.item_tax > 0)
    ca = generate_orders(7, 40, generate_listings(7, 20, ("CA",)), START, END)
    assert any(it.tax_collection_model is None and it.item_tax > 0 for o in ca for it in o.items)
    repl = [o for o in orders if o.is_replacement]
    assert repl and all(o.replaced_order_id in set(ids) and o.order_total == 0 for o in repl)
    assert any(o.latest_delivery_date.year == 1995 and o.fulfillment_channel == "AFN" for o in orders)
    assert any(o.is_business for o in orders)
    assert any(any(ord(c) > 127 for c in o.buyer_name) for o in orders)
    for o in orders:
        if o.status == "Unfulfillable":
            assert o.fulfillment_channel == "AFN"
        if o.status == "PartiallyShipped":
            assert 0 < o.number_of_items_shipped < sum(i.quantity_ordered for i in o.items)
        if o.status in ("Shipped", "InvoiceUnconfirmed"):
            assert o.number_of_items_unshipped == 0
        if o.status == "Canceled":
            assert all(i.quantity_ordered == 0 for i in o.items) and o.order_total == 0
        if o.status in ("Pending", "PendingAvailability"):
            assert not o.prices_visible


def test_order_total_consistency() -> None:
    _, orders = _data()
    for o in orders:
        expected = Decimal(0)
        for it in o.items:
            assert it.item_price == it.unit_price * it.quantity_ordered or it.item_price == 0
            expected += (
                it.item_price + it.item_tax + it.shipping_price + it.shipping_tax + it.gift_wrap_price + it.gift_wrap_tax
                - it.promotion_discount - it.promotion_discount_tax - it.shipping_discount - it.shipping_discount_tax
            )  # fmt: skip
        assert o.order_total == expected
        assert o.order_total == o.order_total.quantize(Decimal("0.01"))
        assert o.order_total >= 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40))
def test_order_totals_property(seed: int, n: int) -> None:
    listings = generate_listings(seed, 12, ("US", "DE", "UK", "JP"))
    orders = generate_orders(seed, n, listings, START, END)
    assert len(orders) == n
    for o in orders:
        assert o.currency == datagen.marketplace(o.marketplace_id).currency
        assert o.order_total == sum((i.line_total for i in o.items), Decimal(0))
        if o.currency == "JPY":
            assert o.order_total == o.order_total.to_integral_value()


def test_mutations_bump_last_update() -> None:
    listings, orders = _data(3, 30, 120)
    later = END + timedelta(hours=1)
    unshipped = next(o for o in orders if o.status == "Unshipped")
    ship_order(unshipped, later)
    assert (
        unshipped.status == "Shipped"
        and unshipped.last_update_date == later
        and unshipped.number_of_items_unshipped == 0
    )
    pending = next(o for o in orders if o.status == "Pending")
    cancel_order(pending, later)
    assert pending.status == "Canceled" and pending.order_total == 0
    with pytest.raises(ValueError):
        cancel_order(unshipped, later)
    multi = next(
        o
        for o in orders
        if o.status == "Unshipped" and any(i.quantity_ordered >= 2 and i.item_price > 0 for i in o.items)
    )
    line = next(i for i in multi.items if i.quantity_ordered >= 2 and i.item_price > 0)
    before_total, before_qty = multi.order_total, line.quantity_ordered
    partially_cancel(multi, line.order_item_id, 1, later)
    assert line.quantity_ordered == before_qty - 1
    assert line.item_price == line.unit_price * line.quantity_ordered
    assert multi.order_total < before_total and multi.last_update_date == later
    lst = listings[0]
    set_listing_price(lst, "12.345", later)
    assert lst.price == Decimal("12.35") and lst.last_update_date == later
    set_listing_title(lst, "Neuer Titel – ÄÖÜ", later)
    assert lst.title == "Neuer Titel – ÄÖÜ"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_orders(1, 3, [], START, END)
    with pytest.raises(ValueError):
        generate_orders(1, 3, generate_listings(1, 2), END, START)
    assert datagen.marketplace("A1PA6795UKMFR9").code == "DE"
    assert {m.marketplace_id for m in MARKETPLACES.values()} >= {
        "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A1F83G8C2ARO7P", "A1PA6795UKMFR9",
        "A13V1IB3VIYZZH", "APJ6JRA9NG5V4", "A1RKKUPIHCS9HS", "A1VC38T7YXB528",
    }  # fmt: skip
