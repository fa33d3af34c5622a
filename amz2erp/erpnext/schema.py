"""Every ERPNext schema fact amz2erp relies on, defined once: the doctypes it reads and writes, the custom
fields it adds (and which of them must exist before orders are written), how ERPNext names accounts and
custom fields, and which account can hold amz2erp's charge accounts.

Uniqueness of ``Sales Order.amazon_order_id``: the field is indexed (``search_index``) but **not unique** in
the database. A cancelled Sales Order keeps its value and a cancelled document cannot be edited, so under a
unique index its amendment could not carry the Amazon order id (recording 075: UniqueValidationError; 076:
the amendment saves only without it), and every corrected order would fall out of the lookup that the sync
engine, ERPNext's list filter and the Frappe connector all use (078). Sites that ran the Frappe connector or
the old MWS integration already have this field, non-unique and possibly with duplicate values from their
bugs; making it unique would mean fighting (and failing on) their data. So the database does not enforce
exactly-once; amz2erp does, in layers: one run at a time (the run lock); one worker per order; a lookup on
the indexed field (``docstatus != 2``: at most one live Sales Order per Amazon order) before every insert;
``ErpNextClient.insert(..., key={"amazon_order_id": ...})`` which, after a timeout or a 5xx that leaves the
outcome unknown, waits and looks the order up before it sends anything again; and ERPNext's own guard
against a second live Sales Order with the same customer and ``po_no`` (recording 056; the order mapping
puts the order id into ``po_no`` too), which turns a late-committing duplicate into a 417 that the client
resolves through the same key. Customers get ``amazon_customer_key`` instead, which *is* unique: customers are never
amended, and Frappe silently renames a second customer with the same name ("<name> - 1", recording 029)
instead of refusing it, so without a unique key a resent customer insert would be a silent duplicate.

``amazon_posting_key`` (invoice mode's key on Sales Invoice, Delivery Note and Journal Entry) is **not unique**
either, for the same reason: a cancelled entry keeps a unique value, so its amendment (ERPNext copies no_copy
fields into an amendment) is refused with UniqueValidationError (recordings 156/157), and a settlement that
the user cancels and amz2erp posts again would need the same keys for its receipts. Exactly-once comes from
the same layers as for Sales Orders: the run lock, a lookup by the indexed key (``docstatus != 2``) before
every insert, and ``insert(key=...)`` after an ambiguous failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from amz2erp.config import Settings

if TYPE_CHECKING:
    from amz2erp.erpnext.client import ErpNextClient


class Doctype:
    """The ERPNext doctypes amz2erp reads or writes (their names are part of the REST paths)."""

    ACCOUNT: Final = "Account"
    COMPANY: Final = "Company"
    CURRENCY_EXCHANGE: Final = "Currency Exchange"
    CUSTOM_FIELD: Final = "Custom Field"
    CUSTOMER: Final = "Customer"
    CUSTOMER_GROUP: Final = "Customer Group"
    DELIVERY_NOTE: Final = "Delivery Note"
    FISCAL_YEAR: Final = "Fiscal Year"
    ITEM: Final = "Item"
    ITEM_GROUP: Final = "Item Group"
    JOURNAL_ENTRY: Final = "Journal Entry"
    PRICE_LIST: Final = "Price List"
    SALES_ORDER: Final = "Sales Order"
    SALES_INVOICE: Final = "Sales Invoice"
    SALES_ORDER_ITEM: Final = "Sales Order Item"
    STOCK_SETTINGS: Final = "Stock Settings"  # a single doctype: its one document has the same name
    TERRITORY: Final = "Territory"
    WAREHOUSE: Final = "Warehouse"


# The root of ERPNext's item group tree; `setup` creates the configured item group under it.
ITEM_GROUP_ROOT: Final = "All Item Groups"

# --- custom fields --------------------------------------------------------------------------------------------

# The custom fields amz2erp reads and writes. Properties compared with an existing field: see COMPARED.
CUSTOM_FIELDS: tuple[dict[str, Any], ...] = (
    {
        "dt": Doctype.SALES_ORDER,
        "fieldname": "amazon_order_id",
        "label": "Amazon Order ID",
        "fieldtype": "Data",
        "insert_after": "title",
        "read_only": 1,
        "no_copy": 1,
        "in_standard_filter": 1,
        "search_index": 1,
        "unique": 0,
        "in_global_search": 1,
    },
    {
        "dt": Doctype.SALES_ORDER,
        "fieldname": "amazon_marketplace_id",
        "label": "Amazon Marketplace ID",
        "fieldtype": "Data",
        "insert_after": "amazon_order_id",
        "read_only": 1,
        "no_copy": 1,
        "in_standard_filter": 1,
    },
    {
        "dt": Doctype.SALES_ORDER,
        "fieldname": "amazon_fulfillment_channel",
        "label": "Amazon Fulfillment Channel",
        "fieldtype": "Data",
        "insert_after": "amazon_marketplace_id",
        "read_only": 1,
        "no_copy": 1,
        "in_standard_filter": 1,
    },
    {
        # Amazon's status changes after the Sales Order is submitted: allow_on_submit lets amz2erp follow it.
        "dt": Doctype.SALES_ORDER,
        "fieldname": "amazon_order_status",
        "label": "Amazon Order Status",
        "fieldtype": "Data",
        "insert_after": "amazon_fulfillment_channel",
        "read_only": 1,
        "no_copy": 1,
        "allow_on_submit": 1,
        "in_standard_filter": 1,
    },
    {
        "dt": Doctype.SALES_ORDER_ITEM,
        "fieldname": "amazon_order_item_id",
        "label": "Amazon Order Item ID",
        "fieldtype": "Data",
        "insert_after": "item_code",
        "read_only": 1,
        "no_copy": 1,
    },
    {
        "dt": Doctype.ITEM,
        "fieldname": "amazon_asin",
        "label": "Amazon ASIN",
        "fieldtype": "Data",
        "insert_after": "item_name",
        "search_index": 1,
        "in_standard_filter": 1,
    },
    {
        "dt": Doctype.CUSTOMER,
        "fieldname": "amazon_customer_key",
        "label": "Amazon Customer Key",
        "fieldtype": "Data",
        "insert_after": "customer_name",
        "read_only": 1,
        "no_copy": 1,
        "unique": 1,
    },
    {
        # sync-settlements: the settlement a Journal Entry posts (the exactly-once key, looked up before a resend)
        "dt": Doctype.JOURNAL_ENTRY,
        "fieldname": "amazon_settlement_id",
        "label": "Amazon Settlement ID",
        "fieldtype": "Data",
        "insert_after": "cheque_date",
        "read_only": 1,
        "no_copy": 1,  # an amended or duplicated entry must not claim the settlement a second time
        "in_standard_filter": 1,
        "search_index": 1,
    },
    # invoice mode ([settlements] mode = "invoice"): the order an invoice belongs to, and each document's natural
    # key (the Sales Order's amazon_order_id is no_copy: make_sales_invoice does not carry it over)
    *(
        {
            "dt": dt,
            "fieldname": "amazon_order_id",
            "label": "Amazon Order ID",
            "fieldtype": "Data",
            "insert_after": "customer",
            "read_only": 1,
            "no_copy": 1,
            "in_standard_filter": 1,
            "search_index": 1,
            "in_global_search": 1,
        }
        for dt in (Doctype.SALES_INVOICE, Doctype.DELIVERY_NOTE)
    ),
    *(
        {
            "dt": dt,
            "fieldname": "amazon_posting_key",
            "label": "Amazon Posting Key",
            "fieldtype": "Data",
            "insert_after": after,
            "read_only": 1,
            "no_copy": 1,
            "search_index": 1,
            "unique": 0,  # not unique: see the module doc
        }
        for dt, after in (
            (Doctype.SALES_INVOICE, "amazon_order_id"),
            (Doctype.DELIVERY_NOTE, "amazon_order_id"),
            (Doctype.JOURNAL_ENTRY, "cheque_date"),
        )
    ),
)
# The properties whose difference changes how amz2erp's writes behave (the rest is presentation).
COMPARED: Final = ("fieldtype", "unique", "allow_on_submit")


def custom_field_name(doctype: str, fieldname: str) -> str:
    """ERPNext names a custom field "<doctype>-<fieldname>"."""
    return f"{doctype}-{fieldname}"


# The Journal Entry field holding the settlement-id (sync-settlements' exactly-once key).
SETTLEMENT_ID_FIELD: Final = "amazon_settlement_id"
# Custom fields only sync-settlements uses: planned and checked once [settlements] bank_account is set (an
# installation that only syncs orders gets nothing it never uses).
SETTLEMENT_CUSTOM_FIELDS: tuple[str, ...] = (custom_field_name(Doctype.JOURNAL_ENTRY, SETTLEMENT_ID_FIELD),)


# Invoice mode's custom fields: the natural key of every document it writes (looked up before a resend) and
# the order an invoice belongs to. The Delivery Note ones only with [orders] deliver = "delivery_note".
INVOICE_CUSTOM_FIELDS: tuple[str, ...] = (
    custom_field_name(Doctype.SALES_INVOICE, "amazon_order_id"),
    custom_field_name(Doctype.SALES_INVOICE, "amazon_posting_key"),
    custom_field_name(Doctype.JOURNAL_ENTRY, "amazon_posting_key"),
)
DELIVERY_CUSTOM_FIELDS: tuple[str, ...] = (
    custom_field_name(Doctype.DELIVERY_NOTE, "amazon_order_id"),
    custom_field_name(Doctype.DELIVERY_NOTE, "amazon_posting_key"),
)


def custom_fields_for(settings: Settings) -> tuple[dict[str, Any], ...]:
    """The custom fields this configuration needs: CUSTOM_FIELDS without the settlement ones until settlements
    are configured, without invoice mode's until it is chosen, and without the Delivery Note ones unless
    Delivery Notes are written."""
    left_out: set[str] = set()
    if not settings.settlements.bank_account:
        left_out.update(SETTLEMENT_CUSTOM_FIELDS)
    if settings.settlements.mode != "invoice":
        left_out.update(INVOICE_CUSTOM_FIELDS)
    if settings.settlements.mode != "invoice" or settings.orders.deliver != "delivery_note":
        left_out.update(DELIVERY_CUSTOM_FIELDS)
    return tuple(f for f in CUSTOM_FIELDS if custom_field_name(f["dt"], f["fieldname"]) not in left_out)


# Required before any order is written: without it ERPNext silently drops the Amazon order id on insert, the
# next run cannot find the order and writes it again.
REQUIRED_CUSTOM_FIELDS: tuple[str, ...] = (custom_field_name(Doctype.SALES_ORDER, "amazon_order_id"),)


def existing_custom_fields(client: ErpNextClient) -> dict[tuple[str, str], dict[str, Any]]:
    """amz2erp's custom fields as they exist on the site, by (doctype, fieldname)."""
    fieldnames = sorted({f["fieldname"] for f in CUSTOM_FIELDS})
    rows = client.list(
        Doctype.CUSTOM_FIELD,
        fields=("name", "dt", "fieldname", *COMPARED),
        filters=[["fieldname", "in", fieldnames]],
    )
    return {(r["dt"], r["fieldname"]): r for r in rows}


def custom_field_differences(
    client: ErpNextClient, existing: dict[tuple[str, str], dict[str, Any]] | None = None
) -> list[str]:
    """Custom fields that exist with other properties than amz2erp would give them (e.g. created by the
    Frappe connector). amz2erp leaves them as they are; this says how they differ."""
    if existing is None:
        existing = existing_custom_fields(client)
    notes: list[str] = []
    for spec in CUSTOM_FIELDS:
        row = existing.get((spec["dt"], spec["fieldname"]))
        if row is None:
            continue
        diffs = []
        for prop in COMPARED:
            want = spec.get(prop, 0 if prop != "fieldtype" else "Data")
            have = row.get(prop)
            if prop != "fieldtype":
                have = int(have or 0)
            if have != want:
                diffs.append(f"{prop}={have!r} (amz2erp would use {want!r})")
        if diffs:
            notes.append(f"{spec['dt']}.{spec['fieldname']}: " + ", ".join(diffs))
    return notes


# --- accounts -------------------------------------------------------------------------------------------------

# settings.accounts attribute → ERPNext account_type
ACCOUNT_TYPES: dict[str, str] = {
    "item_tax": "Tax",
    "shipping": "Chargeable",
    "shipping_tax": "Tax",
    "gift_wrap": "Chargeable",
    "gift_wrap_tax": "Tax",
    "promotion_discount": "Chargeable",
    "shipping_discount": "Chargeable",
    "marketplace_facilitator_tax": "Tax",
}


def full_account_name(name: str, abbr: str) -> str:
    """ERPNext names accounts "<account_name> - <company abbr>"."""
    suffix = f" - {abbr}"
    return name if name.endswith(suffix) else name + suffix


def account_base_name(name: str, abbr: str) -> str:
    """The account_name part of a full account name (the abbreviation suffix removed)."""
    suffix = f" - {abbr}"
    return name[: -len(suffix)] if name.endswith(suffix) else name


def charge_accounts(settings: Settings) -> dict[str, str]:
    """Account name (without abbreviation) → account_type, for every configured charge account."""
    out: dict[str, str] = {}
    for attr, account_type in ACCOUNT_TYPES.items():
        name = getattr(settings.accounts, attr)
        if name and name not in out:
            out[name] = account_type
    return out


def account_group_problems(group: Mapping[str, Any] | None, company: str) -> list[str]:
    """Why the account ``group`` (a row with is_group and company, or None when it does not exist) cannot hold
    amz2erp's charge accounts for ``company``; empty when it can. ERPNext creates an account only under a group
    account of the same company (a ledger parent is refused with a 417)."""
    if group is None:
        return ["does not exist"]
    problems = []
    if not int(group.get("is_group") or 0):
        problems.append("is a ledger, not a group (accounts cannot be created under it)")
    if group.get("company") != company:
        problems.append(f"belongs to company {group.get('company')!r}")
    return problems


def describe_account_group(name: str, problems: list[str]) -> str:
    """The one wording of an unusable account group: "account 'X' is a ledger, ... and belongs to ..."."""
    return f"account {name!r} " + " and ".join(problems)


# --- settlement accounts --------------------------------------------------------------------------------------

# A group account of each root type a new settlement account goes under, by preference (ERPNext's standard
# chart first, then any group of that root type). Taxes (Liability) go under [defaults] account_group instead.
SETTLEMENT_PARENT_GROUPS: dict[str, tuple[str, ...]] = {
    "Income": ("Direct Income", "Income"),
    "Expense": ("Indirect Expenses", "Expenses"),
    "Asset": ("Current Assets", "Application of Funds (Assets)"),
}
# The account types ERPNext lets a Journal Entry's bank line use (voucher_type "Bank Entry").
BANK_ACCOUNT_TYPES: tuple[str, ...] = ("Bank", "Cash")


@dataclass(frozen=True)
class SettlementAccountSpec:
    """One account sync-settlements books to, and the group `setup` creates it under."""

    name: str  # full name, with " - ABBR"
    root_type: str  # Income | Expense | Asset | Liability
    purpose: str  # the categories (or clearing/suspense) it holds, for messages


def settlement_account_specs(settings: Settings, abbr: str) -> list[SettlementAccountSpec]:
    """Every account a settlement may book to except the bank account (which setup never invents).
    Categories sharing an account share one spec; the root type is that of the first category using it."""
    # imported here: settlement_mapping reads full_account_name from this module
    from amz2erp.settlement_categories import Category
    from amz2erp.settlement_mapping import resolve_accounts

    s = settings.settlements
    accounts = resolve_accounts(s, s.category_table(), abbr,
                                marketplace_facilitator_tax=settings.accounts.marketplace_facilitator_tax)
    specs: dict[str, SettlementAccountSpec] = {}
    for name, root, purpose in (
        *((accounts.for_category(c), c.root_type.value, c.value) for c in Category),
        (accounts.clearing, "Asset", "clearing"),
        (accounts.suspense, "Asset", "suspense"),
    ):
        name = full_account_name(name, abbr)
        if name in specs:
            spec = specs[name]
            specs[name] = SettlementAccountSpec(name, spec.root_type, f"{spec.purpose}, {purpose}")
        else:
            specs[name] = SettlementAccountSpec(name, root, purpose)
    return list(specs.values())


__all__ = [
    "ACCOUNT_TYPES",
    "BANK_ACCOUNT_TYPES",
    "COMPARED",
    "CUSTOM_FIELDS",
    "DELIVERY_CUSTOM_FIELDS",
    "INVOICE_CUSTOM_FIELDS",
    "ITEM_GROUP_ROOT",
    "REQUIRED_CUSTOM_FIELDS",
    "SETTLEMENT_CUSTOM_FIELDS",
    "SETTLEMENT_ID_FIELD",
    "SETTLEMENT_PARENT_GROUPS",
    "Doctype",
    "SettlementAccountSpec",
    "account_base_name",
    "account_group_problems",
    "charge_accounts",
    "custom_field_differences",
    "custom_field_name",
    "custom_fields_for",
    "describe_account_group",
    "existing_custom_fields",
    "full_account_name",
    "settlement_account_specs",
]
