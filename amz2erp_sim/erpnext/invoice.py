"""Sales Invoice (Credit Notes included) and Delivery Note of the simulated ERPNext, as ERPNext v15 maps,
validates and posts them (sales_order.py, sales_invoice.py, delivery_note.py, accounts_controller.py,
status_updater.py; confirmed by the v15 recordings).

* ``make_sales_invoice`` / ``make_delivery_note`` map a submitted Sales Order into an unsaved document: the
  lines not yet billed (amount − billed) or delivered (qty − delivered), linked by ``so_detail``; the tax rows
  copied; posting date = today. A fully billed order maps to a document without items whose totals are the
  order's (ERPNext skips the totals when there are no items).
* Without ``set_posting_time`` every save resets ``posting_date``/``posting_time`` to now; a due date before
  the posting date is refused; the fiscal year and closed accounting periods are checked on submit only.
* Submitting posts the GL (Dr ``debit_to`` with the party, Cr income per item, Cr each tax row's account),
  sets ``outstanding_amount``, bills the Sales Order lines and the Delivery Notes made from them, and stores
  the computed status ("Unpaid", "Overdue", …) while the answer of an insert keeps "Draft" as ERPNext's does.
* A Credit Note (``is_return``) with ``update_outstanding_for_self`` (v15 default) carries its own negative
  outstanding; without it, it lowers the original invoice's outstanding and its own is 0.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from amz2erp_sim.erpnext import journal as erpnext_journal
from amz2erp_sim.erpnext import returns as erpnext_returns
from amz2erp_sim.erpnext import stock as erpnext_stock
from amz2erp_sim.erpnext.errors import FrappeError, does_not_exist, error_message, validation
from amz2erp_sim.erpnext.values import cint, flt, getdate

if TYPE_CHECKING:
    from amz2erp_sim.erpnext.engine import Engine

SI = "Sales Invoice"
SII = "Sales Invoice Item"
DN = "Delivery Note"
DNI = "Delivery Note Item"
SO = "Sales Order"
MAKE_SALES_INVOICE = "erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice"
MAKE_DELIVERY_NOTE = "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note"

# Field lists generated from the v15 recordings (type-zero defaults; non-zero ones in DEFAULTS).
FIELDS: dict[str, dict[str, Any]] = {
    "Sales Invoice": {
        "naming_series": None, "customer": None, "customer_name": None, "company": None, "posting_date": None,
        "posting_time": None, "set_posting_time": 0, "due_date": None, "is_pos": 0, "is_consolidated": 0,
        "is_return": 0, "update_outstanding_for_self": 0, "update_billed_amount_in_sales_order": 0,
        "update_billed_amount_in_delivery_note": 0, "is_debit_note": 0, "currency": None,
        "conversion_rate": 0.0, "selling_price_list": None, "price_list_currency": None,
        "plc_conversion_rate": 0.0, "ignore_pricing_rule": 0, "update_stock": 0,
        "last_scanned_warehouse": None, "total_qty": 0.0, "total_net_weight": 0.0, "base_total": 0.0,
        "base_net_total": 0.0, "total": 0.0, "net_total": 0.0, "exempt_from_sales_tax": 0, "tax_category": "",
        "base_total_taxes_and_charges": 0.0, "total_taxes_and_charges": 0.0, "base_grand_total": 0.0,
        "base_rounding_adjustment": 0.0, "base_rounded_total": 0.0, "base_in_words": None, "grand_total": 0.0,
        "rounding_adjustment": 0.0, "use_company_roundoff_cost_center": 0, "rounded_total": 0.0,
        "in_words": None, "total_advance": 0.0, "outstanding_amount": 0.0, "disable_rounded_total": 0,
        "apply_discount_on": None, "base_discount_amount": 0.0, "is_cash_or_non_trade_discount": 0,
        "additional_discount_percentage": 0.0, "discount_amount": 0.0, "total_billing_hours": 0.0,
        "total_billing_amount": 0.0, "base_paid_amount": 0.0, "paid_amount": 0.0, "base_change_amount": 0.0,
        "change_amount": 0.0, "allocate_advances_automatically": 0, "only_include_allocated_payments": 0,
        "write_off_amount": 0.0, "base_write_off_amount": 0.0, "write_off_outstanding_amount_automatically": 0,
        "redeem_loyalty_points": 0, "loyalty_points": 0, "loyalty_amount": 0.0, "territory": None,
        "ignore_default_payment_terms_template": 0, "po_no": None, "debit_to": None,
        "party_account_currency": None, "is_opening": None, "amount_eligible_for_commission": 0.0,
        "commission_rate": 0.0, "total_commission": 0.0, "group_same_items": 0, "language": None,
        "status": None, "customer_group": None, "is_internal_customer": 0, "is_discounted": 0, "title": None,
        "against_income_account": None, "remarks": None, "return_against": None, "set_warehouse": "",
        "payment_terms_template": "", "select_print_heading": None,
    },
    "Sales Invoice Item": {
        "has_item_scanned": 0, "item_code": None, "item_name": None, "description": None, "item_group": None,
        "image": "", "qty": 0.0, "stock_uom": None, "uom": None, "conversion_factor": 0.0, "stock_qty": 0.0,
        "price_list_rate": 0.0, "base_price_list_rate": 0.0, "margin_type": "", "margin_rate_or_amount": 0.0,
        "rate_with_margin": 0.0, "discount_percentage": 0.0, "discount_amount": 0.0,
        "distributed_discount_amount": 0.0, "base_rate_with_margin": 0.0, "rate": 0.0, "amount": 0.0,
        "base_rate": 0.0, "base_amount": 0.0, "stock_uom_rate": 0.0, "is_free_item": 0, "grant_commission": 0,
        "net_rate": 0.0, "net_amount": 0.0, "base_net_rate": 0.0, "base_net_amount": 0.0,
        "delivered_by_supplier": 0, "income_account": None, "is_fixed_asset": 0, "expense_account": None,
        "enable_deferred_revenue": 0, "weight_per_unit": 0.0, "total_weight": 0.0, "warehouse": None,
        "use_serial_batch_fields": 0, "allow_zero_valuation_rate": 0, "incoming_rate": 0.0,
        "item_tax_rate": None, "actual_batch_qty": 0.0, "actual_qty": 0.0, "company_total_stock": 0.0,
        "sales_order": None, "so_detail": None, "delivered_qty": 0.0, "cost_center": None, "page_break": 0,
        "sales_invoice_item": None,
    },
    "Delivery Note": {
        "naming_series": None, "customer": None, "customer_name": None, "posting_date": None,
        "posting_time": None, "set_posting_time": 0, "company": None, "is_return": 0, "issue_credit_note": 0,
        "currency": None, "conversion_rate": 0.0, "selling_price_list": None, "price_list_currency": None,
        "plc_conversion_rate": 0.0, "ignore_pricing_rule": 0, "last_scanned_warehouse": None, "total_qty": 0.0,
        "total_net_weight": 0.0, "base_total": 0.0, "base_net_total": 0.0, "total": 0.0, "net_total": 0.0,
        "tax_category": "", "base_total_taxes_and_charges": 0.0, "total_taxes_and_charges": 0.0,
        "base_grand_total": 0.0, "base_rounding_adjustment": 0.0, "base_rounded_total": 0.0,
        "base_in_words": None, "grand_total": 0.0, "rounding_adjustment": 0.0, "rounded_total": 0.0,
        "in_words": None, "disable_rounded_total": 0, "apply_discount_on": None, "base_discount_amount": 0.0,
        "additional_discount_percentage": 0.0, "discount_amount": 0.0, "per_billed": 0.0, "status": None,
        "per_installed": 0.0, "per_returned": 0.0, "lr_date": None, "po_no": None,
        "amount_eligible_for_commission": 0.0, "commission_rate": 0.0, "total_commission": 0.0,
        "print_without_amount": 0, "group_same_items": 0, "language": None, "is_internal_customer": 0,
        "customer_group": None, "territory": None, "title": None, "installation_status": None,
    },
    "Delivery Note Item": {
        "has_item_scanned": 0, "item_code": None, "item_name": None, "description": None, "item_group": None,
        "image": "", "qty": 0.0, "stock_uom": None, "uom": None, "conversion_factor": 0.0, "stock_qty": 0.0,
        "returned_qty": 0.0, "price_list_rate": 0.0, "base_price_list_rate": 0.0, "margin_type": "",
        "margin_rate_or_amount": 0.0, "rate_with_margin": 0.0, "discount_percentage": 0.0,
        "discount_amount": 0.0, "distributed_discount_amount": 0.0, "base_rate_with_margin": 0.0, "rate": 0.0,
        "amount": 0.0, "base_rate": 0.0, "base_amount": 0.0, "stock_uom_rate": 0.0, "is_free_item": 0,
        "grant_commission": 0, "net_rate": 0.0, "net_amount": 0.0, "base_net_rate": 0.0,
        "base_net_amount": 0.0, "billed_amt": 0.0, "incoming_rate": 0.0, "weight_per_unit": 0.0,
        "total_weight": 0.0, "warehouse": None, "allow_zero_valuation_rate": 0, "against_sales_order": None,
        "so_detail": None, "use_serial_batch_fields": 0, "actual_qty": 0.0, "actual_batch_qty": 0.0,
        "company_total_stock": 0.0, "installed_qty": 0.0, "packed_qty": 0.0, "received_qty": 0.0,
        "expense_account": None, "item_tax_rate": None, "cost_center": None, "page_break": 0,
    },
}
for _dt in (SI, DN):
    FIELDS[_dt].update({"title": None, "amended_from": None, "remarks": None})
FIELDS[SI].update({"against_income_account": None, "select_print_heading": None, "set_warehouse": None,
                   "payment_terms_template": None, "return_against": None})  # fmt: skip
FIELDS[SII]["sales_invoice_item"] = None
FIELDS[DN]["return_against"] = None
FIELDS[DNI]["dn_detail"] = None
#: a Customer's own receivable account per company (its ``accounts`` table)
FIELDS["Party Account"] = {"company": None, "account": None, "advance_account": None}

DEFAULTS: dict[str, dict[str, Any]] = {
    SI: {"naming_series": "ACC-SINV-.YYYY.-", "title": "{customer_name}", "update_outstanding_for_self": 1,
         "update_billed_amount_in_delivery_note": 1, "apply_discount_on": "Grand Total", "is_opening": "No",
         "language": "en", "status": "Draft", "conversion_rate": 1.0, "plc_conversion_rate": 1.0},
    SII: {"conversion_factor": 1.0, "grant_commission": 1, "use_serial_batch_fields": 1, "item_tax_rate": "{}",
          "image": "", "margin_type": ""},
    DN: {"naming_series": "MAT-DN-.YYYY.-", "title": "{customer_name}", "apply_discount_on": "Grand Total",
         "status": "Draft", "installation_status": "Not Installed", "language": "en", "conversion_rate": 1.0,
         "plc_conversion_rate": 1.0},
    DNI: {"conversion_factor": 1.0, "grant_commission": 1, "use_serial_batch_fields": 1, "item_tax_rate": "{}",
          "image": "", "margin_type": ""},
}  # fmt: skip
TABLES: dict[str, dict[str, str | None]] = {
    SI: {"payments": None, "timesheets": None, "payment_schedule": "Payment Schedule", "pricing_rules": None,
         "advances": None, "sales_team": None, "taxes": "Sales Taxes and Charges", "packed_items": None,
         "items": SII},
    DN: {"pricing_rules": None, "sales_team": None, "taxes": "Sales Taxes and Charges", "packed_items": None,
         "items": DNI},
}  # fmt: skip
LINKS: dict[str, dict[str, str]] = {
    SI: {"customer": "Customer", "company": "Company", "debit_to": "Account", "currency": "Currency",
         "selling_price_list": "Price List", "return_against": SI, "amended_from": SI},
    SII: {"item_code": "Item", "sales_order": SO, "warehouse": "Warehouse", "income_account": "Account",
          "uom": "UOM", "delivery_note": DN},
    DN: {"customer": "Customer", "company": "Company", "currency": "Currency", "selling_price_list": "Price List",
         "return_against": DN, "amended_from": DN},
    DNI: {"item_code": "Item", "against_sales_order": SO, "warehouse": "Warehouse", "uom": "UOM"},
}  # fmt: skip
MANDATORY: dict[str, list[str]] = {
    SI: ["customer", "company", "posting_date", "currency", "conversion_rate", "debit_to", "items"],
    SII: ["item_code", "item_name", "qty", "uom", "conversion_factor", "income_account"],
    DN: ["customer", "company", "posting_date", "currency", "conversion_rate", "items"],
    DNI: ["item_code", "item_name", "qty", "uom", "conversion_factor"],
}
LABELS = {"debit_to": "Debit To", "posting_date": "Date", "items": "Items", "income_account": "Income Account"}

_HEADER_FROM_SO = (
    "customer", "customer_name", "company", "currency", "conversion_rate", "selling_price_list",
    "price_list_currency", "plc_conversion_rate", "ignore_pricing_rule", "territory", "customer_group",
    "po_no", "language", "disable_rounded_total", "apply_discount_on", "customer_address", "address_display",
    "shipping_address_name", "contact_person", "tax_category", "taxes_and_charges", "total_qty", "base_total",
    "base_net_total", "total", "net_total", "base_total_taxes_and_charges", "total_taxes_and_charges",
    "base_grand_total", "base_rounding_adjustment", "base_rounded_total", "base_in_words", "grand_total",
    "rounding_adjustment", "rounded_total", "in_words", "is_internal_customer",
)  # fmt: skip
_ROW_FROM_SO = (
    "item_code", "item_name", "description", "item_group", "brand", "stock_uom", "uom", "conversion_factor",
    "price_list_rate", "base_price_list_rate", "rate", "base_rate", "net_rate", "base_net_rate", "warehouse",
    "cost_center", "item_tax_template", "weight_per_unit", "weight_uom",
)  # fmt: skip
_TAX_FROM_SO = (
    "charge_type", "account_head", "description", "included_in_print_rate", "cost_center", "rate",
    "account_currency", "tax_amount", "row_id",
)  # fmt: skip


def _now_time() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")


def _company(eng: Engine, name: Any) -> dict[str, Any]:
    return eng.store.get("Company", str(name or eng.company)) or {}


def receivable_account(eng: Engine, customer: str, company: str) -> str | None:
    """The customer's own receivable account for the company, else the company's default."""
    cust = eng.store.get("Customer", customer) or {}
    for row in cust.get("accounts") or []:
        if row.get("company") == company and row.get("account"):
            return str(row["account"])
    return _company(eng, company).get("default_receivable_account") or None


def _income_account(eng: Engine, item: dict[str, Any], company: dict[str, Any]) -> Any:
    for d in item.get("item_defaults") or []:
        if d.get("company") == company.get("name") and d.get("income_account"):
            return d["income_account"]
    return company.get("default_income_account")


def _mapped(doc: dict[str, Any]) -> dict[str, Any]:
    """An unsaved document as ``get_mapped_doc`` answers it."""
    doc.pop("name", None)
    for f in ("creation", "modified", "modified_by"):
        doc.pop(f, None)
    for table in ("items", "taxes", "payment_schedule"):
        for i, row in enumerate(doc.get(table) or [], start=1):
            row["idx"] = i
            for f in ("name", "creation", "modified", "modified_by", "parent"):
                row.pop(f, None)
            row.update(parentfield=table, parenttype=doc["doctype"], __islocal=1, __unsaved=1)
    doc.update({"__islocal": 1, "__onload": {"load_after_mapping": True}, "__unsaved": 1})
    return doc


def _submitted_so(eng: Engine, source_name: str) -> dict[str, Any]:
    so = eng.store.get(SO, source_name)
    if so is None:
        raise does_not_exist(SO, source_name)
    if cint(so.get("docstatus")) != 1:
        raise validation("Cannot map because following condition fails: docstatus=1")
    return so


def _filtered(args: Any) -> set[str] | None:
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    names = args.get("filtered_children") if isinstance(args, dict) else None
    return {str(n) for n in names} if names else None


def copy_custom_fields(eng: Engine, source: dict[str, Any], target: dict[str, Any]) -> None:
    """The mapper copies a field both doctypes have unless either side marks it ``no_copy`` (so a Sales
    Order's unique ``amazon_order_id`` stays behind, a line's ``amazon_order_item_id`` comes along)."""
    src, dst = eng.custom_fields(str(source.get("doctype"))), eng.custom_fields(str(target.get("doctype")))
    for name, cf in dst.items():
        if name in source and not cint(cf.get("no_copy")) and not cint((src.get(name) or {}).get("no_copy")):
            target[name] = source[name]


def _map_header(eng: Engine, so: dict[str, Any], doctype: str) -> dict[str, Any]:
    doc = eng.new_doc(doctype, {})
    for f in _HEADER_FROM_SO:
        if f in so and f in doc:
            doc[f] = so[f]
    copy_custom_fields(eng, so, doc)
    doc["posting_date"] = eng.today()
    doc["posting_time"] = _now_time()
    doc["set_posting_time"] = 0
    doc["amount_eligible_for_commission"] = 0.0
    doc["taxes"] = [
        eng.new_child("Sales Taxes and Charges", {f: t.get(f) for f in _TAX_FROM_SO if f in t})
        for t in so.get("taxes") or []
    ]
    return doc


def make_sales_invoice(eng: Engine, source_name: str, args: Any = None) -> dict[str, Any]:
    so = _submitted_so(eng, source_name)
    only = _filtered(args)
    doc = _map_header(eng, so, SI)
    company = _company(eng, so.get("company"))
    doc["due_date"] = doc["posting_date"]
    doc["debit_to"] = receivable_account(eng, str(so.get("customer")), str(so.get("company")))
    acc = eng.store.get("Account", str(doc["debit_to"])) if doc["debit_to"] else None
    doc["party_account_currency"] = (acc or {}).get("account_currency") or company.get("default_currency")
    for r in so.get("items") or []:
        if only is not None and r.get("name") not in only:
            continue
        billed = flt(r.get("billed_amt"))
        # ERPNext's condition: a free line (amount 0) is always offered again
        if not flt(r.get("qty")) or (flt(r.get("base_amount")) and abs(billed) >= abs(flt(r.get("amount")))):
            continue
        amount = flt(flt(r.get("amount")) - billed, 2)
        qty = amount / flt(r.get("rate")) if flt(r.get("rate")) and billed else flt(r.get("qty"))
        item = eng.store.get("Item", str(r.get("item_code"))) or {}
        row = eng.new_child(SII, {f: r.get(f) for f in _ROW_FROM_SO if r.get(f) is not None})
        copy_custom_fields(eng, r, row)
        row.update(qty=qty, sales_order=so["name"], so_detail=r.get("name"),
                   income_account=_income_account(eng, item, company),
                   expense_account=company.get("default_expense_account"))  # fmt: skip
        doc["items"].append(row)
    if doc["items"]:
        totals(eng, doc)
        for row in doc["items"]:
            row["stock_uom_rate"] = 0.0  # set on save, not by the mapper
        doc["payment_schedule"] = []
        doc["outstanding_amount"] = party_total(doc)
        doc["amount_eligible_for_commission"] = doc["base_net_total"]
    _set_po_nos(eng, doc)
    return _mapped(doc)


def _set_po_nos(eng: Engine, doc: dict[str, Any]) -> None:
    """set_po_nos: the customer's order numbers of the Sales Orders the lines come from."""
    orders = dict.fromkeys(str(r["sales_order"]) for r in doc.get("items") or [] if r.get("sales_order"))
    po_nos = [str((eng.store.get(SO, o) or {}).get("po_no") or "") for o in orders]
    doc["po_no"] = ", ".join(dict.fromkeys(p for p in po_nos if p))


def make_delivery_note(eng: Engine, source_name: str, args: Any = None) -> dict[str, Any]:
    so = _submitted_so(eng, source_name)
    only = _filtered(args)
    doc = _map_header(eng, so, DN)
    company = _company(eng, so.get("company"))
    doc["lr_date"] = doc["posting_date"]
    for r in so.get("items") or []:
        if only is not None and r.get("name") not in only:
            continue
        pending = flt(r.get("qty")) - flt(r.get("delivered_qty"))
        if pending <= 0 or cint(r.get("delivered_by_supplier")):  # what is left to deliver
            continue
        row = eng.new_child(DNI, {f: r.get(f) for f in _ROW_FROM_SO if r.get(f) is not None})
        copy_custom_fields(eng, r, row)
        row.update(qty=pending, against_sales_order=so["name"], so_detail=r.get("name"),
                   expense_account=company.get("default_expense_account"))  # fmt: skip
        doc["items"].append(row)
    if doc["items"]:
        totals(eng, doc)
        for row in doc["items"]:
            row["stock_uom_rate"] = 0.0
        doc["amount_eligible_for_commission"] = doc["base_net_total"]
    return _mapped(doc)


# --------------------------------------------------------------------------- totals and validation


def totals(eng: Engine, doc: dict[str, Any]) -> None:
    """Line amounts, tax rows and totals the way a Sales Order computes them (Actual charges only)."""
    company = _company(eng, doc.get("company"))
    eng._so_totals(doc, str(company.get("default_currency") or eng.currency))
    for row in doc.get("items") or []:
        row.pop("gross_profit", None)
    doc["amount_eligible_for_commission"] = doc["base_net_total"]


def party_total(doc: dict[str, Any]) -> float:
    """What the invoice is owed in its receivable account's currency: the document total when that is the
    invoice's currency, else the company-currency total (calculate_outstanding_amount)."""
    if doc.get("party_account_currency") in (None, "", doc.get("currency")):
        return flt(doc.get("rounded_total")) or flt(doc.get("grand_total"))
    return flt(doc.get("base_rounded_total")) or flt(doc.get("base_grand_total"))


def validate_sales_invoice(eng: Engine, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
    _validate_selling(eng, doc)
    company = _company(eng, doc["company"])
    if not doc.get("debit_to"):
        doc["debit_to"] = receivable_account(eng, str(doc["customer"]), str(doc["company"]))
    acc = eng.store.get("Account", str(doc["debit_to"])) if doc.get("debit_to") else None
    doc["party_account_currency"] = (acc or {}).get("account_currency") or company.get("default_currency")
    for row in doc.get("items") or []:
        item = eng.store.get("Item", str(row.get("item_code"))) or {}
        row["income_account"] = row.get("income_account") or _income_account(eng, item, company)
        row["expense_account"] = row.get("expense_account") or company.get("default_expense_account")
    if cint(doc.get("is_return")):
        erpnext_returns.validate_return(eng, doc)
    totals(eng, doc)
    for row in doc.get("items") or []:
        row["stock_uom_rate"] = flt(flt(row.get("rate")) / (flt(row.get("conversion_factor")) or 1.0), 2)
    if not doc.get("due_date"):
        doc["due_date"] = doc["posting_date"]
    if getdate(doc["due_date"]) < getdate(doc["posting_date"]):  # type: ignore[operator]
        raise validation("Due Date cannot be before Posting / Supplier Invoice Date", exc_source=True)
    total = doc["rounded_total"] or doc["grand_total"]
    if cint(doc.get("is_return")):
        doc["payment_schedule"] = []
    else:
        old_rows = doc.get("payment_schedule") or []
        row = eng.new_child("Payment Schedule", {
            "due_date": doc["due_date"], "invoice_portion": 100.0, "payment_amount": total, "outstanding": total,
            "base_payment_amount": doc["base_rounded_total"] or doc["base_grand_total"],
            "base_outstanding": doc["base_rounded_total"] or doc["base_grand_total"]})  # fmt: skip
        if old_rows and old_rows[0].get("name"):
            row["name"], row["creation"] = old_rows[0]["name"], old_rows[0].get("creation")
        doc["payment_schedule"] = [row]
    doc["outstanding_amount"] = party_total(doc)
    incomes = [str(r["income_account"]) for r in doc.get("items") or [] if r.get("income_account")]
    doc["against_income_account"] = ",".join(dict.fromkeys(incomes)) or None
    if cint(doc.get("is_return")):
        doc["select_print_heading"] = doc.get("select_print_heading") or "Credit Note"
        doc["payment_terms_template"] = doc.get("payment_terms_template") or ""
    if cint(doc.get("docstatus")) == 0:
        doc["status"] = "Draft"


def validate_delivery_note(eng: Engine, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
    _validate_selling(eng, doc)
    company = _company(eng, doc["company"])
    for row in doc.get("items") or []:
        row["expense_account"] = row.get("expense_account") or company.get("default_expense_account")
    totals(eng, doc)
    for row in doc.get("items") or []:
        row["stock_uom_rate"] = flt(flt(row.get("rate")) / (flt(row.get("conversion_factor")) or 1.0), 2)
    doc["lr_date"] = doc.get("lr_date") or doc["posting_date"]
    if cint(doc.get("docstatus")) == 0:
        doc["status"] = "Draft"


def _validate_selling(eng: Engine, doc: dict[str, Any]) -> None:
    """What a Sales Invoice and a Delivery Note share: party, dates, currency, item rows."""
    customer = eng.store.get("Customer", str(doc.get("customer"))) if doc.get("customer") else None
    if doc.get("customer") and customer is None:
        raise does_not_exist("Customer", str(doc["customer"]))
    doc["company"] = doc.get("company") or eng.company
    company = _company(eng, doc["company"])
    company_currency = str(company.get("default_currency") or eng.currency)
    if not cint(doc.get("set_posting_time")):  # TransactionBase.validate_posting_time: "now" unless told
        doc["posting_date"], doc["posting_time"] = eng.today(), _now_time()
    doc["posting_time"] = doc.get("posting_time") or _now_time()
    if customer:
        doc["customer_name"] = customer.get("customer_name")
        doc["customer_group"] = doc.get("customer_group") or customer.get("customer_group")
        doc["territory"] = doc.get("territory") or customer.get("territory")
    if doc.get("title") in (None, "", "{customer_name}"):
        doc["title"] = doc.get("customer_name")
    doc["selling_price_list"] = doc.get("selling_price_list") or "Standard Selling"
    pl = eng.store.get("Price List", str(doc["selling_price_list"])) or {}
    doc["price_list_currency"] = doc.get("price_list_currency") or pl.get("currency") or company_currency
    doc["currency"] = doc.get("currency") or company_currency
    if doc["currency"] == company_currency:
        doc["conversion_rate"] = 1.0
    elif not flt(doc.get("conversion_rate")):
        rate = eng._exchange_rate(doc["currency"], company_currency, str(doc["posting_date"]))
        if rate is None:
            raise validation(
                f"Exchange Rate is mandatory. Maybe Currency Exchange record is not created for "
                f"{doc['currency']} to {company_currency}.",
                exc_source=True,
            )
        doc["conversion_rate"] = rate
    if not doc.get("po_no"):
        _set_po_nos(eng, doc)
    if not doc.get("remarks"):
        doc["remarks"] = f"Against Customer Order {doc['po_no']}" if doc.get("po_no") else "No Remarks"
    for i, row in enumerate(doc.get("items") or [], start=1):
        code = row.get("item_code")
        item = eng.store.get("Item", str(code)) if code else None
        if code and item is None:
            raise does_not_exist("Item", str(code))
        item = item or {}
        for f in ("item_name", "description", "item_group", "stock_uom"):
            if not row.get(f):
                row[f] = item.get(f)
        row["uom"] = row.get("uom") or item.get("stock_uom")
        row["conversion_factor"] = flt(row.get("conversion_factor")) or 1.0
        row["cost_center"] = row.get("cost_center") or company.get("cost_center")
        if not row.get("warehouse") and cint(item.get("is_stock_item")):
            defaults = item.get("item_defaults") or []
            row["warehouse"] = defaults[0].get("default_warehouse") if defaults else None
        if not flt(row.get("qty")) and not cint(doc.get("is_return")):
            raise FrappeError(417, "InvalidQtyError", [error_message(
                f"Row #{i}: Quantity for Item <strong>{code}</strong> cannot be zero.", "Invalid Quantity")],
                exc_source=True)  # fmt: skip
        row["incoming_rate"] = 0.0 if cint(doc.get("is_return")) else erpnext_stock.valuation_rate(
            eng, str(code), str(row.get("warehouse"))
        )


# --------------------------------------------------------------------------- status


def si_status(eng: Engine, doc: dict[str, Any]) -> str:
    """SalesInvoice.set_status: the status stored once the invoice is saved."""
    ds = cint(doc.get("docstatus"))
    if ds == 0:
        return "Draft"
    if ds == 2:
        return "Cancelled"
    outstanding = flt(doc.get("outstanding_amount"), 2)
    total = party_total(doc)
    due = getdate(doc.get("due_date"))
    today = getdate(eng.today())
    if _is_overdue(doc, outstanding, total, today):
        return "Overdue"
    if 0 < outstanding < total:
        return "Partly Paid"
    if outstanding > 0 and due is not None and today is not None and due >= today:
        return "Unpaid"
    if not cint(doc.get("is_return")) and any(
        cint(r.get("docstatus")) == 1 and cint(r.get("is_return"))
        for r in eng.store.scan(SI, {"return_against": str(doc["name"])})
    ):
        return "Credit Note Issued"
    if cint(doc.get("is_return")):
        return "Return"
    if outstanding <= 0:
        return "Paid"
    return "Submitted"


def _is_overdue(doc: dict[str, Any], outstanding: float, total: float, today: Any) -> bool:
    if outstanding <= 0:
        return False
    schedule = doc.get("payment_schedule") or []
    if cint(doc.get("is_pos")) or not schedule:
        due = getdate(doc.get("due_date"))
        return bool(due and due < today)
    field = "base_payment_amount" if doc.get("party_account_currency") != doc.get("currency") else "payment_amount"
    payable = sum(flt(p.get(field)) for p in schedule if getdate(p.get("due_date")) < today)
    return (total - outstanding) < payable


def set_si_status(eng: Engine, si: dict[str, Any]) -> None:
    si["status"] = si_status(eng, si)
    eng.store.update(si)


def dn_status(doc: dict[str, Any]) -> str:
    ds = cint(doc.get("docstatus"))
    if ds == 0:
        return "Draft"
    if ds == 2:
        return "Cancelled"
    if doc.get("status") == "Closed":
        return "Closed"
    if cint(doc.get("is_return")):
        return "Return"
    if flt(doc.get("per_returned")) >= 100:
        return "Return Issued"
    if flt(doc.get("per_billed")) < 100:
        return "To Bill"
    return "Completed"


# --------------------------------------------------------------------------- submit / cancel


def on_submit(eng: Engine, doc: dict[str, Any], sign: int) -> None:
    """Submitting (sign 1) or cancelling (sign -1) a Sales Invoice or Delivery Note: stock, ledger, billing."""
    if doc["doctype"] == SI:
        _si_on_submit(eng, doc, sign)
    else:
        _dn_on_submit(eng, doc, sign)


def _si_on_submit(eng: Engine, doc: dict[str, Any], sign: int) -> None:
    if sign > 0:
        erpnext_journal.check_closed_period(eng, doc)
        erpnext_journal._check_fiscal_year(eng, doc)
    if cint(doc.get("update_stock")):
        erpnext_stock.post_voucher(eng, doc, sign)
    total = party_total(doc)
    against_original = (
        cint(doc.get("is_return")) and doc.get("return_against") and not cint(doc.get("update_outstanding_for_self"))
    )
    if against_original:
        original = eng.store.get(SI, str(doc["return_against"]))
        if original is not None:
            original["outstanding_amount"] = flt(flt(original.get("outstanding_amount")) + sign * total, 2)
            set_si_status(eng, original)
        if sign > 0:
            doc["outstanding_amount"] = 0.0
    if sign > 0:
        _post_gl(eng, doc, str(doc["return_against"]) if against_original else str(doc["name"]))
        stored = dict(doc, status=si_status(eng, doc))  # ERPNext stores it; an insert's answer says "Draft"
        eng.store.update(stored)
    else:
        erpnext_journal.cancel_gl(eng, SI, str(doc["name"]))
    if sign > 0:
        _link_lines(eng, doc)
    for so_detail in {str(r["so_detail"]) for r in doc.get("items") or [] if r.get("so_detail")}:
        rebill_delivery_notes(eng, so_detail, cancelled_invoice=None if sign > 0 else str(doc["name"]))


def _post_gl(eng: Engine, doc: dict[str, Any], against_voucher: str) -> None:
    base_total = flt(doc.get("base_rounded_total")) or flt(doc.get("base_grand_total"))
    cost_center = _company(eng, doc.get("company")).get("cost_center")
    entries: list[dict[str, Any]] = [
        {"account": doc.get("debit_to"), "party_type": "Customer", "party": doc.get("customer"),
         "debit": base_total, "debit_in_account_currency": party_total(doc),
         "against_voucher_type": SI, "against_voucher": against_voucher, "cost_center": None}
    ]  # fmt: skip
    income: dict[tuple[Any, Any], float] = {}
    for row in doc.get("items") or []:
        key = (row.get("income_account"), row.get("cost_center") or cost_center)
        income[key] = income.get(key, 0.0) + flt(row.get("base_net_amount"))
    for (account, cc), amount in income.items():
        entries.append({"account": account, "credit": flt(amount, 2), "credit_in_account_currency": flt(amount, 2),
                        "cost_center": cc})  # fmt: skip
    for tax in doc.get("taxes") or []:
        amount = flt(tax.get("base_tax_amount_after_discount_amount") or tax.get("base_tax_amount"), 2)
        if amount:
            entries.append({"account": tax.get("account_head"), "credit": amount,
                            "credit_in_account_currency": amount, "cost_center": tax.get("cost_center")})  # fmt: skip
    erpnext_journal.post_gl(eng, doc, SI, entries)


def _dn_on_submit(eng: Engine, doc: dict[str, Any], sign: int) -> None:
    if sign > 0:
        erpnext_journal._check_fiscal_year(eng, doc)
    erpnext_stock.post_voucher(eng, doc, sign)
    if sign > 0:
        _link_lines(eng, doc)
        rebill_delivery_notes(eng, None, current=doc)
        doc["status"] = dn_status(doc)
        eng.store.update(doc)


def _lines_key(doctype: str, so_detail: str) -> str:
    return f"lines|{doctype}|{so_detail}"


def _linked(eng: Engine, doctype: str, so_detail: str) -> list[str]:
    """Names of the invoices / delivery notes ever submitted with a line of this Sales Order line (an index
    kept beside the documents: child rows cannot be filtered on cheaply)."""
    raw = eng.store.get_meta(_lines_key(doctype, so_detail))
    return list(json.loads(raw)) if raw else []


def _link_lines(eng: Engine, doc: dict[str, Any]) -> None:
    for detail in {str(r["so_detail"]) for r in doc.get("items") or [] if r.get("so_detail")}:
        names = _linked(eng, doc["doctype"], detail)
        if doc["name"] not in names:
            eng.store.set_meta(_lines_key(doc["doctype"], detail), json.dumps([*names, doc["name"]]))


def rebill_delivery_notes(
    eng: Engine,
    so_detail: str | None,
    *,
    cancelled_invoice: str | None = None,
    current: dict[str, Any] | None = None,
) -> None:
    """The billed amount of Delivery Note lines made from Sales Order lines (what submitted invoices billed
    against the order line, given to its delivery notes in order), their per_billed and status."""
    details = {so_detail} if so_detail else {str(r["so_detail"]) for r in (current or {}).get("items") or []
                                             if r.get("so_detail")}  # fmt: skip
    for detail in details:
        invoices = [eng.store.get(SI, n) or {} for n in _linked(eng, SI, detail) if n != cancelled_invoice]
        billed = sum(
            flt(r.get("amount"))
            for si in invoices
            if cint(si.get("docstatus")) == 1 and not cint(si.get("is_return"))
            for r in si.get("items") or []
            if r.get("so_detail") == detail and not r.get("delivery_note")
        )
        notes = [eng.store.get(DN, n) or {} for n in _linked(eng, DN, detail)]
        notes = [d for d in notes if cint(d.get("docstatus")) == 1]
        if current is not None:
            notes = [d for d in notes if d["name"] != current["name"]] + [current]
        for note in notes:
            touched = False
            for row in note.get("items") or []:
                if row.get("so_detail") != detail:
                    continue
                share = max(0.0, min(flt(row.get("amount")), billed))
                billed -= share
                row["billed_amt"] = flt(share, 2)
                touched = True
            if touched:
                amount = sum(flt(r.get("amount")) for r in note.get("items") or [])
                billed_amt = sum(flt(r.get("billed_amt")) for r in note["items"])
                note["per_billed"] = flt(billed_amt / amount * 100, 3) if amount else 0.0
                note["status"] = dn_status(note)
                if note is not current:
                    eng.store.update(note)


def check_so_cancel(eng: Engine, so: dict[str, Any]) -> None:
    """SalesOrder.check_nextdoc_docstatus: a draft invoice made from the order must go first."""
    drafts = [
        si["name"]
        for si in eng.store.scan(SI)
        if cint(si.get("docstatus")) == 0 and any(r.get("sales_order") == so["name"] for r in si.get("items") or [])
    ]
    if drafts:
        url = eng.site_url()
        links = ", ".join(f'<a href="{url}/app/sales-invoice/{n}">{n}</a>' for n in drafts)
        raise validation(f"Sales Invoice {links} must be deleted before cancelling this Sales Order", exc_source=True)

