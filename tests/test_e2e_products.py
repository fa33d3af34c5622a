"""sync-products end to end against both simulators (issue: sync-products)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from amz2erp_sim.datagen import marketplace
from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv

WRITES = ("POST", "PUT", "DELETE")


def _writes(env: SimEnv, since: int) -> list[tuple[str, str | None]]:
    return [(r.method, r.doctype) for r in env.erp.request_log[since:] if r.method in WRITES]


def _price_list(listing_currency: str) -> str:
    return "Standard Selling" if listing_currency == "USD" else f"Standard Selling {listing_currency}"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("products")
    with SimEnv(tmp, listings=520, orders=0, seed=11) as env:
        env.setup_erp()
        first = env.run("sync-products")
        yield env, first


def test_catalogue_lands_as_items_with_prices(synced) -> None:
    env, first = synced
    assert first.code == 0, first.err
    active = [lst for lst in env.spapi.listings if lst.status == "Active"]
    assert len(env.spapi.listings) >= 500
    items = {d["name"]: d for d in env.erp.docs("Item")}
    prices = {(d["item_code"], d["price_list"]): d for d in env.erp.docs("Item Price")}
    for listing in active:
        assert listing.sku in items, listing.sku
        item = items[listing.sku]
        assert item["amazon_asin"] == listing.asin
        assert len(item["item_name"]) <= 140
        assert item["item_group"]
        price = prices[(listing.sku, _price_list(listing.currency))]
        assert Decimal(str(price["price_list_rate"])) == listing.price
        assert price["currency"] == listing.currency
    # both marketplaces' currencies are present
    assert {marketplace(lst.marketplace_id).currency for lst in active} == {"USD", "CAD"}
    assert len(env.erp.docs("Item", item_code=active[0].sku)) == 1


def test_second_run_writes_nothing(synced) -> None:
    env, _ = synced
    before = len(env.erp.request_log)
    again = env.run("--json", "sync-products")
    assert again.code == 0, again.err
    assert _writes(env, before) == []
    summary = json.loads(again.out)["summary"]
    assert summary.get("listings unchanged", 0) >= 450
    assert "items created" not in summary


def test_changed_prices_and_titles_update_exactly_those(synced) -> None:
    env, _ = synced
    active = [lst for lst in env.spapi.listings if lst.status == "Active" and lst.marketplace_id ==
              marketplace("US").marketplace_id]
    # only SKUs sold in one marketplace, so one listing change means one ERPNext record
    skus_by_count: dict[str, int] = {}
    for lst in env.spapi.listings:
        skus_by_count[lst.sku] = skus_by_count.get(lst.sku, 0) + 1
    single = [lst for lst in active if skus_by_count[lst.sku] == 1]
    price_changes = single[:10]
    title_changes = single[10:15]
    for lst in price_changes:
        env.spapi.set_listing_price(lst.sku, lst.marketplace_id, lst.price + Decimal("1.00"))
    for lst in title_changes:
        env.spapi.set_listing_title(lst.sku, lst.marketplace_id, f"Renamed {lst.sku}")
    before = len(env.erp.request_log)
    result = env.run("sync-products")
    assert result.code == 0, result.err
    writes = [r for r in env.erp.request_log[before:] if r.method in WRITES]
    assert sorted(r.doctype for r in writes) == ["Item"] * 5 + ["Item Price"] * 10
    assert all(r.method == "PUT" for r in writes)
    for lst in price_changes:
        price = env.erp.docs("Item Price", item_code=lst.sku, price_list="Standard Selling")[0]
        assert Decimal(str(price["price_list_rate"])) == lst.price + Decimal("1.00")
    for lst in title_changes:
        assert env.erp.get_doc("Item", lst.sku)["item_name"] == f"Renamed {lst.sku}"


def test_dry_run_writes_nothing_and_lists_plans(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=0, seed=5)
    env.setup_erp()
    before = len(env.erp.request_log)
    result = env.run("--json", "sync-products", "--dry-run")
    assert result.code == 0, result.err
    assert _writes(env, before) == []
    plans = json.loads(result.out)["plans"]
    assert any(p["action"] == "create" and p["doctype"] == "Item" for p in plans)
    assert any(p["action"] == "create" and p["doctype"] == "Item Price" for p in plans)
    assert env.erp.count("Item", item_group="Products") == 0


def test_one_bad_listing_fails_alone_and_is_retried(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=0, seed=6, extra_config='[items.map]\n"NOPE" = "MISSING"\n')
    env.setup_erp()
    listing = next(lst for lst in env.spapi.listings if lst.status == "Active")
    env.write_config(extra=f'[items.map]\n"{listing.sku}" = "NOT-IN-ERPNEXT"\n')
    result = env.run("sync-products")
    assert result.code == 1
    assert "NOT-IN-ERPNEXT" in result.err
    active_skus = {lst.sku for lst in env.spapi.listings if lst.status == "Active"}
    assert env.erp.count("Item") == len(active_skus) - 1  # every other listing landed
    status = env.run("--json", "status")
    failed = json.loads(status.out)["failed"]
    assert [f["key"].split("|", 1)[1] for f in failed if f["kind"] == "listing"] == [listing.sku]
    # the seller creates the Item; the next run retries and succeeds
    env.erp.insert_doc("Item", {"item_code": "NOT-IN-ERPNEXT", "item_name": "Mine", "item_group": "Products",
                                "stock_uom": "Nos"})
    again = env.run("sync-products")
    assert again.code == 0, again.err
    mine = env.erp.get_doc("Item", "NOT-IN-ERPNEXT")
    assert mine["item_name"] == "Mine"  # a mapped Item is never renamed
    assert mine["amazon_asin"] == listing.asin
