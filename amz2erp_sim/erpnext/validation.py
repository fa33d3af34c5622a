"""Generic document validation of the simulated ERPNext: mandatory fields, links, selects, uniqueness and
the per-doctype checks of the master data (Item, Item Price, Customer, Contact, Address, Account).

Everything here runs with the simulator's lock held and inside a store transaction.
"""

from __future__ import annotations

from typing import Any

from amz2erp_sim.erpnext import invoice as erpnext_invoice
from amz2erp_sim.erpnext import journal as erpnext_journal
from amz2erp_sim.erpnext import stock as erpnext_stock
from amz2erp_sim.erpnext.errors import (
    FrappeError,
    link_error,
    mandatory,
    plain_message,
    validation,
)
from amz2erp_sim.erpnext.meta import DOC_TABLES, LINKS, MANDATORY, SELECTS
from amz2erp_sim.erpnext.naming import NamingRules
from amz2erp_sim.erpnext.values import cint, getdate


class ValidationRules(NamingRules):
    """Validation of any doctype except the Sales Order's own totals."""

    def validate_mandatory(self, doc: dict[str, Any]) -> None:
        dt = doc["doctype"]
        reqd = list(MANDATORY.get(dt, []))
        reqd += [f for f, cf in self.custom_fields(dt).items() if cint(cf.get("reqd"))]
        for f in reqd:
            if self._missing(doc.get(f)):
                raise mandatory(dt, doc["name"], f, self.label(dt, f))
        for table, child_dt in DOC_TABLES.get(dt, {}).items():
            for row in doc.get(table) or []:
                for f in MANDATORY.get(child_dt or "", []):
                    if self._missing(row.get(f)):
                        raise mandatory(dt, doc["name"], f, self.label(dt, f))

    def validate_links(self, doc: dict[str, Any]) -> None:
        dt = doc["doctype"]
        for f, target in LINKS.get(dt, {}).items():
            v = doc.get(f)
            if v not in (None, "") and not self.store.exists(target, str(v)):
                raise link_error(self.label(dt, f), v)
        for f, cf in self.custom_fields(dt).items():
            if (
                cf.get("fieldtype") == "Link"
                and cf.get("options")
                and doc.get(f)
                and not self.store.exists(str(cf["options"]), str(doc[f]))
            ):
                raise link_error(self.label(dt, f), doc[f])
        for table, child_dt in DOC_TABLES.get(dt, {}).items():
            for row in doc.get(table) or []:
                for f, target in LINKS.get(child_dt or "", {}).items():
                    v = row.get(f)
                    if v not in (None, "") and not self.store.exists(target, str(v)):
                        raise link_error(f"Row #{row.get('idx')}: {self.label(child_dt or '', f)}", v)
                if child_dt == "Dynamic Link":
                    ldt, lname = row.get("link_doctype"), row.get("link_name")
                    if ldt and lname and not self.store.exists(str(ldt), str(lname)):
                        raise link_error(f"Row #{row.get('idx')}: Link Name", lname)

    def validate_selects(self, doc: dict[str, Any]) -> None:
        dt = doc["doctype"]
        for f, options in SELECTS.get(dt, {}).items():
            v = doc.get(f)
            if v not in (None, "") and v not in options:
                opts = ", ".join(f'"{o}"' for o in options if o)
                raise validation(f' {self.label(dt, f)} cannot be "{v}". It should be one of {opts}')

    def validate_unique(self, doc: dict[str, Any]) -> None:
        dt = doc["doctype"]
        for f, cf in self.custom_fields(dt).items():
            v = doc.get(f)
            if cint(cf.get("unique")) and v not in (None, ""):
                for other in self.store.scan(dt, {f: v} if isinstance(v, str) else None):
                    if other["name"] != doc["name"] and other.get(f) == v:
                        raise FrappeError(
                            417,
                            "UniqueValidationError",
                            [plain_message(f"{self.label(dt, f)} must be unique")],
                            exception=(
                                f"('{dt}', '{doc['name']}', IntegrityError(1062, \"Duplicate entry "
                                f"'{v}' for key '{f}'\"))"
                            ),
                        )

    # -- doctype controllers --------------------------------------------------------------------------
    def before_validate(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        hook = getattr(self, "_validate_" + doc["doctype"].lower().replace(" ", "_"), None)
        if hook:
            hook(doc, old)

    def _validate_item(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        if not doc.get("item_name"):
            doc["item_name"] = doc.get("item_code")
        if not doc.get("description"):
            doc["description"] = doc.get("item_name")
        if not doc.get("uoms") and doc.get("stock_uom"):
            doc["uoms"] = [
                self.new_child("UOM Conversion Detail", {"uom": doc["stock_uom"], "conversion_factor": 1.0})
            ]
        if not doc.get("item_defaults"):
            wh = f"Stores - {self.abbr}"
            doc["item_defaults"] = [
                self.new_child(
                    "Item Default",
                    {
                        "company": self.company,
                        "default_warehouse": wh if self.store.exists("Warehouse", wh) else None,
                    },
                )
            ]

    def _validate_item_price(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        code = doc.get("item_code")
        item = self.store.get("Item", str(code)) if code else None
        if code and not item:
            raise link_error("Item Code", code)
        pl = self.store.get("Price List", str(doc.get("price_list"))) if doc.get("price_list") else None
        if item:
            doc["uom"] = doc.get("uom") or item.get("stock_uom")
            doc["item_name"] = item.get("item_name")
            doc["item_description"] = item.get("description")
        if pl:
            doc["buying"], doc["selling"] = pl.get("buying", 0), pl.get("selling", 0)
            doc["currency"] = doc.get("currency") or pl.get("currency")
        doc["valid_from"] = doc.get("valid_from") or self.today()
        for other in self.store.scan("Item Price", {"item_code": str(code)} if code else None):
            if other["name"] == doc["name"]:
                continue
            same = all(
                other.get(f) == doc.get(f)
                for f in ("price_list", "uom", "customer", "supplier", "batch_no", "currency")
            )
            if same and cint(other.get("packing_unit")) == cint(doc.get("packing_unit")):
                a_from, a_to = getdate(other.get("valid_from")), getdate(other.get("valid_upto"))
                b_from, b_to = getdate(doc.get("valid_from")), getdate(doc.get("valid_upto"))
                if (a_to is None or b_from is None or b_from <= a_to) and (
                    b_to is None or a_from is None or a_from <= b_to
                ):
                    raise FrappeError(
                        417,
                        "ItemPriceDuplicateItem",
                        (
                            "Item Price appears multiple times based on Price List, Supplier/Customer, "
                            "Currency, "
                            "Item, Batch, UOM, Qty, and Dates."
                        ),
                        exc_source=True,
                    )

    def _validate_customer(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        doc["customer_name"] = str(doc.get("customer_name") or "").strip() or doc.get("customer_name")

    def _validate_contact(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        doc["full_name"] = " ".join(
            str(doc.get(f)) for f in ("first_name", "middle_name", "last_name") if doc.get(f)
        )
        emails = doc.get("email_ids") or []
        primary = next((e for e in emails if cint(e.get("is_primary"))), emails[0] if emails else None)
        doc["email_id"] = primary.get("email_id") if primary else doc.get("email_id")
        phones = doc.get("phone_nos") or []
        ph = next((p for p in phones if cint(p.get("is_primary_phone"))), None)
        doc["phone"] = ph.get("phone") if ph else doc.get("phone")
        mob = next((p for p in phones if cint(p.get("is_primary_mobile_no"))), None)
        doc["mobile_no"] = mob.get("phone") if mob else (doc.get("mobile_no") or "")
        self._link_titles(doc)

    def _validate_address(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._link_titles(doc)

    def _link_titles(self, doc: dict[str, Any]) -> None:
        for row in doc.get("links") or []:
            if row.get("link_name") and not row.get("link_title"):
                row["link_title"] = row["link_name"]

    def _validate_account(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        company = self.store.get("Company", str(doc.get("company"))) if doc.get("company") else None
        doc["account_currency"] = doc.get("account_currency") or (company or {}).get("default_currency")
        parent_name = doc.get("parent_account")
        if parent_name:
            parent = self.store.get("Account", str(parent_name))
            if parent is None:
                raise link_error("Parent Account", parent_name)
            if not cint(parent.get("is_group")):
                raise validation(
                    f"Account {doc['name']}: Parent account {parent_name} can not be a ledger",
                    exc_source=True,
                )
            doc["root_type"] = parent.get("root_type")
            doc["report_type"] = parent.get("report_type")
        if not doc.get("report_type") and doc.get("root_type"):
            doc["report_type"] = (
                "Balance Sheet" if doc["root_type"] in ("Asset", "Liability", "Equity") else "Profit and Loss"
            )
        doc["old_parent"] = parent_name or ""
        if old is None and not doc.get("lft"):
            counter = cint(self.store.get_meta("account_lft") or 0) + 2
            self.store.set_meta("account_lft", str(counter))
            doc["lft"], doc["rgt"] = counter - 1, counter

    def _validate_custom_field(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is None and self.store.exists("Custom Field", doc["name"]):
            raise validation(
                f"A field with the name <strong>{doc.get('fieldname')}</strong> already exists in "
                f"{doc.get('dt')}"
            )
        if not doc.get("label"):
            doc["label"] = str(doc.get("fieldname") or "").replace("_", " ").title()
        if old is None and not doc.get("idx"):
            doc["idx"] = len(self.store.scan("Custom Field")) + 1

    def _validate_journal_entry(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        erpnext_journal.validate(self.engine(), doc)

    def _validate_delivery_note(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        erpnext_invoice.validate_delivery_note(self.engine(), doc, old)

    def _validate_sales_invoice(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        erpnext_invoice.validate_sales_invoice(self.engine(), doc, old)

    def _validate_stock_entry(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        erpnext_stock.validate_stock_entry(self.engine(), doc, old)
