"""The Sales Order of the simulated ERPNext: validation, totals and taxes, exchange rates, stock
reservation, delivery/billing progress and status.

Everything here runs with the simulator's lock held and inside a store transaction.
"""

from __future__ import annotations

import json
from typing import Any

from amz2erp_sim.erpnext import invoice as erpnext_invoice
from amz2erp_sim.erpnext import journal as erpnext_journal
from amz2erp_sim.erpnext import stock as erpnext_stock
from amz2erp_sim.erpnext.errors import (
    FrappeError,
    does_not_exist,
    error_message,
    mandatory,
    plain_message,
    validation,
)
from amz2erp_sim.erpnext.validation import ValidationRules
from amz2erp_sim.erpnext.values import cint, flt, getdate, money_in_words


class SalesOrderRules(ValidationRules):
    """The Sales Order's rules, on top of the generic validation."""

    def _validate_sales_order(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        customer_name = doc.get("customer")
        if self._missing(customer_name):
            raise mandatory("Sales Order", doc["name"], "customer", "Customer")
        customer = self.store.get("Customer", str(customer_name))
        if customer is None:
            raise does_not_exist("Customer", str(customer_name))
        company = self.store.get("Company", str(doc.get("company") or self.company))
        company_currency = (company or {}).get("default_currency") or self.currency
        doc["company"] = doc.get("company") or self.company
        doc["customer_name"] = customer.get("customer_name")
        doc["customer_group"] = doc.get("customer_group") or customer.get("customer_group")
        doc["territory"] = doc.get("territory") or customer.get("territory")
        doc["language"] = customer.get("language") or "en"
        doc["transaction_date"] = doc.get("transaction_date") or self.today()
        pl_name = doc.get("selling_price_list") or "Standard Selling"
        doc["selling_price_list"] = pl_name
        pl = self.store.get("Price List", str(pl_name))
        doc["price_list_currency"] = (pl or {}).get("currency") or company_currency
        if not flt(doc.get("plc_conversion_rate")):
            doc["plc_conversion_rate"] = 1.0
        if not doc.get("customer_address"):
            doc["customer_address"], doc["address_display"] = self._customer_address(str(customer_name))
        items: dict[str, dict[str, Any]] = {}
        for row in doc.get("items") or []:
            code = row.get("item_code")
            item = self.store.get("Item", str(code)) if code else None
            if code and item is None:
                raise does_not_exist("Item", str(code))
            if item:
                items[str(code)] = item
                for f in ("item_name", "description", "brand"):
                    if self._missing(row.get(f)):
                        row[f] = item.get(f)
                for f in ("item_group", "stock_uom", "is_stock_item"):
                    row[f] = item.get(f)
                row["uom"] = row.get("uom") or item.get("stock_uom")
                if not row.get("warehouse"):
                    defaults = item.get("item_defaults") or []
                    row["warehouse"] = defaults[0].get("default_warehouse") if defaults else None
            row["cost_center"] = row.get("cost_center") or f"Main - {self.abbr}"
            if item and cint(item.get("is_stock_item")):  # get_item_details: the bin's figures
                wh = str(row.get("warehouse"))
                row["projected_qty"] = erpnext_stock.actual_qty(self.engine(), str(code), wh) - self._reserved(
                    str(code), wh
                )
                row["valuation_rate"] = erpnext_stock.valuation_rate(self.engine(), str(code), wh)
            else:
                row["projected_qty"] = 0.0
            row["transaction_date"] = doc["transaction_date"]
        # currency
        doc["currency"] = doc.get("currency") or company_currency
        if doc["currency"] == company_currency:
            doc["conversion_rate"] = 1.0
        elif not flt(doc.get("conversion_rate")):
            rate = self._exchange_rate(doc["currency"], company_currency, str(doc["transaction_date"]))
            if rate is None:
                raise FrappeError(
                    417,
                    "ValidationError",
                    [
                        plain_message(
                            f"Unable to find exchange rate for {doc['currency']} to {company_currency} "
                            f"for key date {doc['transaction_date']}. Please create a Currency Exchange "
                            "record manually"
                        ),
                        error_message(
                            f"Exchange Rate is mandatory. Maybe Currency Exchange record is not created "
                            f"for {doc['currency']} to {company_currency}."
                        ),
                    ],
                    exc_source=True,
                )
            doc["conversion_rate"] = rate
        # delivery dates
        if cint(doc.get("skip_delivery_note")):  # not required then, but the order's date still reaches the rows
            for row in doc.get("items") or []:
                row["delivery_date"] = row.get("delivery_date") or doc.get("delivery_date")
        if doc.get("order_type") == "Sales" and not cint(doc.get("skip_delivery_note")):
            for row in doc.get("items") or []:
                if not row.get("delivery_date"):
                    row["delivery_date"] = doc.get("delivery_date")
                if not row.get("delivery_date"):
                    raise validation("Please enter Delivery Date", exc_source=True)
                if getdate(row["delivery_date"]) < getdate(doc["transaction_date"]):  # type: ignore[operator]
                    raise FrappeError(
                        417,
                        "ValidationError",
                        [
                            error_message(
                                "Expected Delivery Date should be after Sales Order Date",
                                "Invalid Delivery Date",
                                "orange",
                            )
                        ],
                        exc_source=True,
                    )
            dates = [str(r["delivery_date"]) for r in doc.get("items") or [] if r.get("delivery_date")]
            if dates:
                doc["delivery_date"] = max(dates)
        # qty
        for i, row in enumerate(doc.get("items") or [], start=1):
            if not flt(row.get("qty")):
                raise FrappeError(
                    417,
                    "InvalidQtyError",
                    [
                        error_message(
                            f"Row #{i}: Quantity for Item <strong>{row.get('item_code')}</strong> "
                            "cannot be zero.",
                            "Invalid Quantity",
                        )
                    ],
                    exc_source=True,
                )
        # customer's purchase order
        po_no = doc.get("po_no")
        if po_no:
            for other in self.store.scan("Sales Order", {"po_no": str(po_no)}):
                if (
                    other["name"] != doc["name"]
                    and other.get("customer") == doc["customer"]
                    and cint(other.get("docstatus")) < 2
                    and other.get("po_no") == po_no
                ):
                    url = self.site_url()
                    raise validation(
                        f"Sales Order <strong>{other['name']}</strong> already exists against Customer's "
                        f"Purchase Order <strong>{po_no}</strong>. To allow multiple Sales Orders, Enable "
                        "<strong>'Allow Multiple Sales Orders Against a Customer's Purchase Order'</strong>"
                        " in "
                        f'<a href="{url}/app/selling-settings/Selling%20Settings">Selling Settings</a>',
                        exc_source=True,
                    )
        self._so_totals(doc, company_currency)
        self._auto_item_prices(doc, items)

    def _reserved(self, item_code: str, warehouse: str) -> float:
        return flt(self.store.get_meta(f"reserved|{item_code}|{warehouse}") or 0)

    def _reserve(self, doc: dict[str, Any], sign: int) -> None:
        if doc["doctype"] != "Sales Order":
            return
        for row in doc.get("items") or []:
            if not cint(row.get("is_stock_item")):  # only stock items are reserved
                continue
            key = f"reserved|{row.get('item_code')}|{row.get('warehouse')}"
            pending = flt(row.get("stock_qty")) - flt(row.get("delivered_qty"))
            self.store.set_meta(key, repr(flt(self.store.get_meta(key) or 0) + sign * pending))

    def _on_submit(self, doc: dict[str, Any], sign: int) -> None:
        """Side effects of submitting (sign 1) or cancelling (sign -1): stock reservation, SO progress."""
        if doc["doctype"] == erpnext_journal.JE:
            (erpnext_journal.on_submit if sign > 0 else erpnext_journal.on_cancel)(self.engine(), doc)
            return
        if doc["doctype"] == erpnext_stock.STE:
            erpnext_stock.on_submit_stock_entry(self.engine(), doc, sign)
            return
        self._reserve(doc, sign)
        dt = doc["doctype"]
        if dt not in ("Delivery Note", "Sales Invoice"):
            return
        erpnext_invoice.on_submit(self.engine(), doc, sign)
        # a Credit Note leaves the order's billed amount alone unless told (v15 default 0)
        bills = dt == "Sales Invoice" and (
            not cint(doc.get("is_return")) or cint(doc.get("update_billed_amount_in_sales_order"))
        )
        delivers = dt == "Delivery Note" or cint(doc.get("update_stock"))
        ref_field = "against_sales_order" if dt == "Delivery Note" else "sales_order"
        for row in doc.get("items") or []:
            so = self.store.get("Sales Order", str(row.get(ref_field))) if row.get(ref_field) else None
            if so is None or cint(so.get("docstatus")) != 1:
                continue
            so_rows = so.get("items") or []
            target = next((r for r in so_rows if r.get("name") == row.get("so_detail")), None) or next(
                (r for r in so_rows if r.get("item_code") == row.get("item_code")), None
            )
            if target is None:
                continue
            if delivers:
                target["delivered_qty"] = flt(target.get("delivered_qty")) + sign * flt(row.get("qty"))
                key = f"reserved|{target.get('item_code')}|{target.get('warehouse')}"
                self.store.set_meta(
                    key, repr(flt(self.store.get_meta(key) or 0) - sign * flt(row.get("qty")))
                )
            if bills:
                target["billed_amt"] = flt(flt(target.get("billed_amt")) + sign * flt(row.get("amount")), 2)
            self._so_progress(so)
            so["modified"] = self.now()
            self.store.update(so)

    def _so_progress(self, so: dict[str, Any]) -> None:
        rows = so.get("items") or []
        qty = sum(flt(r.get("qty")) for r in rows)
        delivered = sum(min(flt(r.get("delivered_qty")), flt(r.get("qty"))) for r in rows)
        amount = sum(flt(r.get("amount")) for r in rows)
        billed = sum(min(flt(r.get("billed_amt")), flt(r.get("amount"))) for r in rows)
        so["per_delivered"] = flt(delivered / qty * 100, 3) if qty else 0.0
        so["per_billed"] = flt(billed / amount * 100, 3) if amount else 0.0
        so["delivery_status"] = _progress(so["per_delivered"], "Delivered")
        so["billing_status"] = _progress(so["per_billed"], "Billed")
        so["status"] = self.so_status(so)

    def _exchange_rate(self, from_c: str, to_c: str, on: str) -> float | None:
        best: tuple[str, float] | None = None
        for ce in self.store.scan("Currency Exchange", {"from_currency": from_c, "to_currency": to_c}):
            if (
                str(ce.get("date") or "") <= on
                and cint(ce.get("for_selling", 1))
                and (best is None or str(ce["date"]) > best[0])
            ):
                best = (str(ce["date"]), flt(ce.get("exchange_rate")))
        return best[1] if best else None

    def _customer_address(self, customer: str) -> tuple[str | None, str | None]:
        candidates = [
            a for a in self.store.linked("Address", "Customer", customer) if not cint(a.get("disabled"))
        ]
        if not candidates:
            return None, None
        candidates.sort(
            key=lambda a: (-cint(a.get("is_primary_address")), -cint(a.get("is_shipping_address")), a["name"])
        )
        a = candidates[0]
        lines = [str(a.get("address_line1") or "")]
        if a.get("address_line2"):
            lines.append(str(a["address_line2"]))
        city = ", ".join(str(x) for x in (a.get("city"), a.get("state")) if x)
        lines.append(f"{city} {a.get('pincode') or ''}".strip())
        display = "<br>\n".join(lines) + "<br>\n"
        if a.get("country") and a.get("country") != self.country:
            display += str(a["country"]).upper()
        return a["name"], display

    def _so_totals(self, doc: dict[str, Any], company_currency: str) -> None:
        conv = flt(doc.get("conversion_rate")) or 1.0
        total_qty = 0.0
        net_total = 0.0
        rows = doc.get("items") or []
        for row in rows:
            qty = flt(row.get("qty"))
            rate = flt(row.get("rate"), 2)
            if not rate and flt(row.get("price_list_rate")):
                rate = flt(row.get("price_list_rate"), 2)
            row["qty"] = qty
            row["rate"] = rate
            row["conversion_factor"] = flt(row.get("conversion_factor")) or 1.0
            row["stock_qty"] = flt(qty * row["conversion_factor"], 3)
            row["amount"] = flt(qty * rate, 2)
            row["net_rate"], row["net_amount"] = rate, row["amount"]
            row["base_rate"] = flt(rate * conv, 2)
            row["base_amount"] = flt(row["amount"] * conv, 2)
            row["base_net_rate"], row["base_net_amount"] = row["base_rate"], row["base_amount"]
            row["stock_uom_rate"] = flt(rate / row["conversion_factor"], 2)
            row["base_price_list_rate"] = flt(flt(row.get("price_list_rate")) * conv, 2)
            row["gross_profit"] = flt(row["amount"] - flt(row.get("valuation_rate")) * row["stock_qty"], 2)
            total_qty += qty
            net_total += row["amount"]
        net_total = flt(net_total, 2)
        doc["total_qty"] = total_qty
        doc["total"] = doc["net_total"] = net_total
        doc["base_total"] = doc["base_net_total"] = flt(net_total * conv, 2)
        running = net_total
        tax_sum = 0.0
        for tax in doc.get("taxes") or []:
            if tax.get("charge_type") not in ("Actual", None, ""):
                raise validation(
                    f"Row #{tax.get('idx') or 1}: charge type {tax.get('charge_type')} is not "
                    "supported by the simulator (only Actual)"
                )
            amount = flt(tax.get("tax_amount"), 2)
            tax["charge_type"] = "Actual"
            tax["tax_amount"] = amount
            tax["tax_amount_after_discount_amount"] = amount
            tax["base_tax_amount"] = tax["base_tax_amount_after_discount_amount"] = flt(amount * conv, 2)
            running = flt(running + amount, 2)
            tax["total"] = running
            tax["base_total"] = flt(running * conv, 2)
            tax["cost_center"] = tax.get("cost_center") or f"Main - {self.abbr}"
            tax["account_currency"] = tax.get("account_currency") or company_currency
            if not tax.get("description") and tax.get("account_head"):
                tax["description"] = str(tax["account_head"]).rsplit(" - ", 1)[0]
            detail: dict[str, list[float]] = {}
            for row in rows:
                share = (row["amount"] / net_total) * amount if net_total else 0.0
                key = str(row.get("item_code"))
                prev = detail.get(key, [0.0, 0.0])
                detail[key] = [0.0, prev[1] + share if key in detail else share]
            tax["item_wise_tax_detail"] = json.dumps(detail, separators=(",", ":"))
            tax_sum += amount
        doc["total_taxes_and_charges"] = flt(tax_sum, 2)
        doc["base_total_taxes_and_charges"] = flt(tax_sum * conv, 2)
        grand = flt(net_total + tax_sum, 2)
        doc["grand_total"] = grand
        doc["base_grand_total"] = flt(grand * conv, 2)
        doc["rounding_adjustment"] = doc["base_rounding_adjustment"] = 0.0
        if cint(doc.get("disable_rounded_total")):
            doc["rounded_total"] = doc["base_rounded_total"] = 0.0
        else:
            doc["rounded_total"] = grand
            doc["base_rounded_total"] = doc["base_grand_total"]
        cur = self.store.get("Currency", str(doc["currency"])) or {}
        base_cur = self.store.get("Currency", company_currency) or {}
        shown = doc["rounded_total"] or grand
        doc["in_words"] = money_in_words(shown, str(doc["currency"]), str(cur.get("fraction") or "Cent"))
        doc["base_in_words"] = money_in_words(
            doc["base_rounded_total"] or doc["base_grand_total"],
            company_currency,
            str(base_cur.get("fraction") or "Cent"),
        )
        doc["amount_eligible_for_commission"] = doc["base_net_total"]
        due = doc.get("transaction_date")
        pay = doc["rounded_total"] or grand
        base_pay = doc["base_rounded_total"] or doc["base_grand_total"]
        old_rows = doc.get("payment_schedule") or []
        row = self.new_child(
            "Payment Schedule",
            {
                "due_date": due,
                "invoice_portion": 100.0,
                "payment_amount": pay,
                "outstanding": pay,
                "base_payment_amount": base_pay,
                "base_outstanding": base_pay,
            },
        )
        if old_rows and old_rows[0].get("name"):
            row["name"], row["creation"] = old_rows[0]["name"], old_rows[0].get("creation")
        doc["payment_schedule"] = [row]

    def _auto_item_prices(self, doc: dict[str, Any], items: dict[str, dict[str, Any]]) -> None:
        pl = doc.get("selling_price_list")
        done: set[str] = set()
        for row in doc.get("items") or []:
            code = str(row.get("item_code"))
            if code in done or code not in items or not flt(row.get("rate")):
                continue
            done.add(code)
            if self.store.scan("Item Price", {"item_code": code, "price_list": str(pl)}):
                continue
            self.engine().insert(
                "Item Price",
                {
                    "item_code": code,
                    "price_list": pl,
                    "price_list_rate": row["rate"],
                    "uom": row.get("uom"),
                    "currency": doc.get("currency"),
                },
                quiet=True,
            )
            self.notes.append(
                {"message": f"Item Price added for {code} in Price List {pl}", "title": "Message", "alert": 1}
            )

    # -- status ------------------------------------------------------------------------------------------
    def so_status(self, doc: dict[str, Any]) -> str:
        ds = cint(doc.get("docstatus"))
        if ds == 0:
            return "Draft"
        if ds == 2:
            return "Cancelled"
        if doc.get("status") in ("Closed", "On Hold"):
            return str(doc["status"])
        delivered, billed = flt(doc.get("per_delivered")), flt(doc.get("per_billed"))
        skip = cint(doc.get("skip_delivery_note"))
        if (delivered >= 100 or skip) and billed >= 100:
            return "Completed"
        if delivered < 100 and billed < 100 and not skip:
            return "To Deliver and Bill"
        if delivered < 100 and not skip:
            return "To Deliver"
        return "To Bill"

    def update_status(self, name: str, status: str) -> None:
        doc = self.engine().load("Sales Order", name)
        if cint(doc["docstatus"]) != 1:
            raise validation("Only submitted Sales Orders can change status")
        if status in ("Closed", "On Hold"):
            doc["status"] = status
        else:
            doc["status"] = None
            doc["status"] = self.so_status(doc)
        doc["modified"] = self.now()
        self.store.update(doc)


def _progress(percent: float, word: str) -> str:
    if percent <= 0:
        return f"Not {word}"
    return f"Fully {word}" if percent >= 100 else f"Partly {word}"
