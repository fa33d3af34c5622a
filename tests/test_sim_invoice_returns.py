"""Credit Notes (Sales Invoice returns) in the ERPNext simulator: make_sales_return, the return rules with the
error shapes of the v15 recordings 124–130, and the outstanding amounts a return leaves on itself and on
the original invoice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from amz2erp_sim.erpnext import journal as erpnext_journal
from tests.test_sim_invoice import CUSTOMER, MAKE_RETURN, PAST, TODAY, Erp, erp_session, error, receipt


@pytest.fixture
def erp() -> Iterator[Erp]:
    yield from erp_session()


def _invoice(erp: Erp, **extra: Any) -> dict[str, Any]:
    so = erp.order([("STOCK-1", 2, 25.0), ("SVC-1", 1, 20.0)], taxes=[("Freight and Forwarding Charges - ATC", 5.0)])
    return erp.ok(erp.invoice(so, **extra))


def _return(erp: Erp, si: dict[str, Any], **extra: Any) -> dict[str, Any]:
    cn = erp.ok(erp.post(MAKE_RETURN, {"source_name": si["name"]}))
    cn.update({"docstatus": 1, **extra})
    return cn


def test_make_sales_return_maps_a_negative_copy_of_the_invoice(erp: Erp) -> None:
    si = _invoice(erp)
    cn = erp.ok(erp.post(MAKE_RETURN, {"source_name": si["name"]}))  # 124
    assert (cn["is_return"], cn["return_against"], cn["update_outstanding_for_self"],
            cn["update_billed_amount_in_sales_order"], cn["select_print_heading"]) == (
        1, si["name"], 1, 0, "Credit Note")  # fmt: skip
    assert (cn["posting_date"], cn["set_posting_time"], cn["docstatus"], cn.get("name")) == (TODAY, 1, 0, None)
    assert [(i["item_code"], i["qty"], i["rate"], i["amount"], i["sales_invoice_item"], i["so_detail"])
            for i in cn["items"]] == [
        ("STOCK-1", -2.0, 25.0, -50.0, si["items"][0]["name"], si["items"][0]["so_detail"]),
        ("SVC-1", -1.0, 20.0, -20.0, si["items"][1]["name"], si["items"][1]["so_detail"])]  # fmt: skip
    assert [t["tax_amount"] for t in cn["taxes"]] == [-5.0]  # Actual rows negated
    assert (cn["grand_total"], cn["outstanding_amount"]) == (-75.0, -75.0)


def test_a_return_line_needs_a_negative_quantity(erp: Erp) -> None:
    si = _invoice(erp)
    cn = _return(erp, si)
    cn["items"][0]["qty"] = 2  # 125
    r = erp.post("/api/resource/Sales Invoice", cn)
    assert error(r) == (417, "ValidationError", ["For an item STOCK-1, quantity must be negative number"])


def test_a_return_cannot_take_back_more_than_was_invoiced(erp: Erp) -> None:
    si = _invoice(erp)
    cn = _return(erp, si)
    cn["items"] = cn["items"][:1]
    cn["items"][0]["qty"] = -3  # 126
    status, exc, messages = error(erp.post("/api/resource/Sales Invoice", cn))
    assert (status, exc, messages[-1]) == (417, "StockOverReturnError", "Row # 1: Cannot return more than 2.0 for Item STOCK-1")
    assert messages[0].startswith("We can see <strong>Credit Note</strong> is made against")  # the note comes along
    cn["items"][0]["qty"] = -1
    erp.ok(erp.post("/api/resource/Sales Invoice", cn))
    cn["items"][0]["qty"] = -2  # one of the two is back already
    assert error(erp.post("/api/resource/Sales Invoice", cn))[2][-1] == (
        "Row # 1: Cannot return more than 1.0 for Item STOCK-1")
    cn["items"][0]["qty"] = -1
    erp.ok(erp.post("/api/resource/Sales Invoice", cn))
    status, exc, messages = error(erp.post("/api/resource/Sales Invoice", cn))
    assert (status, exc, messages[-1]) == (417, "StockOverReturnError", "Item STOCK-1 has already been returned")
    fresh = erp.ok(erp.post(MAKE_RETURN, {"source_name": si["name"]}))
    assert [(i["item_code"], i["qty"]) for i in fresh["items"]] == [("SVC-1", -1.0)]  # what is left to return


def test_a_return_cannot_be_posted_before_its_invoice_nor_at_another_rate(erp: Erp) -> None:
    si = _invoice(erp)
    early = _return(erp, si, posting_date="2026-03-01", posting_time="10:00:00")
    status, exc, messages = error(erp.post("/api/resource/Sales Invoice", early))
    assert (status, exc) == (417, "ValidationError")
    assert messages[-1].startswith(f"Posting timestamp must be after {PAST[5:7]}-{PAST[8:]}-{PAST[:4]} ")
    euro = erp.ok(erp.invoice(erp.order([("SVC-1", 1, 20.0)], po_no="2", currency="EUR", conversion_rate=1.08)))
    other_rate = _return(erp, euro, conversion_rate=1.1)
    assert error(erp.post("/api/resource/Sales Invoice", other_rate)) == (417, "ValidationError", [
        f"Exchange Rate must be same as Sales Invoice {euro['name']} (1.08)"])  # fmt: skip


def test_a_return_against_an_unknown_invoice_is_refused(erp: Erp) -> None:
    si = _invoice(erp)
    cn = _return(erp, si, return_against="ACC-SINV-NOPE")
    assert error(erp.post("/api/resource/Sales Invoice", cn)) == (
        417, "ValidationError", ["Invalid Return Against: ACC-SINV-NOPE"])  # fmt: skip
    assert erp.sim.count("Sales Invoice") == 1


def test_a_return_for_another_customer_is_not_refused_by_erpnext_v15(erp: Erp) -> None:
    """v15's validate_return_against only skips its date/rate checks when the customer differs."""
    si = _invoice(erp)
    erp.sim.insert_doc("Customer", {"customer_name": "Someone Else", "customer_type": "Individual",
                                    "customer_group": "Individual", "territory": "United States"}, validate=True)  # fmt: skip
    cn = _return(erp, si, customer="Someone Else", posting_date="2026-01-05")
    assert erp.ok(erp.post("/api/resource/Sales Invoice", cn))["customer"] == "Someone Else"


def test_a_credit_note_carries_its_own_negative_outstanding_by_default(erp: Erp) -> None:
    si = _invoice(erp)
    cn = _return(erp, si)
    cn["items"] = cn["items"][:1]
    cn["items"][0]["qty"] = -1
    cn["taxes"] = []
    answer = erp.ok(erp.post("/api/resource/Sales Invoice", cn))  # 127
    assert (answer["status"], answer["grand_total"], answer["outstanding_amount"]) == ("Draft", -25.0, -25.0)
    assert erp.doc("Sales Invoice", answer["name"])["status"] == "Return"
    original = erp.doc("Sales Invoice", si["name"])  # 128: left as it was
    assert (original["outstanding_amount"], original["status"]) == (75.0, "Overdue")
    assert erp.gl(answer["name"]) == {"Debtors - ATC": (0.0, 25.0, CUSTOMER), "Sales - ATC": (25.0, 0.0, None)}
    order = erp.doc("Sales Order", si["items"][0]["sales_order"])
    assert order["per_billed"] == 100.0  # update_billed_amount_in_sales_order is 0
    # the receipt entry of a settlement debits the credit note and so uses it up
    used = receipt(CUSTOMER, answer["name"], 25.0, side="debit")
    erp.ok(erp.post("/api/resource/Journal Entry", used))
    cleared = erp.doc("Sales Invoice", answer["name"])
    assert (cleared["outstanding_amount"], cleared["status"]) == (0.0, "Return")


def test_without_update_outstanding_for_self_the_original_invoice_is_reduced(erp: Erp) -> None:
    si = _invoice(erp, due_date="2099-12-31")
    cn = _return(erp, si, update_outstanding_for_self=0)
    cn["items"] = cn["items"][:1]
    cn["items"][0]["qty"] = -1
    cn["taxes"] = []
    answer = erp.ok(erp.post("/api/resource/Sales Invoice", cn))  # 129
    assert (answer["outstanding_amount"], answer["grand_total"]) == (0.0, -25.0)
    original = erp.doc("Sales Invoice", si["name"])  # 130
    assert (original["outstanding_amount"], original["status"]) == (50.0, "Partly Paid")
    gl = [e for e in erp.sim.docs("GL Entry") if e["voucher_no"] == answer["name"] and e["party"]]
    assert [(e["credit"], e["against_voucher"]) for e in gl] == [(25.0, si["name"])]
    erp.ok(erp.post("/api/method/frappe.client.cancel", {"doctype": "Sales Invoice", "name": answer["name"]}))
    assert erp.doc("Sales Invoice", si["name"])["outstanding_amount"] == 75.0
    assert sum(erpnext_journal.account_balances(erp.sim).values()) == 0
