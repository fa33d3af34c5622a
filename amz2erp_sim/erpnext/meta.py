"""Doctype metadata of the simulated ERPNext beyond the generated field lists: extra fields, defaults,
labels, links, mandatory fields, select options, fields allowed on submit (Journal Entry's included)."""

from __future__ import annotations

from typing import Any

from amz2erp_sim.erpnext import invoice as erpnext_invoice
from amz2erp_sim.erpnext import journal as erpnext_journal
from amz2erp_sim.erpnext import stock as erpnext_stock
from amz2erp_sim.erpnext.schema import FIELDS, TABLES

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

SIMPLE_FIELDS: dict[str, dict[str, Any]] = {
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
    "Fiscal Year Company": {"company": None},
}

_SIMPLE_TABLES: dict[str, dict[str, str | None]] = {
    "Fiscal Year": {"companies": "Fiscal Year Company"},
}


def _build_fields() -> dict[str, dict[str, Any]]:
    out = {dt: dict(f) for dt, f in FIELDS.items()}
    for dt, extra in _EXTRA_FIELDS.items():
        for k, v in extra.items():
            out.setdefault(dt, {}).setdefault(k, v)
    out.update({dt: dict(f) for dt, f in SIMPLE_FIELDS.items()})
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

# Sales Invoice, Delivery Note (erpnext_invoice) and stock (erpnext_stock): fields and rules live there
for _module in (erpnext_invoice, erpnext_stock):
    DOC_FIELDS.update({dt: dict(f) for dt, f in _module.FIELDS.items()})
    DOC_TABLES.update(_module.TABLES)
    MANDATORY.update(_module.MANDATORY)
    LINKS.update(_module.LINKS)
    for _dt, _defaults in _module.DEFAULTS.items():
        DEFAULTS.setdefault(_dt, {}).update(_defaults)
for _dt, _extra in erpnext_journal.EXTRA_FIELDS.items():
    DOC_FIELDS[_dt].update({k: v for k, v in _extra.items() if k not in DOC_FIELDS[_dt]})
DOC_TABLES["Customer"]["accounts"] = "Party Account"
SELECTS.update(erpnext_stock.SELECTS)
LABELS.update({k: v for k, v in erpnext_invoice.LABELS.items() if k not in LABELS})
DOCTYPES |= {erpnext_stock.STE, erpnext_stock.SLE, erpnext_stock.BIN, erpnext_stock.SETTINGS,
             erpnext_journal.ACCOUNTING_PERIOD}  # fmt: skip
SUBMITTABLE.add(erpnext_stock.STE)
