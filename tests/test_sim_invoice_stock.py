"""Stock in the ERPNext simulator: Stock Entry receipts, Delivery Notes made from Sales Orders, invoices with
``update_stock``, returns that bring stock back, the Stock Ledger Entries and Bins they leave, and the
negative-stock refusal with the shape of the v15 recordings 104/120–123."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from amz2erp_sim.erpnext import stock as erpnext_stock
from tests.test_sim_invoice import MAKE_DN, MAKE_RETURN, PAST, Erp, erp_session, error

WH = "Stores - ATC"


@pytest.fixture
def erp() -> Iterator[Erp]:
    yield from erp_session()


def receive(erp: Erp, item: str, qty: float, *, rate: float = 10.0, posting_date: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"stock_entry_type": "Material Receipt", "docstatus": 1,
                            "items": [{"item_code": item, "qty": qty, "t_warehouse": WH, "basic_rate": rate}]}  # fmt: skip
    if posting_date:
        body.update(posting_date=posting_date, set_posting_time=1, posting_time="08:00:00")
    return erp.ok(erp.post("/api/resource/Stock Entry", body))


def ledger(erp: Erp, item: str) -> list[dict[str, Any]]:
    """The live Stock Ledger Entries of an item, read over REST as a test (or the product) would."""
    fields = ["item_code", "warehouse", "actual_qty", "voucher_type", "voucher_no", "posting_date", "is_cancelled"]
    r = erp.get("/api/resource/Stock Ledger Entry", fields=json.dumps(fields), limit_page_length=0,
                filters=json.dumps([["item_code", "=", item], ["is_cancelled", "=", 0]]))  # fmt: skip
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def delivery(erp: Erp, so: dict[str, Any], **extra: Any) -> dict[str, Any]:
    dn = erp.ok(erp.post(MAKE_DN, {"source_name": so["name"]}))
    dn.update({"docstatus": 1, "posting_date": PAST, "set_posting_time": 1, "posting_time": "12:00:00", **extra})
    return dn


def test_a_material_receipt_puts_stock_in(erp: Erp) -> None:
    entry = receive(erp, "STOCK-1", 5)  # 121
    assert (entry["purpose"], entry["total_incoming_value"], entry["docstatus"]) == ("Material Receipt", 50.0, 1)
    assert entry["items"][0]["valuation_rate"] == 10.0 and entry["items"][0]["actual_qty"] == 0.0
    assert [(e["warehouse"], e["actual_qty"], e["voucher_type"], e["voucher_no"]) for e in ledger(erp, "STOCK-1")] == [
        (WH, 5.0, "Stock Entry", entry["name"])]  # fmt: skip
    assert erpnext_stock.actual_qty(erp.sim.engine, "STOCK-1", WH) == 5.0


def test_make_delivery_note_maps_what_is_left_to_deliver(erp: Erp) -> None:
    so = erp.order([("STOCK-1", 2, 25.0), ("SVC-1", 1, 20.0)])
    dn = erp.ok(erp.post(MAKE_DN, {"source_name": so["name"]}))  # 119
    assert (dn["doctype"], dn["docstatus"], dn["set_posting_time"], dn.get("name")) == ("Delivery Note", 0, 0, None)
    assert [(i["item_code"], i["qty"], i["against_sales_order"], i["so_detail"], i["warehouse"]) for i in dn["items"]] == [
        ("STOCK-1", 2.0, so["name"], so["items"][0]["name"], WH),
        ("SVC-1", 1.0, so["name"], so["items"][1]["name"], WH)]  # fmt: skip
    only = erp.ok(erp.post(MAKE_DN, {"source_name": so["name"],
                                     "args": {"filtered_children": [so["items"][1]["name"]]}}))  # fmt: skip
    assert [i["item_code"] for i in only["items"]] == ["SVC-1"]


def test_a_delivery_without_stock_is_refused_with_negative_stock_error(erp: Erp) -> None:
    so = erp.order([("STOCK-1", 2, 25.0)])
    dn = delivery(erp, so)
    r = erp.post("/api/resource/Delivery Note", dn)  # 120
    status, exc, messages = error(r)
    assert (status, exc) == (417, "NegativeStockError")
    body = r.json()
    assert body["_exc_source"] == "erpnext (app)" and json.loads(body["_server_messages"])
    assert json.loads(json.loads(body["_server_messages"])[0])["title"] == "Insufficient Stock"
    name = messages[0].split("/app/Form/Delivery Note/")[1].split('"')[0]
    assert messages == [
        '<strong>2.0</strong> units of <a href="/app/Form/Item/STOCK-1" style="font-weight: bold;">Item STOCK-1: '
        'Item STOCK-1</a> needed in <a href="/app/Form/Warehouse/' + quote(WH) + '" style="font-weight: bold;">'
        f'Warehouse {WH}</a> on {PAST} 12:00:00 for <a href="/app/Form/Delivery Note/{name}" '
        'style="font-weight: bold;">Delivery Note Buyer - 111-0000001</a> to complete this transaction.']  # fmt: skip
    assert body["exception"] == "erpnext.stock.stock_ledger.NegativeStockError: " + messages[0]
    assert erp.sim.count("Delivery Note") == 0 and ledger(erp, "STOCK-1") == []


def test_a_delivery_note_moves_stock_out_and_delivers_the_order(erp: Erp) -> None:
    receive(erp, "STOCK-1", 5, posting_date="2026-03-01")
    so = erp.order([("STOCK-1", 2, 25.0), ("SVC-1", 1, 20.0)])
    dn = erp.ok(erp.post("/api/resource/Delivery Note", delivery(erp, so)))  # 122
    assert (dn["status"], dn["per_billed"], dn["items"][0]["actual_qty"]) == ("To Bill", 0.0, 5.0)
    assert [(e["actual_qty"], e["voucher_type"]) for e in ledger(erp, "STOCK-1")] == [(5.0, "Stock Entry"),
                                                                                     (-2.0, "Delivery Note")]  # fmt: skip
    assert ledger(erp, "SVC-1") == []  # not a stock item: delivered, no stock moves
    assert erpnext_stock.actual_qty(erp.sim.engine, "STOCK-1", WH) == 3.0
    order = erp.doc("Sales Order", so["name"])
    assert (order["per_delivered"], order["delivery_status"], order["status"]) == (100.0, "Fully Delivered", "To Bill")
    si = erp.ok(erp.invoice(so))
    assert erp.doc("Delivery Note", dn["name"])["status"] == "Completed"  # billed by the invoice of its order
    assert erp.doc("Sales Order", so["name"])["status"] == "Completed"  # 123
    erp.ok(erp.post("/api/method/frappe.client.cancel", {"doctype": "Sales Invoice", "name": si["name"]}))
    assert erp.doc("Delivery Note", dn["name"])["per_billed"] == 0.0
    erp.ok(erp.post("/api/method/frappe.client.cancel", {"doctype": "Delivery Note", "name": dn["name"]}))
    assert erpnext_stock.actual_qty(erp.sim.engine, "STOCK-1", WH) == 5.0
    assert [e["actual_qty"] for e in ledger(erp, "STOCK-1")] == [5.0]
    everything = erpnext_stock.stock_ledger(erp.sim, item_code="STOCK-1", live_only=False)
    assert [(e["actual_qty"], e["is_cancelled"]) for e in everything] == [(5.0, 0), (-2.0, 1), (2.0, 1)]
    assert erp.doc("Sales Order", so["name"])["per_delivered"] == 0.0


def test_a_delivery_note_of_an_already_invoiced_order_is_completed_at_once(erp: Erp) -> None:
    receive(erp, "STOCK-1", 5, posting_date="2026-03-01")
    so = erp.order([("STOCK-1", 2, 25.0)])
    erp.ok(erp.invoice(so))
    dn = erp.ok(erp.post("/api/resource/Delivery Note", delivery(erp, so)))  # 122: invoice first, then the note
    assert (dn["status"], dn["per_billed"], dn["items"][0]["billed_amt"]) == ("Completed", 100.0, 50.0)


def test_stock_is_checked_at_the_posting_time_and_for_later_entries(erp: Erp) -> None:
    receive(erp, "STOCK-1", 2, posting_date="2026-03-05")  # arrives after the delivery's date
    so = erp.order([("STOCK-1", 2, 25.0)])
    assert error(erp.post("/api/resource/Delivery Note", delivery(erp, so)))[1] == "NegativeStockError"
    late = erp.ok(erp.post("/api/resource/Delivery Note", delivery(erp, so, posting_date="2026-03-06")))
    assert late["docstatus"] == 1
    # an earlier-dated issue would leave the later delivery without stock
    issue = {"stock_entry_type": "Material Issue", "docstatus": 1, "posting_date": "2026-03-05",
             "posting_time": "09:00:00", "set_posting_time": 1,
             "items": [{"item_code": "STOCK-1", "qty": 1, "s_warehouse": WH}]}  # fmt: skip
    status, exc, messages = error(erp.post("/api/resource/Stock Entry", issue))
    assert (status, exc) == (417, "NegativeStockError") and "<strong>1.0</strong> units" in messages[0]
    assert late["name"] in messages[0]  # the later voucher is the one that would go short


def test_allow_negative_stock_lets_a_delivery_go_below_zero(erp: Erp) -> None:
    settings = erp.doc("Stock Settings", "Stock Settings")
    assert settings["allow_negative_stock"] == 0  # a fresh site refuses negative stock
    erp.ok(erp.put("/api/resource/Stock Settings/Stock Settings", {"allow_negative_stock": 1}))
    so = erp.order([("STOCK-1", 2, 25.0)])
    erp.ok(erp.post("/api/resource/Delivery Note", delivery(erp, so)))
    assert erpnext_stock.actual_qty(erp.sim.engine, "STOCK-1", WH) == -2.0
    erpnext_stock.set_allow_negative_stock(erp.sim, False)
    so2 = erp.order([("STOCK-1", 1, 25.0)], po_no="2")
    assert error(erp.post("/api/resource/Delivery Note", delivery(erp, so2)))[1] == "NegativeStockError"


def test_an_invoice_with_update_stock_delivers_and_its_return_brings_stock_back(erp: Erp) -> None:
    so = erp.order([("STOCK-1", 2, 25.0)])
    r = erp.invoice(so, update_stock=1)  # 104: nothing in stock
    assert error(r)[:2] == (417, "NegativeStockError") and "for <a href=\"/app/Form/Sales Invoice/" in error(r)[2][0]
    receive(erp, "STOCK-1", 5, posting_date="2026-03-01")
    si = erp.ok(erp.invoice(so, update_stock=1))
    assert [(e["actual_qty"], e["voucher_type"]) for e in ledger(erp, "STOCK-1")][-1] == (-2.0, "Sales Invoice")
    order = erp.doc("Sales Order", so["name"])
    assert (order["per_delivered"], order["per_billed"], order["status"]) == (100.0, 100.0, "Completed")
    cn = erp.ok(erp.post(MAKE_RETURN, {"source_name": si["name"]}))
    cn["items"][0]["qty"] = -1
    cn.update(docstatus=1, update_stock=1)
    erp.ok(erp.post("/api/resource/Sales Invoice", cn))
    assert erpnext_stock.actual_qty(erp.sim.engine, "STOCK-1", WH) == 4.0  # 5 in, 2 out, 1 back
    assert erp.doc("Sales Order", so["name"])["per_delivered"] == 50.0


def test_a_restocking_return_needs_an_invoice_that_moved_stock(erp: Erp) -> None:
    si = erp.ok(erp.invoice(erp.order([("STOCK-1", 2, 25.0)])))
    cn = erp.ok(erp.post(MAKE_RETURN, {"source_name": si["name"]}))
    cn.update(docstatus=1, update_stock=1)
    assert error(erp.post("/api/resource/Sales Invoice", cn)) == (417, "ValidationError", [
        f"'Update Stock' can not be checked because items are not delivered via {si['name']}"])  # fmt: skip
