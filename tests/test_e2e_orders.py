"""sync-orders end to end against both simulators (issue: sync-orders)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from amz2erp_sim.datagen import SimOrder
from tests.conftest import SimEnvFactory
from tests.simenv import Result, SimEnv

WRITES = ("POST", "PUT", "DELETE")
NOT_IMPORTED = {"Pending", "PendingAvailability", "Canceled", "Unfulfillable"}


def expected_total(order: SimOrder) -> Decimal:
    """Amazon's OrderTotal less the marketplace-facilitator tax amz2erp leaves out by default."""
    mf = sum((i.tax_total for i in order.items if i.tax_collection_model == "MarketplaceFacilitator"),
             Decimal("0"))
    return order.order_total - mf


def importable(order: SimOrder) -> bool:
    return order.status not in NOT_IMPORTED and any(i.quantity_ordered > 0 for i in order.items)


def live(sos: list[dict]) -> list[dict]:
    return [so for so in sos if so["docstatus"] != 2]


def assert_landed_exactly_once(env: SimEnv) -> None:
    by_id = env.sales_orders_by_amazon_id()
    for order in env.spapi.orders:
        sos = live(by_id.get(order.amazon_order_id, []))
        if importable(order):
            assert len(sos) == 1, (order.amazon_order_id, order.status, sos)
            so = sos[0]
            assert Decimal(str(so["grand_total"])).quantize(Decimal("0.01")) == expected_total(order), \
                (order.amazon_order_id, so["grand_total"], expected_total(order))
            assert so["docstatus"] == 1 and so["status"] == "To Deliver and Bill"
            assert so["currency"] == order.currency
            assert so["po_no"] == order.amazon_order_id
        else:
            assert sos == [], (order.amazon_order_id, order.status)
    assert len(env.erp.docs("Customer")) == len({so["customer"] for so in env.sales_orders()})


MONTH = dict(listings=80, orders=1100, seed=21, days=30)
SNAPSHOT_FILES = ("erpnext.sqlite", "state.db")


@dataclass(frozen=True)
class SyncedMonth:
    """A month of orders synced once: the first run's result and the files and time it ended with."""

    folder: Path
    first: Result
    now: datetime


@pytest.fixture(scope="module")
def synced_month(tmp_path_factory: pytest.TempPathFactory) -> SyncedMonth:
    """The expensive part (1,100 orders through both simulators) is done once per module; tests never see
    this environment, only their own copy of what it left behind (see ``month``)."""
    tmp = tmp_path_factory.mktemp("orders")
    with SimEnv(tmp, **MONTH) as env:
        env.setup_erp()
        assert env.run("sync-products").code == 0
        first = env.run("--json", "sync-orders")
        now = env.clock.now()
    return SyncedMonth(tmp, first, now)


@pytest.fixture
def month(synced_month: SyncedMonth, tmp_path: Path, sim_env: SimEnvFactory) -> Iterator[tuple[SimEnv, Result]]:
    """A fresh environment in the synced state: a copy of the ERPNext database and the state ledger, and an
    SP-API simulator regenerated from the same seed (the sync only reads Amazon), at the time the sync ended."""
    for name in SNAPSHOT_FILES:
        for path in synced_month.folder.glob(f"{name}*"):  # with any SQLite -wal / -shm beside it
            shutil.copy2(path, tmp_path / path.name)
    env = sim_env(**MONTH)
    env.clock.advance((synced_month.now - env.clock.now()).total_seconds())
    yield env, synced_month.first


def test_a_month_of_orders_lands_with_amazon_totals(month) -> None:
    env, first = month
    assert first.code == 0, first.err
    assert len(env.spapi.orders) >= 1000
    assert {o.currency for o in env.spapi.orders} == {"USD", "CAD"}
    assert_landed_exactly_once(env)
    summary = json.loads(first.out)["summary"]
    assert summary["orders created"] == sum(1 for o in env.spapi.orders if importable(o))
    assert "orders failed" not in summary
    assert "total mismatches" not in summary
    # CAD orders carry the conversion rate
    cad = [so for so in env.sales_orders() if so["currency"] == "CAD"]
    assert cad and all(Decimal(str(so["conversion_rate"])) == Decimal("0.72") for so in cad)
    # line rate is the unit price, not the line total
    order = next(o for o in env.spapi.orders if importable(o) and any(i.quantity_ordered > 1 for i in o.items))
    so = env.erp.get_doc("Sales Order", live(env.sales_orders_by_amazon_id()[order.amazon_order_id])[0]["name"])
    item = next(i for i in order.items if i.quantity_ordered > 1)
    lines = [row for row in so["items"] if row["amazon_order_item_id"] == item.order_item_id]
    assert sum(Decimal(str(r["amount"])) for r in lines) == item.item_price
    assert all(Decimal(str(r["rate"])) < item.item_price for r in lines)


def test_second_run_writes_nothing(month) -> None:
    env, _ = month
    env.clock.advance(300)
    before = len(env.erp.request_log)
    again = env.run("--json", "sync-orders")
    assert again.code == 0, again.err
    assert [r for r in env.erp.request_log[before:] if r.method in WRITES] == []


def test_lifecycle_ship_cancel_partial(month) -> None:
    env, _ = month
    unshipped = [o for o in env.spapi.orders if o.status == "Unshipped"
                 and any(i.quantity_ordered > 1 for i in o.items)]
    ship, cancel, partial = unshipped[0], unshipped[1], unshipped[2]
    env.clock.advance(600)
    env.spapi.ship_order(ship.amazon_order_id)
    env.spapi.cancel_order(cancel.amazon_order_id)
    line = next(i for i in partial.items if i.quantity_ordered > 1)
    env.spapi.partially_cancel(partial.amazon_order_id, line.order_item_id, 1)
    env.clock.advance(180)
    result = env.run("--json", "sync-orders")
    assert result.code == 0, result.err
    summary = json.loads(result.out)["summary"]
    assert summary["orders cancelled"] == 1
    assert summary["orders drift"] == 1
    by_id = env.sales_orders_by_amazon_id()
    shipped_so = live(by_id[ship.amazon_order_id])[0]
    assert shipped_so["amazon_order_status"] == "Shipped"
    assert [so["docstatus"] for so in by_id[cancel.amazon_order_id]] == [2]
    assert env.erp.get_doc("Sales Order", by_id[cancel.amazon_order_id][0]["name"])["status"] == "Cancelled"
    assert len(live(by_id[partial.amazon_order_id])) == 1
    status = json.loads(env.run("--json", "status").out)
    assert status["failed"] == []


def test_cancel_referenced_order_is_a_conflict(month) -> None:
    env, _ = month
    target = next(o for o in env.spapi.orders if o.status == "Unshipped")
    so = live(env.sales_orders_by_amazon_id()[target.amazon_order_id])[0]
    first_item = env.erp.get_doc("Sales Order", so["name"])["items"][0]
    env.erp.insert_doc("Delivery Note", {"customer": so["customer"], "company": "Amz Test Co", "docstatus": 1,
                                         "items": [{"item_code": first_item["item_code"], "qty": 1,
                                                    "against_sales_order": so["name"]}]})
    env.clock.advance(60)
    env.spapi.cancel_order(target.amazon_order_id)
    env.clock.advance(180)
    result = env.run("--json", "sync-orders")
    assert result.code == 0, result.err
    assert json.loads(result.out)["summary"]["orders conflict"] == 1
    assert "already referenced by Delivery Note" in result.err
    assert env.erp.get_doc("Sales Order", so["name"])["docstatus"] == 1


def test_existing_frappe_connector_orders_are_recognised(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=60, seed=8)
    env.setup_erp()
    assert env.run("sync-products").code == 0
    done = [o for o in env.spapi.orders if importable(o)][:10]
    for order in done:  # as the Frappe connector leaves them: amazon_order_id set, draft or submitted
        env.erp.insert_doc("Sales Order", {
            "customer": f"Buyer - {order.amazon_order_id}", "company": "Amz Test Co", "docstatus": 1,
            "status": "To Deliver and Bill", "amazon_order_id": order.amazon_order_id,
            "transaction_date": "2026-10-20", "delivery_date": "2026-10-27", "currency": order.currency,
            "grand_total": float(expected_total(order)),
            "items": [{"item_code": i.sku, "qty": i.quantity_ordered,
                       "rate": float(i.item_price / i.quantity_ordered),
                       "amazon_order_item_id": i.order_item_id} for i in order.items if i.quantity_ordered],
        })
    result = env.run("--json", "sync-orders")
    assert result.code == 0, result.err
    by_id = env.sales_orders_by_amazon_id()
    for order in done:
        assert len(by_id[order.amazon_order_id]) == 1
    created = json.loads(result.out)["summary"]["orders created"]
    assert created == sum(1 for o in env.spapi.orders if importable(o)) - len(done)


def test_rejected_order_is_isolated_retried_and_pins_the_cursor(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=80, seed=9, extra_config='[items]\nunknown_sku = "fail"\n')
    env.setup_erp()
    assert env.run("sync-products").code == 0
    victim = next(o for o in sorted(env.spapi.orders, key=lambda o: o.last_update_date) if importable(o))
    sku = victim.items[0].sku
    # the Item disappears from ERPNext: this one order cannot be written, the others can
    item = env.erp.get_doc("Item", sku)
    gone = requests.delete(f"{env.erp.url}/api/resource/Item/{quote(sku, safe='')}",
                           headers={"Authorization": env.erp.auth_header}, timeout=10)
    assert gone.status_code == 202, gone.text  # as ERPNext answers (recording 077)
    known = {d["name"] for d in env.erp.docs("Item")}
    # orders that also cannot be written: they sell the lost SKU or an inactive listing's SKU
    others = [o for o in env.spapi.orders if importable(o) and o.amazon_order_id != victim.amazon_order_id
              and any(i.sku not in known for i in o.items if i.quantity_ordered > 0)]
    result = env.run("--json", "sync-orders")
    assert result.code == 1
    # told once per cause (the lost SKU), with a count; the order itself is listed by `status`
    assert f"SKU {sku!r} has no Item in ERPNext" in result.err
    summary = json.loads(result.out)["summary"]
    assert summary["orders failed"] == 1 + len(others)
    assert summary["orders created"] > 30
    state = json.loads(env.run("--json", "status").out)
    assert victim.amazon_order_id in {f["key"] for f in state["failed"]}
    cursor = {c["marketplace"]: c["value"] for c in state["cursors"]}[victim.marketplace_id]
    assert cursor <= victim.last_update_date.isoformat()
    # the seller restores the Item: the next run retries the failed orders and the cursor moves on
    env.erp.insert_doc("Item", {k: v for k, v in item.items() if k in ("item_code", "item_name", "item_group",
                                                                       "stock_uom", "is_stock_item")})
    env.write_config(extra="")  # and lets amz2erp create Items for the inactive listings' SKUs
    env.clock.advance(120)
    again = env.run("--json", "sync-orders")
    assert again.code == 0, again.err
    assert len(live(env.sales_orders_by_amazon_id()[victim.amazon_order_id])) == 1
    state = json.loads(env.run("--json", "status").out)
    assert state["failed"] == []
    cursor = {c["marketplace"]: c["value"] for c in state["cursors"]}[victim.marketplace_id]
    assert cursor > (env.clock.now() - timedelta(minutes=10)).isoformat()


def test_orders_api_v0_lands_the_same(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=60, seed=14, orders_api="v0")
    env.setup_erp()
    assert env.run("sync-products").code == 0
    result = env.run("sync-orders")
    assert result.code == 0, result.err
    assert_landed_exactly_once(env)
    assert env.spapi.operation_counts()["getOrderItems"] >= 50


def test_retry_command_retries_failed_orders_now(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=40, seed=15, extra_config='[items]\nunknown_sku = "fail"\n')
    env.setup_erp()
    result = env.run("sync-orders")  # no sync-products: every order fails on its unknown SKUs
    assert result.code == 1
    assert env.erp.docs("Customer") == [] and env.erp.docs("Address") == []  # checked before any write
    failed = json.loads(env.run("--json", "status", "--limit", "1000").out)["failed"]
    assert len(failed) == sum(1 for o in env.spapi.orders if importable(o))
    assert env.run("retry").code == 1  # still failing: nothing changed
    env.write_config(extra="")  # unknown SKUs are now created from the order lines
    retried = env.run("--json", "retry", failed[0]["key"])
    assert retried.code == 0, retried.err
    assert json.loads(retried.out)["summary"]["orders created"] == 1
    assert env.run("retry").code == 0
    assert json.loads(env.run("--json", "status").out)["failed"] == []
    assert_landed_exactly_once(env)


def test_pending_orders_as_drafts_then_submitted_once_priced(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=60, seed=16,
                  extra_config="[orders]\nimport_pending = true\n")
    env.setup_erp()
    assert env.run("sync-products").code == 0
    assert env.run("sync-orders").code == 0
    pending = [o for o in env.spapi.orders if o.status == "Pending"]
    assert pending
    by_id = env.sales_orders_by_amazon_id()
    for order in pending:
        assert [so["docstatus"] for so in by_id[order.amazon_order_id]] == [0]
    # Amazon authorises the payment: the order becomes Unshipped with prices
    target = pending[0]
    env.clock.advance(60)
    # the simulator keeps a pending order's prices and hides them until then
    with env.spapi.edit_order(target.amazon_order_id) as order:
        order.status = "Unshipped"
        order.last_update_date = env.clock.now().replace(microsecond=0)
    env.clock.advance(180)
    result = env.run("--json", "sync-orders")
    assert result.code == 0, result.err
    sos = env.sales_orders_by_amazon_id()[target.amazon_order_id]
    assert [so["docstatus"] for so in sos] == [1]
    assert Decimal(str(sos[0]["grand_total"])) == expected_total(env.spapi.order(target.amazon_order_id))
