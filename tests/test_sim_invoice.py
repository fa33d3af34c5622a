"""Sales Invoices in the ERPNext simulator: make_sales_invoice, the posting-date trap, fiscal year and closed
periods, GL entries, outstanding amounts and status, the Sales Order's billing, and Journal Entry payments.

Error shapes (HTTP status, exc_type, message) are the ones the real v15 server answered in the recordings
103–118 and 142/143 (tests/fixtures/erpnext_v15_recordings); the arithmetic is checked on the documents and
on the GL Entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.erpnext import journal as erpnext_journal

MAKE_SI = "/api/method/erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice"
MAKE_DN = "/api/method/erpnext.selling.doctype.sales_order.sales_order.make_delivery_note"
MAKE_RETURN = "/api/method/erpnext.accounts.doctype.sales_invoice.sales_invoice.make_sales_return"
CUSTOMER = "Buyer - 111-0000001"
TODAY = date.today().isoformat()
PAST = "2026-03-02"  # inside the seeded fiscal years, before today


class Erp:
    """The simulator over HTTP, as the product talks to it."""

    def __init__(self, sim: ErpNextSimulator) -> None:
        self.sim = sim
        self.s = requests.Session()
        self.s.headers["Authorization"] = sim.auth_header

    def post(self, path: str, body: Any) -> requests.Response:
        return self.s.post(self.sim.url + path, json=body, timeout=10)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.s.put(self.sim.url + path, json=body, timeout=10)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.s.get(self.sim.url + path, params=params, timeout=10)

    def ok(self, r: requests.Response) -> dict[str, Any]:
        assert r.status_code == 200, r.text
        body = r.json()
        return dict(body.get("data") or body.get("message"))

    def order(self, lines: list[tuple[str, float, float]], *, taxes: list[tuple[str, float]] = (),  # type: ignore[assignment]
              **extra: Any) -> dict[str, Any]:  # fmt: skip
        """A submitted Sales Order: lines (item, qty, rate), Actual tax rows (account, amount)."""
        body = {"customer": CUSTOMER, "company": "Amz Test Co", "transaction_date": PAST, "delivery_date": PAST,
                "po_no": extra.pop("po_no", "111-0000001"), "docstatus": 1,
                "items": [{"item_code": i, "qty": q, "rate": r, "warehouse": "Stores - ATC"} for i, q, r in lines],
                "taxes": [{"charge_type": "Actual", "account_head": a, "tax_amount": t} for a, t in taxes], **extra}  # fmt: skip
        return self.ok(self.post("/api/resource/Sales Order", body))

    def invoice(self, so: dict[str, Any], *, children: list[str] | None = None, **extra: Any) -> requests.Response:
        """make_sales_invoice, then POST it (submitted, dated PAST unless told) as the product does."""
        args: dict[str, Any] = {"source_name": so["name"]}
        if children is not None:
            args["args"] = {"filtered_children": children}
        mapped = self.ok(self.post(MAKE_SI, args))
        mapped.update({"posting_date": PAST, "due_date": PAST, "set_posting_time": 1, "docstatus": 1})
        mapped.update(extra)
        return self.post("/api/resource/Sales Invoice", mapped)

    def doc(self, doctype: str, name: str) -> dict[str, Any]:
        return self.ok(self.get(f"/api/resource/{doctype}/{name}"))

    def gl(self, voucher_no: str) -> dict[str, tuple[float, float, str | None]]:
        """Live GL Entries of a voucher: account -> (debit, credit, party)."""
        return {e["account"]: (e["debit"], e["credit"], e["party"]) for e in self.sim.docs("GL Entry")
                if e["voucher_no"] == voucher_no and not e["is_cancelled"]}  # fmt: skip


def error(r: requests.Response) -> tuple[int, str, list[str]]:
    """(HTTP status, exc_type, the _server_messages texts) of an error answer."""
    body = r.json()
    messages = [json.loads(m)["message"] for m in json.loads(body.get("_server_messages") or "[]")]
    return r.status_code, body.get("exc_type", ""), messages


def prepare(sim: ErpNextSimulator) -> None:
    sim.insert_doc("Customer", {"customer_name": CUSTOMER, "customer_type": "Individual",
                                "customer_group": "Individual", "territory": "United States"}, validate=True)  # fmt: skip
    for code, stock in (("STOCK-1", 1), ("STOCK-2", 1), ("SVC-1", 0)):
        sim.insert_doc("Item", {"item_code": code, "item_name": f"Item {code}", "item_group": "Products",
                                "stock_uom": "Nos", "is_stock_item": stock, "valuation_rate": 10.0}, validate=True)  # fmt: skip
    sim.insert_doc("Account", {"account_name": "Amazon Clearing", "company": "Amz Test Co",
                               "parent_account": "Current Assets - ATC"}, validate=True)  # fmt: skip
    sim.insert_doc("Account", {"account_name": "Sales Tax Payable", "company": "Amz Test Co", "account_type": "Tax",
                               "parent_account": "Duties and Taxes - ATC"}, validate=True)  # fmt: skip


def erp_session() -> Iterator[Erp]:
    """A fresh simulator with the masters of these tests (the fixture of every test_sim_invoice* file)."""
    with ErpNextSimulator() as sim:
        prepare(sim)
        yield Erp(sim)


@pytest.fixture
def erp() -> Iterator[Erp]:
    yield from erp_session()


# --------------------------------------------------------------------------- make_sales_invoice


def test_make_sales_invoice_maps_the_unbilled_lines_linked_to_the_order(erp: Erp) -> None:
    so = erp.order([("STOCK-1", 2, 25.0), ("SVC-1", 1, 20.0)],
                   taxes=[("Freight and Forwarding Charges - ATC", 4.99), ("Sales Tax Payable - ATC", 3.5)])  # fmt: skip
    r = erp.post(MAKE_SI, {"source_name": so["name"]})
    si = erp.ok(r)
    assert si["doctype"] == "Sales Invoice" and si["docstatus"] == 0 and si.get("name") is None
    assert si["__islocal"] == 1 and si["__onload"] == {"load_after_mapping": True}
    assert (si["posting_date"], si["due_date"], si["set_posting_time"]) == (TODAY, TODAY, 0)
    assert (si["debit_to"], si["party_account_currency"], si["currency"], si["conversion_rate"]) == (
        "Debtors - ATC", "USD", "USD", 1.0)  # fmt: skip
    assert si["selling_price_list"] == "Standard Selling" and si["po_no"] == "111-0000001"
    rows = [(i["item_code"], i["qty"], i["rate"], i["sales_order"], i["so_detail"], i["income_account"])
            for i in si["items"]]  # fmt: skip
    assert rows == [("STOCK-1", 2.0, 25.0, so["name"], so["items"][0]["name"], "Sales - ATC"),
                    ("SVC-1", 1.0, 20.0, so["name"], so["items"][1]["name"], "Sales - ATC")]  # fmt: skip
    assert [(t["account_head"], t["tax_amount"]) for t in si["taxes"]] == [
        ("Freight and Forwarding Charges - ATC", 4.99), ("Sales Tax Payable - ATC", 3.5)]  # fmt: skip
    assert (si["net_total"], si["total_taxes_and_charges"], si["grand_total"], si["outstanding_amount"]) == (
        70.0, 8.49, 78.49, 78.49)  # fmt: skip
    assert erp.sim.count("Sales Invoice") == 0  # a mapper saves nothing


def test_a_customer_receivable_account_wins_over_the_company_default(erp: Erp) -> None:
    erp.sim.insert_doc("Account", {"account_name": "Amazon Debtors", "company": "Amz Test Co",
                                   "account_type": "Receivable", "parent_account": "Accounts Receivable - ATC"},
                       validate=True)  # fmt: skip
    customer = erp.sim.get_doc("Customer", CUSTOMER)
    assert customer is not None
    erp.ok(erp.put(f"/api/resource/Customer/{CUSTOMER}",
                   {"accounts": [{"company": "Amz Test Co", "account": "Amazon Debtors - ATC"}]}))  # fmt: skip
    so = erp.order([("SVC-1", 1, 20.0)])
    assert erp.ok(erp.post(MAKE_SI, {"source_name": so["name"]}))["debit_to"] == "Amazon Debtors - ATC"


def test_filtered_children_and_partial_billing_leave_the_rest_to_invoice(erp: Erp) -> None:
    so = erp.order([("STOCK-1", 2, 25.0), ("SVC-1", 1, 20.0)])
    only_first = {"filtered_children": [so["items"][0]["name"]]}
    first = erp.ok(erp.post(MAKE_SI, {"source_name": so["name"], "args": only_first}))
    assert [i["item_code"] for i in first["items"]] == ["STOCK-1"]
    first["items"][0]["qty"] = 1  # one of the two shipped
    first.update(posting_date=PAST, due_date=PAST, set_posting_time=1, docstatus=1)
    erp.ok(erp.post("/api/resource/Sales Invoice", first))
    order = erp.doc("Sales Order", so["name"])
    assert order["items"][0]["billed_amt"] == 25.0 and order["per_billed"] == 35.714
    assert order["billing_status"] == "Partly Billed"
    rest = erp.ok(erp.post(MAKE_SI, {"source_name": so["name"]}))
    assert [(i["item_code"], i["qty"], i["amount"]) for i in rest["items"]] == [("STOCK-1", 1.0, 25.0),
                                                                                ("SVC-1", 1.0, 20.0)]  # fmt: skip


def test_a_fully_billed_order_maps_to_an_invoice_without_items(erp: Erp) -> None:
    so = erp.order([("SVC-1", 2, 20.0)])
    erp.ok(erp.invoice(so))
    again = erp.ok(erp.post(MAKE_SI, {"source_name": so["name"]}))  # 109: 200, no items, the order's totals
    assert again["items"] == [] and again["grand_total"] == 40.0 and again["outstanding_amount"] == 0.0
    assert again["po_no"] == ""


def test_a_draft_order_cannot_be_mapped(erp: Erp) -> None:
    so = erp.order([("SVC-1", 1, 20.0)], docstatus=0)
    status, exc, messages = error(erp.post(MAKE_SI, {"source_name": so["name"]}))
    assert (status, exc, messages) == (417, "ValidationError",
                                       ["Cannot map because following condition fails: docstatus=1"])  # fmt: skip


# --------------------------------------------------------------------------- dates


def test_without_set_posting_time_the_posting_date_becomes_today(erp: Erp) -> None:
    so = erp.order([("SVC-1", 1, 20.0)])
    r = erp.invoice(so, set_posting_time=0, due_date=TODAY)  # 111
    si = erp.ok(r)
    assert (si["posting_date"], si["set_posting_time"], si["docstatus"]) == (TODAY, 0, 1)
    kept = erp.ok(erp.invoice(erp.order([("SVC-1", 1, 20.0)], po_no="111-0000002")))
    assert kept["posting_date"] == PAST


def test_the_posting_date_trap_then_refuses_the_past_due_date(erp: Erp) -> None:
    so = erp.order([("SVC-1", 1, 20.0)])
    r = erp.invoice(so, set_posting_time=0)  # 110: the due date is before "today"
    assert error(r) == (417, "ValidationError", ["Due Date cannot be before Posting / Supplier Invoice Date"])
    assert r.json()["_exc_source"] == "erpnext (app)" and erp.sim.count("Sales Invoice") == 0


def test_a_due_date_before_the_posting_date_is_refused(erp: Erp) -> None:
    so = erp.order([("SVC-1", 1, 20.0)])
    r = erp.invoice(so, due_date="2026-03-01", docstatus=0)
    assert error(r) == (417, "ValidationError", ["Due Date cannot be before Posting / Supplier Invoice Date"])


def test_the_fiscal_year_is_checked_on_submit_only(erp: Erp) -> None:
    so = erp.order([("SVC-1", 2, 20.0)])
    r = erp.invoice(so, posting_date="2019-06-03", due_date="2019-06-03")  # 113
    assert error(r) == (417, "FiscalYearError",
                        ["Date 06-03-2019 is not in any active Fiscal Year for <strong>Amz Test Co</strong>"])  # fmt: skip
    draft = erp.ok(erp.invoice(so, posting_date="2019-06-03", due_date="2019-06-03", docstatus=0))  # 114
    assert (draft["docstatus"], draft["status"], draft["posting_date"]) == (0, "Draft", "2019-06-03")


def test_a_closed_accounting_period_refuses_invoices_and_journal_entries(erp: Erp) -> None:
    period = erp.ok(erp.post("/api/resource/Accounting Period", {
        "period_name": "AMZ 2026-03", "company": "Amz Test Co", "start_date": "2026-03-01", "end_date": "2026-03-31",
        "closed_documents": [{"document_type": "Sales Invoice", "closed": 1},
                             {"document_type": "Journal Entry", "closed": 1}]}))  # fmt: skip
    assert period["name"] == "AMZ 2026-03 - ATC"
    so = erp.order([("SVC-1", 1, 20.0)])
    r = erp.invoice(so)  # 117
    assert error(r) == (417, "ClosedAccountingPeriod", [
        "You cannot create a Sales Invoice within the closed Accounting Period <strong>AMZ 2026-03 - ATC</strong>"])  # fmt: skip
    je = erp.post("/api/resource/Journal Entry", {
        "company": "Amz Test Co", "posting_date": PAST, "docstatus": 1, "accounts": [
            {"account": "Amazon Clearing - ATC", "debit_in_account_currency": 5},
            {"account": "Sales - ATC", "credit_in_account_currency": 5}]})  # fmt: skip
    assert error(je)[:2] == (417, "ClosedAccountingPeriod")  # 118
    assert erp.ok(erp.invoice(so, posting_date="2026-04-01", due_date="2026-04-01"))["docstatus"] == 1


# --------------------------------------------------------------------------- submit: ledger, outstanding, status


def test_submitting_posts_the_ledger_and_stores_the_computed_status(erp: Erp) -> None:
    so = erp.order([("STOCK-1", 2, 25.0), ("SVC-1", 1, 20.0)],
                   taxes=[("Freight and Forwarding Charges - ATC", 4.99), ("Sales Tax Payable - ATC", 3.5)])  # fmt: skip
    answer = erp.ok(erp.invoice(so))
    assert (answer["status"], answer["docstatus"], answer["outstanding_amount"]) == ("Draft", 1, 78.49)  # 111
    stored = erp.doc("Sales Invoice", answer["name"])
    assert stored["status"] == "Overdue"  # due in the past, unpaid (Unpaid while the due date is today or later)
    assert stored["payment_schedule"][0]["payment_amount"] == 78.49
    assert erp.gl(answer["name"]) == {
        "Debtors - ATC": (78.49, 0.0, CUSTOMER),
        "Sales - ATC": (0.0, 70.0, None),
        "Freight and Forwarding Charges - ATC": (0.0, 4.99, None),
        "Sales Tax Payable - ATC": (0.0, 3.5, None),
    }
    today = erp.ok(erp.invoice(erp.order([("SVC-1", 1, 20.0)], po_no="2"), posting_date=TODAY, due_date=TODAY))
    assert erp.doc("Sales Invoice", today["name"])["status"] == "Unpaid"  # 112
    future = (date.today() + timedelta(days=30)).isoformat()
    put = erp.ok(erp.invoice(erp.order([("SVC-1", 1, 20.0)], po_no="3"), due_date=future, docstatus=0))
    assert erp.ok(erp.put(f"/api/resource/Sales Invoice/{put['name']}", {"docstatus": 1}))["status"] == "Unpaid"  # 106
    assert sum(erpnext_journal.account_balances(erp.sim).values()) == 0


def test_an_item_income_account_default_is_used(erp: Erp) -> None:
    erp.ok(erp.put("/api/resource/Item/SVC-1", {"item_defaults": [
        {"company": "Amz Test Co", "income_account": "Service - ATC"}]}))  # fmt: skip
    si = erp.ok(erp.invoice(erp.order([("SVC-1", 1, 20.0), ("STOCK-1", 1, 5.0)])))
    assert [i["income_account"] for i in si["items"]] == ["Service - ATC", "Sales - ATC"]
    assert erp.gl(si["name"])["Service - ATC"] == (0.0, 20.0, None)


def test_the_order_is_billed_on_submit_and_unbilled_on_cancel(erp: Erp) -> None:
    stock_so = erp.order([("STOCK-1", 2, 25.0)])
    service_so = erp.order([("SVC-1", 2, 20.0)], po_no="2", skip_delivery_note=1)
    si = erp.ok(erp.invoice(stock_so))
    erp.ok(erp.invoice(service_so))
    billed = erp.doc("Sales Order", stock_so["name"])  # 108
    assert (billed["per_billed"], billed["billing_status"], billed["per_delivered"], billed["status"]) == (
        100.0, "Fully Billed", 0.0, "To Deliver")  # fmt: skip
    assert erp.doc("Sales Order", service_so["name"])["status"] == "Completed"
    erp.ok(erp.post("/api/method/frappe.client.cancel", {"doctype": "Sales Invoice", "name": si["name"]}))
    unbilled = erp.doc("Sales Order", stock_so["name"])
    assert (unbilled["per_billed"], unbilled["billing_status"]) == (0.0, "Not Billed")
    assert erp.gl(si["name"]) == {} and sum(erpnext_journal.account_balances(erp.sim).values()) == 0


def test_an_invoice_of_the_order_blocks_cancelling_the_order(erp: Erp) -> None:
    so = erp.order([("SVC-1", 2, 20.0)])
    draft = erp.ok(erp.invoice(so, docstatus=0))
    r = erp.post("/api/method/frappe.client.cancel", {"doctype": "Sales Order", "name": so["name"]})  # 115
    url = erp.sim.url
    assert error(r) == (417, "ValidationError", [
        f'Sales Invoice <a href="{url}/app/sales-invoice/{draft["name"]}">{draft["name"]}</a> must be deleted '
        "before cancelling this Sales Order"])  # fmt: skip
    erp.ok(erp.put(f"/api/resource/Sales Invoice/{draft['name']}", {"docstatus": 1}))
    r = erp.post("/api/method/frappe.client.cancel", {"doctype": "Sales Order", "name": so["name"]})
    assert error(r)[:2] == (417, "LinkExistsError")
    assert erp.doc("Sales Order", so["name"])["docstatus"] == 1


# --------------------------------------------------------------------------- Journal Entry rows against invoices


def receipt(customer: str, invoice: str, amount: float, *, voucher_type: str = "Journal Entry",
            side: str = "credit", account: str = "Debtors - ATC") -> dict[str, Any]:  # fmt: skip
    other = "debit" if side == "credit" else "credit"
    return {"company": "Amz Test Co", "posting_date": PAST, "voucher_type": voucher_type, "docstatus": 1,
            "accounts": [{"account": account, "party_type": "Customer", "party": customer,
                          f"{side}_in_account_currency": amount, "reference_type": "Sales Invoice",
                          "reference_name": invoice},
                         {"account": "Amazon Clearing - ATC", f"{other}_in_account_currency": amount}]}  # fmt: skip


def test_journal_entry_payments_reduce_the_outstanding_amount(erp: Erp) -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    si = erp.ok(erp.invoice(erp.order([("SVC-1", 2, 20.0)]), due_date=future))
    overdue = erp.ok(erp.invoice(erp.order([("SVC-1", 2, 20.0)], po_no="2")))
    erp.ok(erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, overdue["name"], 15.0)))
    assert erp.doc("Sales Invoice", overdue["name"])["status"] == "Overdue"  # past due and not fully paid
    part = erp.ok(erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, si["name"], 15.0)))
    after = erp.doc("Sales Invoice", si["name"])
    assert (after["outstanding_amount"], after["status"]) == (25.0, "Partly Paid")
    erp.ok(erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, si["name"], 25.0)))
    paid = erp.doc("Sales Invoice", si["name"])
    assert (paid["outstanding_amount"], paid["status"]) == (0.0, "Paid")  # 143
    erp.ok(erp.post("/api/method/frappe.client.cancel", {"doctype": "Journal Entry", "name": part["name"]}))
    reopened = erp.doc("Sales Invoice", si["name"])
    assert (reopened["outstanding_amount"], reopened["status"]) == (15.0, "Partly Paid")
    assert erpnext_journal.account_balances(erp.sim)["Debtors - ATC"] == Decimal("40.00")  # 15 + 25 open


def test_a_payment_above_the_outstanding_amount_is_refused_except_in_a_credit_note(erp: Erp) -> None:
    si = erp.ok(erp.invoice(erp.order([("SVC-1", 1, 20.0)])))
    r = erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, si["name"], 20.01))
    assert error(r) == (417, "ValidationError", [
        f"Payment against Sales Invoice {si['name']} cannot be greater than Outstanding Amount 20.0"])  # fmt: skip
    assert erp.sim.count("Journal Entry") == 0
    note = erp.ok(erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, si["name"], 20.01,
                                                                  voucher_type="Credit Note")))  # fmt: skip
    assert note["docstatus"] == 1
    assert erp.doc("Sales Invoice", si["name"])["outstanding_amount"] == -0.01


def test_references_must_match_the_invoice_party_and_account_and_be_submitted(erp: Erp) -> None:
    so = erp.order([("SVC-1", 2, 20.0)])
    draft = erp.ok(erp.invoice(so, docstatus=0))
    r = erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, draft["name"], 5.0))
    assert error(r) == (417, "ValidationError", [f"Sales Invoice {draft['name']} is not submitted"])
    erp.ok(erp.put(f"/api/resource/Sales Invoice/{draft['name']}", {"docstatus": 1}))
    erp.sim.insert_doc("Customer", {"customer_name": "Someone Else", "customer_type": "Individual",
                                    "customer_group": "Individual", "territory": "United States"}, validate=True)  # fmt: skip
    mismatch = f"Row 1: Party / Account does not match with Customer / Debit To in Sales Invoice {draft['name']}"
    r = erp.post("/api/resource/Journal Entry", receipt("Someone Else", draft["name"], 5.0))
    assert error(r) == (417, "ValidationError", [mismatch])
    erp.sim.insert_doc("Account", {"account_name": "Other Debtors", "company": "Amz Test Co",
                                   "account_type": "Receivable", "parent_account": "Accounts Receivable - ATC"},
                       validate=True)  # fmt: skip
    r = erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, draft["name"], 5.0, account="Other Debtors - ATC"))
    assert error(r) == (417, "ValidationError", [mismatch])
    r = erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, "ACC-SINV-NOPE", 5.0))
    assert error(r) == (417, "ValidationError", ["Row 1: Invalid reference ACC-SINV-NOPE"])
    assert erp.doc("Sales Invoice", draft["name"])["outstanding_amount"] == 40.0


def test_the_mapper_copies_custom_fields_unless_no_copy(erp: Erp) -> None:
    for dt, field, no_copy in (("Sales Order", "amazon_order_id", 1), ("Sales Invoice", "amazon_order_id", 0),
                               ("Sales Order Item", "amazon_order_item_id", 0),
                               ("Sales Invoice Item", "amazon_order_item_id", 0)):  # fmt: skip
        erp.ok(erp.post("/api/resource/Custom Field", {"dt": dt, "fieldname": field, "fieldtype": "Data",
                                                       "no_copy": no_copy}))  # fmt: skip
    so = erp.order([], amazon_order_id="111-0000001",
                   items=[{"item_code": "SVC-1", "qty": 1, "rate": 20.0, "amazon_order_item_id": "OI-1"}])  # fmt: skip
    si = erp.ok(erp.post(MAKE_SI, {"source_name": so["name"]}))
    assert si["amazon_order_id"] is None  # no_copy on the order
    assert si["items"][0]["amazon_order_item_id"] == "OI-1"


def test_an_invoice_in_another_currency_is_owed_in_the_receivable_account_currency(erp: Erp) -> None:
    so = erp.order([("SVC-1", 2, 25.0)], currency="EUR", conversion_rate=1.08)
    si = erp.ok(erp.invoice(so))
    assert (si["currency"], si["conversion_rate"], si["grand_total"], si["base_grand_total"]) == ("EUR", 1.08, 50.0, 54.0)
    assert (si["party_account_currency"], si["outstanding_amount"]) == ("USD", 54.0)  # Debtors - ATC is in USD
    assert erp.gl(si["name"]) == {"Debtors - ATC": (54.0, 0.0, CUSTOMER), "Sales - ATC": (0.0, 54.0, None)}
    erp.ok(erp.post("/api/resource/Journal Entry", receipt(CUSTOMER, si["name"], 54.0)))
    assert erp.doc("Sales Invoice", si["name"])["status"] == "Paid"
