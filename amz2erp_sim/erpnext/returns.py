"""Sales returns (Credit Notes) of the simulated ERPNext: ``make_sales_return`` and the return rules of
ERPNext v15 (controllers/sales_and_purchase_return.py; confirmed by the v15 recordings).

* ``make_sales_return`` maps a submitted invoice into an unsaved Credit Note: ``is_return`` 1,
  ``return_against``, each line with the quantity not yet returned negated and ``sales_invoice_item`` set,
  "Actual" tax rows negated, ``update_outstanding_for_self`` 1 and ``update_billed_amount_in_sales_order`` 0
  (the v15 defaults), posting date today with ``set_posting_time`` 1.
* A return line needs a negative quantity ("For an item …, quantity must be negative number"); it cannot
  return more than the original line less what earlier returns took (StockOverReturnError); its rate cannot
  exceed the original's; its posting timestamp cannot be before the original's; its exchange rate must be the
  original's. The original must exist ("Invalid Return Against: …"); ERPNext v15 compares company, customer
  and docstatus only to decide whether to run the timestamp/rate checks, so a return for another customer is
  not refused there.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from amz2erp_sim.erpnext.errors import FrappeError, error_message, plain_message, validation
from amz2erp_sim.erpnext.values import cint, flt

if TYPE_CHECKING:
    from amz2erp_sim.erpnext.engine import Engine

SI = "Sales Invoice"
SII = "Sales Invoice Item"
MAKE_SALES_RETURN = "erpnext.accounts.doctype.sales_invoice.sales_invoice.make_sales_return"

_NO_COPY = {"name", "creation", "modified", "modified_by", "docstatus", "status", "amended_from", "remarks",
            "against_income_account", "outstanding_amount", "title"}  # fmt: skip


def _already_returned(eng: Engine, original: str, exclude: str | None = None) -> dict[str, float]:
    """Quantity returned so far per original invoice line (``sales_invoice_item``), and per item code."""
    out: dict[str, float] = {}
    for ret in eng.store.scan(SI, {"return_against": original}):
        if cint(ret.get("docstatus")) != 1 or not cint(ret.get("is_return")) or ret["name"] == exclude:
            continue
        for row in ret.get("items") or []:
            for key in (row.get("sales_invoice_item"), f"item:{row.get('item_code')}"):
                if key:
                    out[str(key)] = out.get(str(key), 0.0) + abs(flt(row.get("stock_qty") or row.get("qty")))
    return out


def make_sales_return(eng: Engine, source_name: str) -> dict[str, Any]:
    from amz2erp_sim.erpnext import invoice as erpnext_invoice

    original = eng.store.get(SI, source_name)
    if original is None:
        from amz2erp_sim.erpnext.errors import does_not_exist

        raise does_not_exist(SI, source_name)
    if cint(original.get("docstatus")) != 1:
        raise validation("Cannot map because following condition fails: docstatus=1")
    returned = _already_returned(eng, source_name)
    doc = eng.new_doc(SI, {k: v for k, v in original.items() if k not in _NO_COPY and k not in ("items", "taxes")})
    doc.update(is_return=1, return_against=source_name, update_outstanding_for_self=1,
               update_billed_amount_in_sales_order=0, ignore_pricing_rule=1, set_warehouse="",
               select_print_heading="Credit Note", posting_date=eng.today(),
               posting_time=datetime.now().strftime("%H:%M:%S.%f"), set_posting_time=1)  # fmt: skip
    doc.pop("due_date", None)
    for r in original.get("items") or []:
        left = flt(r.get("qty")) - returned.get(str(r.get("name")), 0.0)
        if left <= 0:
            continue
        row = eng.new_child(SII, {k: v for k, v in r.items() if k not in ("name", "creation", "modified", "parent")})
        row.update(qty=-left, sales_invoice_item=r.get("name"), incoming_rate=0.0, docstatus=0)
        doc["items"].append(row)
    for t in original.get("taxes") or []:
        row = eng.new_child("Sales Taxes and Charges", {k: v for k, v in t.items() if k not in ("name", "parent")})
        if row.get("charge_type") == "Actual":
            row["tax_amount"] = -flt(row.get("tax_amount"))
        doc["taxes"].append(row)
    erpnext_invoice.totals(eng, doc)
    for row in doc["items"]:
        row["stock_uom_rate"] = 0.0
    doc["payment_schedule"] = [
        eng.new_child("Payment Schedule", dict({k: v for k, v in p.items() if k not in ("name", "parent")},
                                               payment_amount=-flt(p.get("payment_amount")), docstatus=0,
                                               discount_type="Percentage", due_date_based_on="",
                                               discount_validity_based_on=""))
        for p in original.get("payment_schedule") or []
    ]
    doc["outstanding_amount"] = erpnext_invoice.party_total(doc)
    return erpnext_invoice._mapped(doc)


def validate_return(eng: Engine, doc: dict[str, Any]) -> None:
    """Run on every save of a return (``is_return``), before its totals."""
    for row in doc.get("items") or []:
        if flt(row.get("qty")) > 0:
            raise validation(f"For an item {row.get('item_code')}, quantity must be negative number", exc_source=True)
    against = doc.get("return_against")
    if not against:
        return
    original = eng.store.get(SI, str(against))
    if original is None:
        raise validation(f"Invalid Return Against: {against}")
    if cint(doc.get("update_outstanding_for_self")):
        url = eng.site_url()
        link = f'<a href="{url}/app/sales-invoice/{against}">{against}</a>'
        eng.notes.append(plain_message(
            f"We can see <strong>Credit Note</strong> is made against {link}. If you want {link}'s outstanding "
            "to be updated, uncheck the '<strong>Update Outstanding for Self</strong>' checkbox.<br><br>You can "
            f'use <a href="{url}/app/payment-reconciliation/Payment%20Reconciliation">Payment Reconciliation</a>'
            f" to reconcile against {link} later."))  # fmt: skip
    same = (
        original.get("company") == doc.get("company")
        and original.get("customer") == doc.get("customer")
        and cint(original.get("docstatus")) == 1
    )
    if same:
        mine = f"{doc.get('posting_date')} {doc.get('posting_time') or '00:00:00'}"
        theirs = f"{original.get('posting_date')} {original.get('posting_time') or '00:00:00'}"
        if _ts(mine) < _ts(theirs):
            raise validation(f"Posting timestamp must be after {_format_ts(theirs)}")
        if flt(doc.get("conversion_rate")) != flt(original.get("conversion_rate")):
            raise validation(
                f"Exchange Rate must be same as {SI} {against} ({original.get('conversion_rate')})"
            )
        if cint(doc.get("update_stock")) and not cint(original.get("update_stock")):
            raise validation(f"'Update Stock' can not be checked because items are not delivered via {against}")
    _validate_returned_items(eng, doc, original)


def _validate_returned_items(eng: Engine, doc: dict[str, Any], original: dict[str, Any]) -> None:
    valid: dict[str, dict[str, float]] = {}
    for r in original.get("items") or []:
        ref = valid.setdefault(str(r.get("item_code")), {"qty": 0.0, "stock_qty": 0.0, "rate": 0.0})
        ref["qty"] += flt(r.get("qty"))
        ref["stock_qty"] += flt(r.get("stock_qty") or r.get("qty"))
        ref["rate"] = max(ref["rate"], flt(r.get("rate")))
    returned = _already_returned(eng, str(original["name"]), exclude=doc.get("name"))
    returned_anything = False
    for idx, row in enumerate(doc.get("items") or [], start=1):
        code = str(row.get("item_code"))
        if row.get("item_code") and flt(row.get("qty")) < 0:
            if code not in valid:
                raise validation(f"Row # {idx}: Returned Item {code} does not exist in {SI} {original['name']}")
            ref = valid[code]
            done = returned.get(f"item:{code}", 0.0)
            stock_qty = flt(row.get("qty")) * (flt(row.get("conversion_factor")) or 1.0)
            if ref["stock_qty"]:
                if done >= ref["stock_qty"]:
                    raise _over_return(eng, f"Item {code} has already been returned")
                if abs(flt(stock_qty, 3)) > flt(ref["stock_qty"], 3) - done:
                    raise _over_return(
                        eng, f"Row # {idx}: Cannot return more than {flt(ref['stock_qty'], 3) - done} for Item {code}"
                    )
            if ref["rate"] and flt(row.get("rate")) > ref["rate"]:
                raise validation(f"Row # {idx}: Rate cannot be greater than the rate used in {SI} {original['name']}")
            returned_anything = True
        elif row.get("item_name"):
            returned_anything = True
    if not returned_anything:
        raise validation("Atleast one item should be entered with negative quantity in return document")


def _over_return(eng: Engine, message: str) -> FrappeError:
    # the notes ERPNext queued before the refusal travel with it
    return FrappeError(417, "StockOverReturnError", [*eng.notes, error_message(message)], exc_source=True,
                       module="erpnext.controllers.sales_and_purchase_return")  # fmt: skip


def _ts(value: str) -> datetime:
    date_part, _, time_part = value.partition(" ")
    hh, mm, rest = ([*time_part.split(":"), "0", "0"])[:3]
    sec, _, frac = rest.partition(".")
    return datetime.fromisoformat(
        f"{date_part} {int(hh):02d}:{int(mm):02d}:{int(float(sec or 0)):02d}.{(frac or '0')[:6].ljust(6, '0')}"
    )


def _format_ts(value: str) -> str:
    return _ts(value).strftime("%m-%d-%Y %H:%M:%S")
