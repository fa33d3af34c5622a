"""Report first, API later: no drift, no writes but the status (issue 12 §1, issue 18 "orders amended for nothing").

Both simulators; the orders report as Amazon documents it (no tax-collection columns). Orders are backfilled
from the report, Amazon ships the open ones, then ``sync-orders --mode api`` reads every order again through
Orders 2026-01-01 or v0: each shipped order gets its status and nothing else, no order is drift or amended.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv

WRITES = ("POST", "PUT", "DELETE")
VOLATILE = {"modified", "amazon_order_status", "status"}  # what a status update may change


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def snapshot(env: SimEnv) -> dict[str, dict[str, Any]]:
    return {so["name"]: _stable(so) for so in env.sales_orders()}


@pytest.mark.parametrize(("orders_api", "pii"), [("2026-01-01", False), ("v0", False), ("2026-01-01", True)])
def test_backfill_by_report_then_sync_by_api_is_unchanged(sim_env: SimEnvFactory, orders_api: str, pii: bool) -> None:
    env = sim_env(listings=30, orders=120, seed=31, days=12, orders_api=orders_api,
                  extra_config="\n[orders]\namend_on_drift = true\n",
                  spapi_kwargs={"report_tax_columns": False, "report_processing_seconds": 0.0})
    if pii:  # the API read knows buyers and streets the report never had
        text = env.config_path.read_text(encoding="utf-8")
        env.config_path.write_text(text.replace("[amazon]\n", "[amazon]\npii = true\n", 1), encoding="utf-8")
    env.setup_erp()
    assert env.run("sync-products").code == 0
    frm = (env.clock.now() - timedelta(days=13)).date().isoformat()
    backfill = env.run("--json", "backfill", "--from", frm, "--chunk", "30d", "--mode", "report",
                       "--no-products")
    assert backfill.code == 0, backfill.err
    assert json.loads(backfill.out)["summary"].get("orders created", 0) > 40
    assert any(o.marketplace_id == "ATVPDKIKX0DER" and any(i.item_tax for i in o.items)
               for o in env.spapi.orders)  # marketplace-facilitator tax is in play
    assert any(o.marketplace_id == "A2EUQ1WTGCTBG2" and any(i.item_tax for i in o.items)
               for o in env.spapi.orders)  # and seller-collected tax

    imported = {so["amazon_order_id"]: so["name"] for so in env.sales_orders() if so["docstatus"] == 1}
    to_ship = [o for o in env.spapi.orders if o.amazon_order_id in imported
               and o.status in ("Unshipped", "PartiallyShipped")]
    assert to_ship
    env.clock.advance(600)
    for order in to_ship:
        env.spapi.ship_order(order.amazon_order_id)
    env.clock.advance(600)

    before = snapshot(env)
    writes_before = len(env.erp.request_log)
    result = env.run("--json", "sync-orders", "--after", frm, "--mode", "api")
    assert result.code == 0, result.err
    summary = json.loads(result.out)["summary"]
    assert summary.get("orders drift", 0) == 0 and summary.get("orders amended", 0) == 0, summary
    assert "changed on Amazon" not in result.err
    assert summary.get("orders updated", 0) == len(to_ship)

    writes = [r for r in env.erp.request_log[writes_before:] if r.method in WRITES]
    shipped_names = {imported[o.amazon_order_id] for o in to_ship}
    assert len(writes) == len(to_ship)
    assert all(r.method == "PUT" and r.doctype == "Sales Order" for r in writes), writes
    assert {r.path.rsplit("/", 1)[-1] for r in writes} == shipped_names
    after = snapshot(env)
    changed = {n: sorted(k for k in after[n] if after[n][k] != before[n].get(k)) for n in after if after[n] != before[n]}
    assert changed == {}  # everything but the status is as the report wrote it
    statuses = {so["name"]: so["amazon_order_status"] for so in env.sales_orders()}
    assert {statuses[name] for name in shipped_names} == {"Shipped"}


def test_an_amendment_is_counted_and_named_in_the_summary_and_the_log(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=40, seed=32, days=5,
                  extra_config="\n[orders]\namend_on_drift = true\n")
    env.setup_erp()
    assert env.run("sync-products").code == 0
    assert env.run("sync-orders").code == 0
    imported = {so["amazon_order_id"]: so["name"] for so in env.sales_orders() if so["docstatus"] == 1}
    order = next(o for o in env.spapi.orders if o.amazon_order_id in imported and o.status == "Unshipped"
                 and any(i.quantity_ordered > 2 and i.quantity_shipped == 0 for i in o.items))
    line = next(i for i in order.items if i.quantity_ordered > 2 and i.quantity_shipped == 0)
    env.clock.advance(600)
    env.spapi.partially_cancel(order.amazon_order_id, line.order_item_id, 1)  # a real change on Amazon
    env.clock.advance(600)

    result = env.run("--json", "sync-orders")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    old = imported[order.amazon_order_id]
    assert out["summary"]["orders amended"] == 1
    assert out["amended"] == [{"amazon_order_id": order.amazon_order_id, "cancelled": old,
                               "amended": f"{old}-1"}]
    assert f"{old} cancelled and amended as {old}-1: " in result.err and "items[" in result.err  # and why

    table = env.run("sync-orders", "--after", (env.clock.now() - timedelta(days=6)).date().isoformat())
    assert table.code == 0, table.err
    assert "amended" not in table.out  # nothing changed since: nothing amended, no table

    env.clock.advance(600)
    env.spapi.partially_cancel(order.amazon_order_id, line.order_item_id, 1)  # and again
    env.clock.advance(600)
    human = env.run("sync-orders")
    assert human.code == 0, human.err
    assert "Sales Orders amended" in human.out and f"{old}-1" in human.out and f"{old}-2" in human.out
