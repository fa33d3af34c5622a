"""The ERPNext engine's shared state and document basics: store, company, timestamps, field metadata,
new documents and child rows.

Everything here runs with the simulator's lock held and inside a store transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

from amz2erp_sim.erpnext.errors import FrappeError
from amz2erp_sim.erpnext.meta import DEFAULTS, DOC_FIELDS, DOC_TABLES, DOCTYPES, LABELS, META_FIELDS
from amz2erp_sim.erpnext.store import Store
from amz2erp_sim.erpnext.values import cint, hash_name

if TYPE_CHECKING:
    from amz2erp_sim.erpnext.engine import Engine


class EngineBase:
    """What every rule layer shares: the store, the company, timestamps and the field metadata."""

    def __init__(
        self,
        store: Store,
        *,
        company: str,
        abbr: str,
        currency: str,
        country: str,
        site_url: Callable[[], str],
        today: date | None = None,
    ) -> None:
        self.store = store
        self._today = today
        self.company = company
        self.abbr = abbr
        self.currency = currency
        self.country = country
        self.site_url = site_url
        self._last_ts = datetime(2000, 1, 1)
        self._ts_lock = threading.Lock()
        self.notes: list[dict[str, Any]] = []
        self._cf_cache: dict[str, dict[str, dict[str, Any]]] = {}
        store.on_rollback.append(self._cf_cache.clear)
        for cf in self.store.scan("Custom Field"):
            self.store.ensure_index(str(cf.get("fieldname")))

    def engine(self) -> Engine:
        """This object as the whole engine: an earlier rule layer calling a later one (a Sales Order inserts its
        Item Prices, a Journal Entry's rules take the engine) goes through here."""
        return cast("Engine", self)

    # -- time ------------------------------------------------------------------------------------------
    def now(self) -> str:
        with self._ts_lock:
            ts = datetime.now(timezone.utc).replace(tzinfo=None)
            if ts <= self._last_ts:
                ts = self._last_ts + timedelta(microseconds=1)
            self._last_ts = ts
            return ts.strftime("%Y-%m-%d %H:%M:%S.%f")

    def today(self) -> str:
        """The site's date: today in UTC, or a pinned date (replaying recordings made on a given day)."""
        return (self._today or datetime.now(timezone.utc).date()).isoformat()

    # -- meta ------------------------------------------------------------------------------------------
    def custom_fields(self, doctype: str) -> dict[str, dict[str, Any]]:
        cached = self._cf_cache.get(doctype)
        if cached is None:
            cached = {cf["fieldname"]: cf for cf in self.store.scan("Custom Field", {"dt": doctype})}
            self._cf_cache[doctype] = cached
        return cached

    def known_fields(self, doctype: str) -> set[str]:
        fields = set(DOC_FIELDS.get(doctype, {})) | set(META_FIELDS) | {"doctype"}
        fields |= set(DOC_TABLES.get(doctype, {}))
        fields |= set(self.custom_fields(doctype))
        return fields

    def label(self, doctype: str, field: str) -> str:
        cf = self.custom_fields(doctype).get(field)
        if cf and cf.get("label"):
            return str(cf["label"])
        return LABELS.get(field, field.replace("_", " ").title())

    def check_doctype(self, doctype: str) -> None:
        if doctype not in DOCTYPES:
            module = doctype.lower().replace(" ", "_")
            raise FrappeError(
                500,
                "ImportError",
                None,
                exception_full=f"Error: No module named 'frappe.core.doctype.{module}'",
            )

    # -- building docs --------------------------------------------------------------------------------
    def _clean(self, doctype: str, data: dict[str, Any], known: set[str] | None = None) -> dict[str, Any]:
        known = known if known is not None else self.known_fields(doctype)
        return {k: v for k, v in data.items() if k in known}

    def new_doc(self, doctype: str, data: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": None,
            "owner": "Administrator",
            "creation": None,
            "modified": None,
            "modified_by": "Administrator",
            "docstatus": 0,
            "idx": 0,
        }
        doc.update(DOC_FIELDS.get(doctype, {}))  # scalar defaults only
        for cf in self.custom_fields(doctype).values():
            doc[cf["fieldname"]] = cf.get("default") or None
        doc.update(DEFAULTS.get(doctype, {}))
        doc["doctype"] = doctype
        for table in DOC_TABLES.get(doctype, {}):
            doc[table] = []
        body = self._clean(doctype, data)
        for table, child_dt in DOC_TABLES.get(doctype, {}).items():
            rows = body.pop(table, None)
            if rows:
                doc[table] = [self.new_child(child_dt or table, r) for r in rows if isinstance(r, dict)]
        for k, v in body.items():
            if k not in ("name", "owner", "creation", "modified", "modified_by", "idx"):
                doc[k] = v
        doc["docstatus"] = cint(data.get("docstatus"))
        return doc

    def new_child(self, child_dt: str, data: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": None,
            "owner": "Administrator",
            "creation": None,
            "modified": None,
            "modified_by": "Administrator",
            "docstatus": 0,
            "idx": 0,
        }
        row.update(DOC_FIELDS.get(child_dt, {}))
        custom = self.custom_fields(child_dt)
        for cf in custom.values():
            row[cf["fieldname"]] = cf.get("default") or None
        row.update(DEFAULTS.get(child_dt, {}))
        known = set(DOC_FIELDS.get(child_dt, {})) | set(custom) | {"name"}
        for k, v in data.items():
            if k in known:
                row[k] = v
        row["doctype"] = child_dt
        return row

    def _finish_children(self, doc: dict[str, Any], ts: str) -> None:
        for table in DOC_TABLES.get(doc["doctype"], {}):
            for i, row in enumerate(doc.get(table) or [], start=1):
                if not row.get("name"):
                    row["name"] = hash_name()
                    row["creation"] = ts
                row.setdefault("owner", "Administrator")
                row["creation"] = row.get("creation") or ts
                row["modified"] = ts
                row["modified_by"] = "Administrator"
                row["docstatus"] = doc["docstatus"]
                row["idx"] = i
                row["parent"] = doc["name"]
                row["parentfield"] = table
                row["parenttype"] = doc["doctype"]

    # -- generic validation ------------------------------------------------------------------------------
    def _missing(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip()) or value == []
