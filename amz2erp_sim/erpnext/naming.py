"""Naming rules of the simulated ERPNext: naming series, autoname by doctype, ``-1`` suffixes.

Everything here runs with the simulator's lock held and inside a store transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from amz2erp_sim.erpnext.documents import EngineBase
from amz2erp_sim.erpnext.errors import FrappeError
from amz2erp_sim.erpnext.meta import DEFAULTS, SIMPLE_FIELDS, SUBMITTABLE
from amz2erp_sim.erpnext.values import cint, hash_name


class NamingRules(EngineBase):
    """How a new document gets its name, as ERPNext v15 names it."""

    # -- naming ------------------------------------------------------------------------------------------
    def _series_name(self, series: str) -> str:
        now = datetime.now(timezone.utc)
        prefix, digits = "", 5
        for part in series.split("."):
            if part == "YYYY":
                prefix += f"{now.year:04d}"
            elif part == "YY":
                prefix += f"{now.year % 100:02d}"
            elif part == "MM":
                prefix += f"{now.month:02d}"
            elif part == "DD":
                prefix += f"{now.day:02d}"
            elif part and set(part) == {"#"}:
                digits = len(part)
            else:
                prefix += part
        return f"{prefix}{self.store.next_series(prefix):0{digits}d}"

    def _append_number(self, doctype: str, name: str) -> str:
        if not self.store.exists(doctype, name):
            return name
        like = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%"
        numbers = [0]
        for other in self.store.names_like(doctype, like):
            tail = other[len(name) + 1 :]
            if tail.isdigit():
                numbers.append(int(tail))
        return f"{name}-{max(numbers) + 1}"

    def autoname(self, doc: dict[str, Any]) -> None:
        dt = doc["doctype"]
        if doc.get("amended_from") and dt in SUBMITTABLE:
            orig = str(doc["amended_from"])
            am_id, prefix = 1, orig
            parent = self.store.get(dt, orig)
            if parent and parent.get("amended_from"):
                am_id = cint(orig.split("-")[-1]) + 1
                prefix = "-".join(orig.split("-")[:-1])
            doc["name"] = f"{prefix}-{am_id}"
            return
        simple = {
            "Item Group": "item_group_name",
            "Customer Group": "customer_group_name",
            "Territory": "territory_name",
            "Price List": "price_list_name",
            "Country": "country_name",
            "Currency": "currency_name",
            "Brand": "brand",
            "UOM": "uom_name",
            "Fiscal Year": "year",
            "Company": "company_name",
            "Item": "item_code",
        }
        if dt in simple:
            value = doc.get(simple[dt])
            doc["name"] = str(value).strip() if value not in (None, "") else None
        elif dt == "Warehouse":
            abbr = self._company_abbr(doc.get("company"))
            doc["name"] = f"{doc.get('warehouse_name')} - {abbr}" if doc.get("warehouse_name") else None
        elif dt == "Account":
            abbr = self._company_abbr(doc.get("company"))
            if doc.get("account_name"):
                num = f"{doc['account_number']} - " if doc.get("account_number") else ""
                doc["name"] = f"{num}{str(doc['account_name']).strip()} - {abbr}"
        elif dt == "Accounting Period":
            doc["name"] = f"{doc.get('period_name')} - {self._company_abbr(doc.get('company'))}"
        elif dt == "Custom Field":
            doc["name"] = f"{doc.get('dt')}-{doc.get('fieldname')}"
        elif dt == "Customer":
            name = doc.get("customer_name")
            if not name:
                raise FrappeError(
                    500,
                    "AttributeError",
                    None,
                    exc_source=True,
                    exception_full="AttributeError: 'NoneType' object has no attribute 'strip'",
                )
            name = str(name).strip()
            if self.store.exists("Customer", name):
                like = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + " - %"
                nums = [0] + [cint(n.rsplit(" ", 1)[-1]) for n in self.store.names_like("Customer", like)]
                new = f"{name} - {max(nums) + 1}"
                self.notes.append(
                    {
                        "message": f"Changed customer name to '{new}' as '{name}' already exists.",
                        "title": "Note",
                        "indicator": "yellow",
                    }
                )
                name = new
            doc["name"] = name
        elif dt == "Address":
            title = str(doc.get("address_title") or "").strip()
            doc["name"] = self._append_number("Address", f"{title}-{doc.get('address_type')}")
        elif dt == "Contact":
            full = " ".join(str(doc.get(f)) for f in ("first_name", "middle_name", "last_name") if doc.get(f))
            links = doc.get("links") or []
            base = f"{full}-{links[0].get('link_name')}" if links and links[0].get("link_name") else full
            doc["name"] = self._append_number("Contact", base)
        elif dt == "Currency Exchange":
            purpose = (
                "-Selling"
                if cint(doc.get("for_selling")) and not cint(doc.get("for_buying"))
                else ("-Buying" if cint(doc.get("for_buying")) and not cint(doc.get("for_selling")) else "")
            )
            doc["name"] = f"{doc.get('date')}-{doc.get('from_currency')}-{doc.get('to_currency')}{purpose}"
        elif dt in SUBMITTABLE:
            doc["name"] = self._series_name(
                str(
                    doc.get("naming_series")
                    or DEFAULTS.get(dt, {}).get(
                        "naming_series", SIMPLE_FIELDS.get(dt, {}).get("naming_series", "SIM-.#####")
                    )
                )
            )
        else:  # Item Price and anything else: hash
            doc["name"] = hash_name()

    def _company_abbr(self, company: Any) -> str:
        comp = self.store.get("Company", str(company)) if company else None
        return str(comp.get("abbr")) if comp else self.abbr
