"""Document rules of the ERPNext simulator: fields, naming, validation, totals, docstatus, links.

Everything here runs with the simulator's lock held and inside a store transaction.
"""

from __future__ import annotations

import copy
import json
import random
import string
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import quote

from amz2erp_sim.erpnext import journal as erpnext_journal
from amz2erp_sim.erpnext.errors import (
    FrappeError,
    does_not_exist,
    duplicate_entry,
    error_message,
    link_error,
    mandatory,
    plain_message,
    timestamp_mismatch,
    validation,
)
from amz2erp_sim.erpnext.schema import FIELDS, TABLES
from amz2erp_sim.erpnext.store import Store

META_FIELDS = ("name", "owner", "creation", "modified", "modified_by", "docstatus", "idx")
CHILD_META = ("parent", "parentfield", "parenttype")
SUBMITTABLE = {"Sales Order", "Delivery Note", "Sales Invoice"}

_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "Customer": {
        "customer_primary_address": None,
        "customer_primary_contact": None,
        "mobile_no": None,
        "email_id": None,
        "tax_id": None,
        "default_currency": None,
        "default_price_list": None,
        "customer_details": None,
        "website": None,
        "gender": None,
        "image": None,
        "industry": None,
        "market_segment": None,
        "account_manager": None,
        "payment_terms": None,
        "represents_company": None,
        "lead_name": None,
        "opportunity_name": None,
        "primary_address": None,
        "default_sales_partner": None,
    },
    "Address": {
        "address_line2": None,
        "county": None,
        "email_id": None,
        "phone": None,
        "fax": None,
        "is_primary_address": 0,
    },
    "Contact": {
        "middle_name": None,
        "salutation": None,
        "designation": None,
        "gender": None,
        "company_name": None,
        "address": None,
        "user": None,
        "department": None,
    },
    "Item": {
        "brand": None,
        "image": None,
        "country_of_origin": None,
        "customs_tariff_number": None,
        "weight_uom": None,
        "sales_uom": None,
        "purchase_uom": None,
        "variant_of": None,
        "default_bom": None,
    },
    "Item Price": {
        "customer": None,
        "supplier": None,
        "batch_no": None,
        "valid_upto": None,
        "note": None,
        "brand": None,
        "item_group": None,
        "reference": None,
    },
    "Account": {"parent_account": None, "account_number": None},
    "Sales Order Item": {
        "prevdoc_docname": None,
        "quotation_item": None,
        "brand": None,
        "item_tax_template": None,
        "customer_item_code": None,
    },
    "Dynamic Link": {"link_title": None},
    "Item Default": {
        "default_price_list": None,
        "buying_cost_center": None,
        "selling_cost_center": None,
        "expense_account": None,
        "income_account": None,
    },
}

_SIMPLE_FIELDS: dict[str, dict[str, Any]] = {
    "Warehouse": {
        "warehouse_name": "",
        "is_group": 0,
        "parent_warehouse": None,
        "company": None,
        "account": None,
        "disabled": 0,
        "warehouse_type": None,
        "lft": 0,
        "rgt": 0,
        "old_parent": None,
        "address_line_1": None,
        "city": None,
        "state": None,
        "pin": None,
    },
    "Price List": {
        "price_list_name": "",
        "currency": None,
        "buying": 0,
        "selling": 0,
        "enabled": 1,
        "price_not_uom_dependent": 0,
    },
    "Item Group": {
        "item_group_name": "",
        "parent_item_group": "",
        "is_group": 0,
        "lft": 0,
        "rgt": 0,
        "old_parent": "",
        "image": None,
    },
    "Customer Group": {
        "customer_group_name": "",
        "parent_customer_group": "",
        "is_group": 0,
        "default_price_list": None,
        "lft": 0,
        "rgt": 0,
        "old_parent": "",
    },
    "Territory": {
        "territory_name": "",
        "parent_territory": "",
        "is_group": 0,
        "territory_manager": None,
        "lft": 0,
        "rgt": 0,
        "old_parent": "",
    },
    "Country": {
        "country_name": "",
        "code": None,
        "date_format": None,
        "time_format": None,
        "time_zones": None,
    },
    "Currency": {
        "currency_name": "",
        "enabled": 0,
        "fraction": None,
        "fraction_units": 0,
        "smallest_currency_fraction_value": 0.0,
        "symbol": None,
        "symbol_on_right": 0,
        "number_format": None,
    },
    "Currency Exchange": {
        "date": None,
        "from_currency": None,
        "to_currency": None,
        "exchange_rate": 0.0,
        "for_buying": 1,
        "for_selling": 1,
    },
    "Brand": {"brand": "", "image": None, "description": None},
    "UOM": {"uom_name": "", "must_be_whole_number": 0, "enabled": 1},
    "Fiscal Year": {
        "year": "",
        "year_start_date": None,
        "year_end_date": None,
        "disabled": 0,
        "is_short_year": 0,
        "auto_created": 0,
    },
    "Delivery Note": {
        "naming_series": "MAT-DN-.YYYY.-",
        "title": "{customer_name}",
        "customer": None,
        "customer_name": None,
        "company": None,
        "posting_date": None,
        "posting_time": None,
        "currency": None,
        "conversion_rate": 1.0,
        "selling_price_list": None,
        "status": "Draft",
        "total_qty": 0.0,
        "total": 0.0,
        "net_total": 0.0,
        "grand_total": 0.0,
        "base_grand_total": 0.0,
        "is_return": 0,
        "per_billed": 0.0,
        "amended_from": None,
        "po_no": None,
    },
    "Delivery Note Item": {
        "item_code": None,
        "item_name": None,
        "description": None,
        "qty": 0.0,
        "rate": 0.0,
        "amount": 0.0,
        "warehouse": None,
        "against_sales_order": None,
        "so_detail": None,
        "uom": None,
        "stock_uom": None,
        "conversion_factor": 1.0,
    },
    "Sales Invoice": {
        "naming_series": "ACC-SINV-.YYYY.-",
        "title": "{customer_name}",
        "customer": None,
        "customer_name": None,
        "company": None,
        "posting_date": None,
        "due_date": None,
        "currency": None,
        "conversion_rate": 1.0,
        "selling_price_list": None,
        "status": "Draft",
        "total_qty": 0.0,
        "total": 0.0,
        "net_total": 0.0,
        "grand_total": 0.0,
        "base_grand_total": 0.0,
        "outstanding_amount": 0.0,
        "is_return": 0,
        "update_stock": 0,
        "amended_from": None,
        "po_no": None,
    },
    "Sales Invoice Item": {
        "item_code": None,
        "item_name": None,
        "description": None,
        "qty": 0.0,
        "rate": 0.0,
        "amount": 0.0,
        "warehouse": None,
        "sales_order": None,
        "so_detail": None,
        "delivery_note": None,
        "uom": None,
        "income_account": None,
        "cost_center": None,
    },
    "Fiscal Year Company": {"company": None},
}

_SIMPLE_TABLES: dict[str, dict[str, str | None]] = {
    "Delivery Note": {"items": "Delivery Note Item"},
    "Sales Invoice": {"items": "Sales Invoice Item"},
    "Fiscal Year": {"companies": "Fiscal Year Company"},
}


def _build_fields() -> dict[str, dict[str, Any]]:
    out = {dt: dict(f) for dt, f in FIELDS.items()}
    for dt, extra in _EXTRA_FIELDS.items():
        for k, v in extra.items():
            out.setdefault(dt, {}).setdefault(k, v)
    out.update({dt: dict(f) for dt, f in _SIMPLE_FIELDS.items()})
    return out


DOC_FIELDS = _build_fields()
DOC_TABLES: dict[str, dict[str, str | None]] = {**TABLES, **_SIMPLE_TABLES}
DOCTYPES = {
    "Company",
    "Warehouse",
    "Price List",
    "Item Group",
    "Item",
    "Item Price",
    "Customer Group",
    "Territory",
    "Customer",
    "Address",
    "Contact",
    "Country",
    "Currency",
    "Currency Exchange",
    "Account",
    "Custom Field",
    "Brand",
    "UOM",
    "Fiscal Year",
    "Sales Order",
    "Delivery Note",
    "Sales Invoice",
}

# Non-zero defaults of a new document (what a fresh ERPNext sets).
DEFAULTS: dict[str, dict[str, Any]] = {
    "Item": {
        "naming_series": "STO-ITEM-.YYYY.-",
        "end_of_life": "2099-12-31",
        "default_material_request_type": "Purchase",
        "variant_based_on": "Item Attribute",
        "is_purchase_item": 1,
        "grant_commission": 1,
        "is_sales_item": 1,
        "is_stock_item": 1,
        "include_item_in_manufacturing": 1,
    },
    "Customer": {"naming_series": "CUST-.YYYY.-", "customer_type": "Company", "language": "en"},
    "Contact": {"status": "Passive"},
    "Address": {"address_type": "Billing"},
    "Account": {"freeze_account": "No"},
    "Custom Field": {"fieldtype": "Data"},
    "Sales Order": {
        "naming_series": "SAL-ORD-.YYYY.-",
        "title": "{customer_name}",
        "order_type": "Sales",
        "apply_discount_on": "Grand Total",
        "status": "Draft",
        "delivery_status": "Not Delivered",
        "billing_status": "Not Billed",
        "language": "en",
        "conversion_rate": 0.0,
    },
    "Sales Order Item": {"conversion_factor": 1.0, "grant_commission": 1, "item_tax_rate": "{}"},
    "Sales Taxes and Charges": {"charge_type": "Actual"},
    "Payment Schedule": {"invoice_portion": 100.0},
    "UOM Conversion Detail": {"conversion_factor": 1.0},
    "Item Price": {"packing_unit": 0},
}

LABELS = {
    "item_group": "Item Group",
    "address_line1": "Address Line 1",
    "customer": "Customer",
    "amazon_order_id": "Amazon Order ID",
    "po_no": "Customer's Purchase Order",
    "item_code": "Item Code",
    "stock_uom": "Default Unit of Measure",
    "customer_group": "Customer Group",
    "territory": "Territory",
    "country": "Country",
    "price_list": "Price List",
    "selling_price_list": "Price List",
    "warehouse": "Delivery Warehouse",
    "company": "Company",
    "parent_account": "Parent Account",
    "account_head": "Account Head",
    "transaction_date": "Date",
    "currency": "Currency",
    "customer_name": "Customer Name",
    "uom": "UOM",
    "brand": "Brand",
    "city": "City/Town",
    "address_type": "Address Type",
    "account_name": "Account Name",
    "delivery_date": "Delivery Date",
    "conversion_rate": "Exchange Rate",
    "qty": "Quantity",
    "rate": "Rate",
    "title": "Title",
}

# (fieldname -> linked doctype) per doctype, checked on save.
LINKS: dict[str, dict[str, str]] = {
    "Item": {"item_group": "Item Group", "stock_uom": "UOM", "brand": "Brand"},
    "Item Price": {"price_list": "Price List", "uom": "UOM"},
    "Customer": {
        "customer_group": "Customer Group",
        "territory": "Territory",
        "default_currency": "Currency",
        "default_price_list": "Price List",
    },
    "Address": {"country": "Country"},
    "Account": {"company": "Company", "parent_account": "Account", "account_currency": "Currency"},
    "Warehouse": {"company": "Company", "parent_warehouse": "Warehouse"},
    "Price List": {"currency": "Currency"},
    "Sales Order": {
        "company": "Company",
        "selling_price_list": "Price List",
        "currency": "Currency",
        "customer_group": "Customer Group",
        "territory": "Territory",
        "amended_from": "Sales Order",
    },
    "Sales Order Item": {"warehouse": "Warehouse", "uom": "UOM"},
    "Sales Taxes and Charges": {"account_head": "Account"},
    "Currency Exchange": {"from_currency": "Currency", "to_currency": "Currency"},
    "Delivery Note": {"customer": "Customer", "company": "Company"},
    "Sales Invoice": {"customer": "Customer", "company": "Company"},
    "Delivery Note Item": {"item_code": "Item", "against_sales_order": "Sales Order"},
    "Sales Invoice Item": {"item_code": "Item", "sales_order": "Sales Order"},
}

MANDATORY: dict[str, list[str]] = {
    "Item": ["item_code", "item_group", "stock_uom"],
    "Item Price": ["price_list", "item_code", "price_list_rate"],
    "Customer": ["customer_name", "customer_type"],
    "Address": ["address_title", "address_type", "address_line1", "city", "country"],
    "Contact": ["first_name"],
    "Account": ["account_name", "company"],
    "Custom Field": ["dt", "fieldname"],
    "Sales Order": [
        "customer",
        "transaction_date",
        "company",
        "currency",
        "conversion_rate",
        "selling_price_list",
        "plc_conversion_rate",
    ],
    "Sales Order Item": ["item_code", "item_name", "uom", "conversion_factor"],
    "Sales Taxes and Charges": ["charge_type", "account_head", "description"],
    "Warehouse": ["warehouse_name", "company"],
    "Price List": ["price_list_name", "currency"],
    "Delivery Note": ["customer", "company", "posting_date"],
    "Sales Invoice": ["customer", "company", "posting_date"],
}

SELECTS: dict[str, dict[str, list[str]]] = {
    "Customer": {"customer_type": ["Company", "Individual", "Partnership"]},
    "Address": {
        "address_type": [
            "Billing",
            "Shipping",
            "Office",
            "Personal",
            "Plant",
            "Postal",
            "Shop",
            "Subsidiary",
            "Warehouse",
            "Current",
            "Permanent",
            "Other",
        ]
    },
    "Sales Order": {"order_type": ["", "Sales", "Maintenance", "Shopping Cart"]},
    "Sales Taxes and Charges": {
        "charge_type": [
            "",
            "Actual",
            "On Net Total",
            "On Previous Row Amount",
            "On Previous Row Total",
            "On Item Quantity",
        ]
    },
}

SO_ALLOW_ON_SUBMIT = {
    "po_no",
    "po_date",
    "delivery_date",
    "title",
    "letter_head",
    "select_print_heading",
    "tc_name",
    "terms",
    "payment_terms_template",
    "auto_repeat",
    "from_date",
    "to_date",
    "status",
    "per_delivered",
    "per_billed",
    "per_picked",
    "delivery_status",
    "billing_status",
    "advance_paid",
    "shipping_address_name",
    "shipping_address",
    "customer_address",
    "address_display",
    "contact_person",
    "contact_display",
    "contact_phone",
    "contact_mobile",
    "contact_email",
    "sales_partner",
    "commission_rate",
    "total_commission",
    "source",
    "campaign",
    "skip_delivery_note",
    "inter_company_order_reference",
    "other_charges_calculation",
    "in_words",
    "base_in_words",
}
_IGNORED_ON_COMPARE = set(META_FIELDS) | {
    "doctype",
    "__unsaved",
    "__islocal",
    "_user_tags",
    "_comments",
    "_assign",
    "_liked_by",
    "_seen",
}

_ONES = [
    "",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
]
_TENS = ["", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"]


def _words_below_1000(n: int) -> str:
    parts = []
    if n >= 100:
        parts.append(f"{_ONES[n // 100]} Hundred")
        n %= 100
        if n:
            parts.append("And")
    if n >= 20:
        parts.append(_TENS[n // 10] + (f" {_ONES[n % 10]}" if n % 10 else ""))
    elif n:
        parts.append(_ONES[n])
    return " ".join(parts)


def number_in_words(n: int) -> str:
    if n == 0:
        return "Zero"
    chunks = []
    for scale, word in ((10**9, "Billion"), (10**6, "Million"), (1000, "Thousand")):
        if n >= scale:
            chunks.append(f"{_words_below_1000(n // scale)} {word}")
            n %= scale
    if n:
        chunks.append(("And " if chunks and n < 100 else "") + _words_below_1000(n))
    return ", ".join(chunks).replace(", And ", " And ")


def money_in_words(amount: float, currency: str, fraction: str = "Cent") -> str:
    cents = int((Decimal(str(amount)).quantize(Decimal("0.01"), ROUND_HALF_EVEN) * 100).to_integral_value())
    main, frac = divmod(abs(cents), 100)
    out = f"{currency} {number_in_words(main)}"
    if frac:
        out += f" and {number_in_words(frac)} {fraction}"
    return out + " only."


def flt(value: Any, precision: int | None = None) -> float:
    try:
        f = float(value or 0)
    except (TypeError, ValueError):
        f = 0.0
    if precision is None:
        return f
    return float(Decimal(repr(f)).quantize(Decimal(1).scaleb(-precision), ROUND_HALF_EVEN))


def cint(value: Any) -> int:
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0


def getdate(value: Any) -> date | None:
    if not value:
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _hash_name() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(random.choice(alphabet) for _ in range(10))


# Journal Entry and GL Entry: fields and rules live in erpnext_journal
DOC_FIELDS.update(erpnext_journal.FIELDS)
for _dt, _extra in erpnext_journal.EXTRA_FIELDS.items():
    DOC_FIELDS.setdefault(_dt, {}).update({k: v for k, v in _extra.items() if k not in DOC_FIELDS[_dt]})
DOC_TABLES.update(erpnext_journal.TABLES)
DOCTYPES |= {erpnext_journal.JE, erpnext_journal.GLE}
SUBMITTABLE.add(erpnext_journal.JE)
MANDATORY.update(erpnext_journal.MANDATORY)
LINKS.update(erpnext_journal.LINKS)
SELECTS.update(erpnext_journal.SELECTS)
LABELS.update({k: v for k, v in erpnext_journal.LABELS.items() if k not in LABELS})


class Engine:
    def __init__(
        self,
        store: Store,
        *,
        company: str,
        abbr: str,
        currency: str,
        country: str,
        site_url: Callable[[], str],
    ) -> None:
        self.store = store
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

    # -- time ------------------------------------------------------------------------------------------
    def now(self) -> str:
        with self._ts_lock:
            ts = datetime.now(timezone.utc).replace(tzinfo=None)
            if ts <= self._last_ts:
                ts = self._last_ts + timedelta(microseconds=1)
            self._last_ts = ts
            return ts.strftime("%Y-%m-%d %H:%M:%S.%f")

    def today(self) -> str:
        return datetime.now(timezone.utc).date().isoformat()

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
                    row["name"] = _hash_name()
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
                        "naming_series", _SIMPLE_FIELDS.get(dt, {}).get("naming_series", "SIM-.#####")
                    )
                )
            )
        else:  # Item Price and anything else: hash
            doc["name"] = _hash_name()

    def _company_abbr(self, company: Any) -> str:
        comp = self.store.get("Company", str(company)) if company else None
        return str(comp.get("abbr")) if comp else self.abbr

    # -- generic validation ------------------------------------------------------------------------------
    def _missing(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip()) or value == []

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
            row["projected_qty"] = -self._reserved(str(code), str(row.get("warehouse")))
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
            key = f"reserved|{row.get('item_code')}|{row.get('warehouse')}"
            pending = flt(row.get("stock_qty")) - flt(row.get("delivered_qty"))
            self.store.set_meta(key, repr(flt(self.store.get_meta(key) or 0) + sign * pending))

    def _on_submit(self, doc: dict[str, Any], sign: int) -> None:
        """Side effects of submitting (sign 1) or cancelling (sign -1): stock reservation, SO progress."""
        if doc["doctype"] == erpnext_journal.JE:
            (erpnext_journal.on_submit if sign > 0 else erpnext_journal.on_cancel)(self, doc)
            return
        self._reserve(doc, sign)
        dt = doc["doctype"]
        if dt not in ("Delivery Note", "Sales Invoice"):
            return
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
            if dt == "Delivery Note":
                target["delivered_qty"] = flt(target.get("delivered_qty")) + sign * flt(row.get("qty"))
                key = f"reserved|{target.get('item_code')}|{target.get('warehouse')}"
                self.store.set_meta(
                    key, repr(flt(self.store.get_meta(key) or 0) - sign * flt(row.get("qty")))
                )
            else:
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

    def _validate_journal_entry(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        erpnext_journal.validate(self, doc)

    def _validate_delivery_note(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._simple_totals(doc)

    def _validate_sales_invoice(self, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._simple_totals(doc)
        doc["outstanding_amount"] = doc["grand_total"]

    def _simple_totals(self, doc: dict[str, Any]) -> None:
        customer = self.store.get("Customer", str(doc.get("customer"))) if doc.get("customer") else None
        if doc.get("customer") and customer is None:
            raise does_not_exist("Customer", str(doc["customer"]))
        doc["customer_name"] = (customer or {}).get("customer_name")
        doc["company"] = doc.get("company") or self.company
        doc["posting_date"] = doc.get("posting_date") or self.today()
        doc["currency"] = doc.get("currency") or self.currency
        conv = flt(doc.get("conversion_rate")) or 1.0
        for row in doc.get("items") or []:
            code = row.get("item_code")
            item = self.store.get("Item", str(code)) if code else None
            if code and item is None:
                raise does_not_exist("Item", str(code))
            row["item_name"] = row.get("item_name") or (item or {}).get("item_name")
            row["rate"] = flt(row.get("rate"), 2)
            row["amount"] = flt(flt(row.get("qty")) * row["rate"], 2)
        doc["total_qty"] = sum(flt(r.get("qty")) for r in doc.get("items") or [])
        doc["total"] = doc["net_total"] = doc["grand_total"] = flt(
            sum(r["amount"] for r in doc.get("items") or []), 2
        )
        doc["base_grand_total"] = flt(doc["grand_total"] * conv, 2)

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
            self.insert(
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
            if doctype == "Sales Order":
                doc["status"] = "Draft"  # set_status skips new docs, also when inserted submitted
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
            elif doctype != erpnext_journal.JE:  # a Journal Entry has no status
                doc["status"] = "To Bill" if doctype == "Delivery Note" else "Unpaid"
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
            for ref_dt, field in (("Delivery Note", "against_sales_order"), ("Sales Invoice", "sales_order")):
                for other in self.store.scan(ref_dt):
                    if cint(other.get("docstatus")) == 1 and any(
                        r.get(field) == name for r in other.get("items") or []
                    ):
                        raise self._link_exists(doctype, name, ref_dt, other["name"])
        self._on_submit(doc, -1)
        doc["docstatus"] = 2
        if doctype != erpnext_journal.JE:
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
            erpnext_journal.before_delete(self, doc)
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

    def update_status(self, name: str, status: str) -> None:
        doc = self.load("Sales Order", name)
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
