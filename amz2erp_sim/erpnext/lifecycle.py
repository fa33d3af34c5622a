"""Docstatus lifecycle of the simulated ERPNext: insert, load, update (drafts and allowed-on-submit
fields), submit, cancel and delete with link checks.

Everything here runs with the simulator's lock held and inside a store transaction.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from amz2erp_sim.erpnext import invoice as erpnext_invoice
from amz2erp_sim.erpnext import journal as erpnext_journal
from amz2erp_sim.erpnext.errors import (
    FrappeError,
    does_not_exist,
    duplicate_entry,
    error_message,
    mandatory,
    timestamp_mismatch,
    validation,
)
from amz2erp_sim.erpnext.meta import (
    _IGNORED_ON_COMPARE,
    CHILD_META,
    DOC_FIELDS,
    DOC_TABLES,
    SO_ALLOW_ON_SUBMIT,
    SUBMITTABLE,
)
from amz2erp_sim.erpnext.sales_order import SalesOrderRules
from amz2erp_sim.erpnext.values import cint


class Lifecycle(SalesOrderRules):
    """Insert, update, submit, cancel, delete: the transitions the REST API exposes."""

    # -- operations ---------------------------------------------------------------------------------------
    def _validate_all(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.before_validate(doc, old)
        self.validate_mandatory(doc)
        self.validate_links(doc)
        self.validate_selects(doc)

    def insert(
        self, doctype: str, data: dict[str, Any], *, quiet: bool = False, raw: bool = False
    ) -> dict[str, Any]:
        self.check_doctype(doctype)
        doc = self.new_doc(doctype, data)
        submit = doc["docstatus"] == 1 and doctype in SUBMITTABLE
        if doc["docstatus"] == 2 or (doc["docstatus"] == 1 and doctype not in SUBMITTABLE):
            doc["docstatus"] = 0
        if raw:  # seeding / "as another tool left it": name and fields as given, no validation
            doc.update({k: v for k, v in data.items() if k not in DOC_TABLES.get(doctype, {})})
            if not doc.get("name"):
                self.autoname(doc)
        else:
            self.autoname(doc)
            if not doc.get("name"):
                raise mandatory(doctype, "None", "name", "Name")
            self._validate_all(doc, None)
            if doctype == "Sales Order":  # set_status skips new docs, also when inserted submitted:
                doc["status"] = data.get("status") or "Draft"  # what the payload says is stored
            self.validate_unique(doc)
        if self.store.exists(doctype, doc["name"]):
            raise duplicate_entry(doctype, doc["name"])
        ts = self.now()
        doc["creation"] = doc["modified"] = ts
        if submit:
            doc["docstatus"] = 1
        self._finish_children(doc, ts)
        self.store.insert(doc)
        if submit and not raw:
            self._on_submit(doc, 1)
        if doctype == "Custom Field":
            self._cf_cache.clear()
            self.store.ensure_index(str(doc.get("fieldname")))
            self._add_custom_column(doc)
        return doc

    def _add_custom_column(self, cf: dict[str, Any]) -> None:
        target = str(cf.get("dt"))
        for other in self.store.scan(target):
            if cf["fieldname"] not in other:
                other[cf["fieldname"]] = None
                self.store.update(other)

    def load(self, doctype: str, name: str) -> dict[str, Any]:
        self.check_doctype(doctype)
        doc = self.store.get(doctype, name)
        if doc is None:
            raise does_not_exist(doctype, name)
        return doc

    def update(self, doctype: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        old = self.load(doctype, name)
        if doctype == "Custom Field":
            self._cf_cache.clear()
        now = self.now()
        if data.get("modified") and str(data["modified"]) != str(old.get("modified")):
            raise timestamp_mismatch(str(old.get("modified")), now)
        target = cint(data["docstatus"]) if data.get("docstatus") is not None else cint(old["docstatus"])
        current = cint(old["docstatus"])
        if doctype not in SUBMITTABLE:
            target = 0
        if current == 2:
            raise validation("Cannot edit cancelled document")
        if current == 1 and target == 0:
            raise self._transition(1, 0)
        if current == 0 and target == 2:
            raise self._transition(0, 2)
        if current == 1 and target == 2:
            return self.cancel(doctype, name)
        body = self._clean(doctype, data)
        if current == 1:
            return self._update_after_submit(old, body, now)
        doc = copy.deepcopy(old)
        for k, v in body.items():
            if k in _IGNORED_ON_COMPARE:
                continue
            child_dt = DOC_TABLES.get(doctype, {}).get(k, "missing")
            if child_dt != "missing":
                by_name = {r.get("name"): r for r in doc.get(k) or []}
                rows = []
                for r in v or []:
                    if not isinstance(r, dict):
                        continue
                    existing = by_name.get(r.get("name")) if r.get("name") else None
                    if existing:
                        merged = dict(existing)
                        child_known = set(DOC_FIELDS.get(child_dt or "", {})) | set(
                            self.custom_fields(child_dt or "")
                        )
                        merged.update({kk: vv for kk, vv in r.items() if kk in existing or kk in child_known})
                        rows.append(merged)
                    else:
                        rows.append(self.new_child(child_dt or k, r))
                doc[k] = rows
            else:
                doc[k] = v
        self._validate_all(doc, old)
        self.validate_unique(doc)
        if target == 1:
            doc["docstatus"] = 1
            if current == 0:
                self._on_submit(doc, 1)
            if doctype == "Sales Order":
                doc["status"] = self.so_status(doc)
            elif doctype == "Sales Invoice":
                doc["status"] = erpnext_invoice.si_status(self.engine(), doc)
            elif doctype == "Delivery Note":
                doc["status"] = erpnext_invoice.dn_status(doc)
        doc["modified"] = now
        self._finish_children(doc, now)
        self.store.update(doc)
        return doc

    def _transition(self, a: int, b: int) -> FrappeError:
        names = {0: "Draft", 1: "Submitted", 2: "Cancelled"}
        return FrappeError(
            417,
            "DocstatusTransitionError",
            None,
            exception=f"Cannot change docstatus from {a} ({names[a]}) to {b} ({names[b]})",
        )

    def _update_after_submit(self, old: dict[str, Any], body: dict[str, Any], now: str) -> dict[str, Any]:
        dt = old["doctype"]
        allowed = set(SO_ALLOW_ON_SUBMIT) | {
            f for f, cf in self.custom_fields(dt).items() if cint(cf.get("allow_on_submit"))
        }
        doc = copy.deepcopy(old)
        for k, v in body.items():
            if k in _IGNORED_ON_COMPARE or k in DOC_TABLES.get(dt, {}):
                continue
            if k not in allowed and not _same(old.get(k), v):
                raise _after_submit(self.label(dt, k), old.get(k), v)
            doc[k] = v
        for table in DOC_TABLES.get(dt, {}):
            if table in body:
                new_rows = [r for r in body[table] or [] if isinstance(r, dict)]
                old_rows = old.get(table) or []
                if len(new_rows) != len(old_rows):
                    raise _after_submit(self.label(dt, table), None, None)
                for o, n in zip(old_rows, new_rows, strict=True):
                    for kk, vv in n.items():
                        if kk in _IGNORED_ON_COMPARE or kk in CHILD_META or kk not in o:
                            continue
                        if kk not in ("delivery_date",) and not _same(o.get(kk), vv):
                            raise _after_submit(self.label(dt, kk), o.get(kk), vv)
                        o[kk] = vv
                doc[table] = old_rows
        if dt == "Sales Order":
            dates = [str(r["delivery_date"]) for r in doc.get("items") or [] if r.get("delivery_date")]
            if dates:
                doc["delivery_date"] = max(dates)
            if doc.get("po_no") and doc.get("po_no") != old.get("po_no"):
                for other in self.store.scan("Sales Order", {"po_no": str(doc["po_no"])}):
                    if (
                        other["name"] != doc["name"]
                        and other.get("customer") == doc.get("customer")
                        and cint(other.get("docstatus")) < 2
                    ):
                        raise validation(
                            f"Sales Order <strong>{other['name']}</strong> already exists against "
                            f"Customer's Purchase Order <strong>{doc['po_no']}</strong>.",
                            exc_source=True,
                        )
        doc["modified"] = now
        self._finish_children(doc, now)
        self.store.update(doc)
        return doc

    def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        doctype, name = str(data.get("doctype")), str(data.get("name"))
        old = self.load(doctype, name)
        now = self.now()
        if str(data.get("modified")) != str(old.get("modified")):
            raise timestamp_mismatch(str(old.get("modified")), now)
        if cint(old["docstatus"]) != 0:
            raise self._transition(cint(old["docstatus"]), 1)
        body = dict(data)
        body["docstatus"] = 1
        return self.update(doctype, name, body)

    def cancel(self, doctype: str, name: str) -> dict[str, Any]:
        doc = self.load(doctype, name)
        if cint(doc["docstatus"]) != 1:
            raise self._transition(cint(doc["docstatus"]), 2)
        if doctype == "Sales Order":
            erpnext_invoice.check_so_cancel(self.engine(), doc)
            for ref_dt, field in (("Delivery Note", "against_sales_order"), ("Sales Invoice", "sales_order")):
                for other in self.store.scan(ref_dt):
                    if cint(other.get("docstatus")) == 1 and any(
                        r.get(field) == name for r in other.get("items") or []
                    ):
                        raise self._link_exists(doctype, name, ref_dt, other["name"])
        self._on_submit(doc, -1)
        doc["docstatus"] = 2
        if doctype not in (erpnext_journal.JE, "Stock Entry"):  # neither has a status
            doc["status"] = "Cancelled"
        if doctype == "Sales Invoice":
            doc["outstanding_amount"] = 0.0
        now = self.now()
        doc["modified"] = now
        self._finish_children(doc, now)
        self.store.update(doc)
        return doc

    def _link_exists(
        self,
        dt: str,
        name: str,
        ref_dt: str,
        ref_name: str,
        hint: str | None = None,
        exc_source: bool = False,
    ) -> FrappeError:
        url = self.site_url()
        msg = (
            f'Cannot delete or cancel because {dt} <a href="{url}/app/{_slug(dt)}/{quote(name)}">{name}</a> '
            f'is linked with {ref_dt} <a href="{url}/app/{_slug(ref_dt)}/{quote(ref_name)}">{ref_name}</a> '
        )
        messages = [error_message(msg)]
        if hint:
            messages.append(error_message(hint))
        return FrappeError(417, "LinkExistsError", messages, exc_source=exc_source)

    def delete(self, doctype: str, name: str) -> None:
        doc = self.load(doctype, name)
        if cint(doc.get("docstatus")) == 1:
            raise validation(
                f"{doctype} {name}: Submitted Record cannot be deleted. You must <a href='https://docs.frappe.io"
                "/erpnext/user/manual/en/delete-submitted-document' target='_blank'> Cancel </a> it first."
            )
        if doctype in SUBMITTABLE:
            for other in self.store.scan(doctype, {"amended_from": name}):
                raise self._link_exists(doctype, name, doctype, other["name"])
        if doctype == erpnext_journal.JE:
            erpnext_journal.before_delete(self.engine(), doc)
        if doctype == "Sales Order":
            for ref_dt, field in (("Delivery Note", "against_sales_order"), ("Sales Invoice", "sales_order")):
                for other in self.store.scan(ref_dt):
                    if any(r.get(field) == name for r in other.get("items") or []):
                        raise self._link_exists(doctype, name, ref_dt, other["name"])
        if doctype == "Item":
            for ref_dt in ("Sales Order", "Delivery Note", "Sales Invoice"):
                for other in reversed(self.store.scan(ref_dt)):
                    if any(r.get("item_code") == name for r in other.get("items") or []):
                        raise self._link_exists(
                            "Item",
                            name,
                            ref_dt,
                            other["name"],
                            "You can disable this Item instead of deleting it.",
                        )
        if doctype == "Customer":
            for ref_dt in ("Sales Order", "Delivery Note", "Sales Invoice"):
                for other in self.store.scan(ref_dt, {"customer": name}):
                    addr = other.get("customer_address")
                    address = self.store.get("Address", str(addr)) if addr else None
                    if address and any(link.get("link_name") == name for link in address.get("links") or []):
                        raise self._link_exists(
                            "Address",
                            str(addr),
                            ref_dt,
                            other["name"],
                            "You can disable this Address instead of deleting it.",
                            exc_source=True,
                        )
                    raise self._link_exists(
                        "Customer",
                        name,
                        ref_dt,
                        other["name"],
                        "You can disable this Customer instead of deleting it.",
                    )
        if doctype == "Custom Field":
            self._cf_cache.clear()
            for other in self.store.scan(str(doc.get("dt"))):
                if doc.get("fieldname") in other:
                    other.pop(str(doc["fieldname"]))
                    self.store.update(other)
        self.store.delete(doctype, name)


def _after_submit(label: str, old: Any, new: Any) -> FrappeError:
    text = f" Not allowed to change <strong>{label}</strong> after submission"
    if old is not None or new is not None:
        text += f" from <strong>{old}</strong> to <strong>{new}</strong>"
    return FrappeError(417, "UpdateAfterSubmitError", [error_message(text, "Cannot Update After Submit")])


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if a in (None, "") and b in (None, ""):
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _slug(doctype: str) -> str:
    return doctype.lower().replace(" ", "-")
