"""`amz2erp check` and `amz2erp setup`: is ERPNext ready for amz2erp, and make it so.

`plan_setup` reads ERPNext and lists what is missing (custom fields, charge accounts, the item group, the
placeholder item); `apply_setup` creates exactly that, each step idempotent, so a second plan is empty.
`run_checks` verifies the configuration against the live site and says, for every failed check, what is
wrong and what to do.

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
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Protocol

from pydantic import SecretStr

from amz2erp.amazon import marketplaces as mp
from amz2erp.config import Settings
from amz2erp.erpnext_client import ErpNextClient
from amz2erp.errors import (
    AmazonAuthError,
    AmazonError,
    ConfigError,
    ErpNextAuthError,
    ErpNextConfigError,
    ErpNextDuplicateError,
    ErpNextError,
    ErpNextUnavailableError,
    ExitCode,
)
from amz2erp.ui import plural

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

SETUP_FIX = "run `amz2erp setup`"

# The custom fields amz2erp reads and writes. Properties compared with an existing field: see _COMPARED.
CUSTOM_FIELDS: tuple[dict[str, Any], ...] = (
    {
        "dt": "Sales Order",
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
        "dt": "Sales Order",
        "fieldname": "amazon_marketplace_id",
        "label": "Amazon Marketplace ID",
        "fieldtype": "Data",
        "insert_after": "amazon_order_id",
        "read_only": 1,
        "no_copy": 1,
        "in_standard_filter": 1,
    },
    {
        "dt": "Sales Order",
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
        "dt": "Sales Order",
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
        "dt": "Sales Order Item",
        "fieldname": "amazon_order_item_id",
        "label": "Amazon Order Item ID",
        "fieldtype": "Data",
        "insert_after": "item_code",
        "read_only": 1,
        "no_copy": 1,
    },
    {
        "dt": "Item",
        "fieldname": "amazon_asin",
        "label": "Amazon ASIN",
        "fieldtype": "Data",
        "insert_after": "item_name",
        "search_index": 1,
        "in_standard_filter": 1,
    },
    {
        "dt": "Customer",
        "fieldname": "amazon_customer_key",
        "label": "Amazon Customer Key",
        "fieldtype": "Data",
        "insert_after": "customer_name",
        "read_only": 1,
        "no_copy": 1,
        "unique": 1,
    },
)
_COMPARED = ("fieldtype", "unique", "allow_on_submit")

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
ITEM_GROUP_ROOT = "All Item Groups"


# --- results ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupAction:
    """One document `setup` creates."""

    doctype: str
    name: str  # the ERPNext name the document will get
    doc: dict[str, Any] = field(compare=False)
    reason: str = ""

    def describe(self) -> str:
        what = {
            "Custom Field": lambda: (
                f"create custom field {self.doc['dt']}.{self.doc['fieldname']} ({self.doc['fieldtype']})"
            ),
            "Account": lambda: (
                f"create account {self.name!r} ({self.doc.get('account_type') or 'no type'}) "
                f"under {self.doc['parent_account']!r}"
            ),
            "Item Group": lambda: (
                f"create item group {self.name!r}{' (group)' if self.doc.get('is_group') else ''} "
                f"under {self.doc.get('parent_item_group')!r}"
            ),
            "Item": lambda: f"create item {self.name!r} (placeholder for unmapped SKUs)",
        }.get(self.doctype, lambda: f"create {self.doctype} {self.name!r}")()
        return what + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    code: ExitCode = ExitCode.CONFIG  # the exit code a failure means (3 credentials, 4 unreachable, 2 config)


def checks_exit_code(results: Sequence[CheckResult]) -> ExitCode:
    """0 when every check passed, else the code of the first failure: checks run in dependency order
    (placeholders, reachability, credentials, masters), so the first failure is the one to fix first."""
    for r in results:
        if not r.ok:
            return r.code
    return ExitCode.OK


# The keys whose values in the `init` template are examples that cannot work; the defaults
# ("Products", "Standard Selling", ...) are ERPNext's own and may well be right.
PLACEHOLDER_KEYS: tuple[tuple[str, str], ...] = (
    ("amazon", "refresh_token"),
    ("amazon", "lwa_app_id"),
    ("amazon", "lwa_client_secret"),
    ("erpnext", "url"),
    ("erpnext", "api_key"),
    ("erpnext", "api_secret"),
    ("defaults", "company"),
    ("defaults", "warehouse"),
)


@cache
def template_examples() -> dict[tuple[str, str], str]:
    """The example values of PLACEHOLDER_KEYS, read from the template `init` writes (one source of truth)."""
    text = resources.files("amz2erp").joinpath("templates/config.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {(sec, key): str(data[sec][key]) for sec, key in PLACEHOLDER_KEYS if key in data.get(sec, {})}


def section_placeholders(section: str, values: Any) -> list[str]:
    """The keys of one config section (``values``: its settings model) still holding the template's
    example values, as "[section] key" (never the values)."""
    out: list[str] = []
    for (sec, key), example in template_examples().items():
        if sec != section:
            continue
        value: Any = getattr(values, key, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None and str(value).rstrip("/") == example.rstrip("/"):
            out.append(f"[{sec}] {key}")
    return out


def placeholder_keys(settings: Settings) -> list[str]:
    """Every setting still holding the template's example value, as "[section] key"."""
    return [k for sec in ("amazon", "erpnext", "defaults") for k in section_placeholders(sec, getattr(settings, sec))]


class AmazonParticipations(Protocol):
    def marketplace_participations(self) -> list[dict[str, Any]]: ...


# --- helpers ------------------------------------------------------------------------------------------------


def full_account_name(name: str, abbr: str) -> str:
    """ERPNext names accounts "<account_name> - <company abbr>"."""
    suffix = f" - {abbr}"
    return name if name.endswith(suffix) else name + suffix


def account_base_name(name: str, abbr: str) -> str:
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


def _company(client: ErpNextClient, company: str) -> dict[str, Any] | None:
    return client.find("Company", [["name", "=", company]], fields=("name", "abbr", "default_currency"))


def existing_custom_fields(client: ErpNextClient) -> dict[tuple[str, str], dict[str, Any]]:
    fieldnames = sorted({f["fieldname"] for f in CUSTOM_FIELDS})
    rows = client.list(
        "Custom Field",
        fields=("name", "dt", "fieldname", *_COMPARED),
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
        for prop in _COMPARED:
            want = spec.get(prop, 0 if prop != "fieldtype" else "Data")
            have = row.get(prop)
            if prop != "fieldtype":
                have = int(have or 0)
            if have != want:
                diffs.append(f"{prop}={have!r} (amz2erp would use {want!r})")
        if diffs:
            notes.append(f"{spec['dt']}.{spec['fieldname']}: " + ", ".join(diffs))
    return notes


# --- setup ----------------------------------------------------------------------------------------------------


def plan_setup(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """What `setup` would create, in order (fields, item groups, accounts, placeholder item). Reads only.
    Raises ConfigError when [defaults] company does not exist (nothing could be set up for it)."""
    d = settings.defaults
    actions: list[SetupAction] = []
    if _company(client, d.company) is None:
        raise _missing_company(client, d.company)

    existing = existing_custom_fields(client)
    for spec in CUSTOM_FIELDS:
        if (spec["dt"], spec["fieldname"]) not in existing:
            actions.append(SetupAction("Custom Field", f"{spec['dt']}-{spec['fieldname']}", dict(spec)))
    for note in custom_field_differences(client, existing):
        log.warning("custom field %s; left as it is", note)

    group = client.find("Item Group", [["name", "=", d.item_group]], fields=("name", "is_group"))
    if group is None:
        root = client.find("Item Group", [["name", "=", ITEM_GROUP_ROOT]], fields=("name", "is_group"))
        if root is None:
            actions.append(
                SetupAction(
                    "Item Group",
                    ITEM_GROUP_ROOT,
                    {"item_group_name": ITEM_GROUP_ROOT, "is_group": 1, "parent_item_group": ""},
                    reason="the parent of the configured item group",
                )
            )
        actions.append(
            SetupAction(
                "Item Group",
                d.item_group,
                {
                    "item_group_name": d.item_group,
                    "is_group": 1 if settings.items.classification_groups else 0,
                    "parent_item_group": ITEM_GROUP_ROOT,
                },
                reason="[defaults] item_group",
            )
        )

    actions.extend(_plan_accounts(client, settings))

    if settings.items.unknown_sku == "placeholder":
        code = settings.items.placeholder_item
        if not client.exists("Item", code):
            actions.append(
                SetupAction(
                    "Item",
                    code,
                    {
                        "item_code": code,
                        "item_name": "Amazon SKU not mapped",
                        "item_group": d.item_group,
                        "stock_uom": d.stock_uom,
                        "is_stock_item": 0,
                        "is_sales_item": 1,
                        "description": "Placeholder for Amazon order lines whose SKU has no ERPNext item "
                        '([items] unknown_sku = "placeholder"). Map the SKU and amend the order.',
                    },
                    reason='[items] unknown_sku = "placeholder"',
                )
            )
    return actions


def _plan_accounts(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """The missing charge accounts, or none (with a warning) when the company or the group is unusable."""
    d = settings.defaults
    company = _company(client, d.company)
    if company is None:
        # Planning nothing here would end in "Nothing to do" while nothing can work: refuse.
        raise _missing_company(client, d.company)
    abbr = str(company.get("abbr") or "")
    parent = full_account_name(d.account_group, abbr)
    group = client.find("Account", [["name", "=", parent]], fields=("name", "is_group", "company"))
    if group is None or not int(group.get("is_group") or 0) or group.get("company") != d.company:
        log.warning(
            "account group %r is missing or not a group account of %r; charge accounts are not planned "
            "(see `amz2erp check`)",
            parent,
            d.company,
        )
        return []
    wanted = {
        full_account_name(n, abbr): (account_base_name(n, abbr), t)
        for n, t in charge_accounts(settings).items()
    }
    have = {
        r["name"] for r in client.list("Account", fields=("name",), filters=[["name", "in", sorted(wanted)]])
    }
    return [
        SetupAction(
            "Account",
            full,
            {
                "account_name": base,
                "parent_account": parent,
                "company": d.company,
                "is_group": 0,
                "account_type": account_type,
            },
            reason="[accounts]",
        )
        for full, (base, account_type) in wanted.items()
        if full not in have
    ]


def apply_setup(client: ErpNextClient, actions: Sequence[SetupAction]) -> list[SetupAction]:
    """Create what the plan lists, in order; answers the actions that created something. Idempotent: a
    document that appeared meanwhile (or a field that exists under another definition) is skipped."""
    done: list[SetupAction] = []
    for action in actions:
        try:
            created = client.ensure(action.doctype, action.name, action.doc)
        except ErpNextDuplicateError as exc:
            # e.g. "A field with the name amazon_order_id already exists in Sales Order" (a standard field)
            log.warning("%s: %s; left as it is", action.describe(), exc)
            continue
        if created:
            log.info("setup: %s", action.describe())
            done.append(action)
    return done


# --- checks --------------------------------------------------------------------------------------------------


def run_checks(
    client: ErpNextClient,
    settings: Settings,
    *,
    amazon: AmazonParticipations | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[CheckResult]:
    """Every check, in order. Stops early only when ERPNext is unreachable or refuses the credentials.
    ``progress`` is told before each step that waits on the network, so a slow answer is never silence."""
    results: list[CheckResult] = []
    add = results.append
    say = progress or (lambda message: None)

    placeholders = placeholder_keys(settings)
    if placeholders:
        add(
            CheckResult(
                "placeholders",
                False,
                "still the example values of the `init` template: " + ", ".join(placeholders),
                "fill them in with your own values (the comments in the config file say where they come from)",
            )
        )
    erp_placeholders = [p for p in placeholders if p.startswith("[erpnext]")]
    if erp_placeholders:
        add(CheckResult("erpnext reachable", False, "not checked: " + ", ".join(erp_placeholders) +
                        " not filled in", "fill in [erpnext] url, api_key and api_secret"))
    else:
        _erpnext_part(client, settings, results, say)

    if amazon is not None:
        amazon_placeholders = [p for p in placeholders if p.startswith("[amazon]")]
        if amazon_placeholders:
            add(CheckResult("amazon credentials", False, "not checked: " + ", ".join(amazon_placeholders) +
                            " not filled in", "fill in [amazon] refresh_token, lwa_app_id and lwa_client_secret"))
        else:
            say(f"Asking Amazon ({settings.amazon.region}) for the seller's marketplaces (Login with Amazon first)…")
            results.extend(_amazon_checks(amazon, settings))
    return results


def _erpnext_part(
    client: ErpNextClient, settings: Settings, results: list[CheckResult], say: Callable[[str], None]
) -> None:
    add = results.append
    erp = settings.erpnext
    say(f"Asking ERPNext at {erp.url} for ping…")
    try:
        client.probe()
    except ErpNextConfigError as exc:
        add(CheckResult("erpnext reachable", False, str(exc), "fix [erpnext] url", ExitCode.CONFIG))
        return
    except ErpNextError as exc:
        add(
            CheckResult(
                "erpnext reachable",
                False,
                str(exc),
                "check [erpnext] url (scheme, host, port), that the site is up and this host can reach it",
                exc.exit_code,
            )
        )
        return
    add(CheckResult("erpnext reachable", True, f"{erp.url} answers"))
    say("Asking ERPNext who the API token belongs to…")
    try:
        user = client.logged_user()
    except ErpNextAuthError as exc:
        add(
            CheckResult(
                "erpnext credentials",
                False,
                f"ERPNext refused the API token: {exc}",
                "set [erpnext] api_key / api_secret (or AMZ2ERP_ERPNEXT_API_KEY / _SECRET) to the "
                "keys of an enabled user (User > API Access > Generate Keys)",
                ExitCode.AUTH,
            )
        )
        return
    except ErpNextError as exc:
        add(CheckResult("erpnext credentials", False, f"could not verify the API token: {exc}", None,
                        exc.exit_code))
        return
    add(CheckResult("erpnext credentials", True, f"logged in as {user}"))
    say(f"Reading the ERPNext masters of {settings.defaults.company!r}…")
    try:
        results.extend(_erpnext_checks(client, settings))
    except ErpNextAuthError as exc:
        add(
            CheckResult(
                "erpnext permissions",
                False,
                str(exc),
                "give the API user read access to the masters (e.g. roles System Manager, "
                "Accounts Manager, Stock Manager, Sales Manager)",
                ExitCode.AUTH,
            )
        )
    except ErpNextUnavailableError as exc:
        add(CheckResult("erpnext available", False, str(exc), "retry later", ExitCode.UNAVAILABLE))
    except ErpNextError as exc:
        add(CheckResult("erpnext checks", False, f"ERPNext refused a check query: {exc}", None, exc.exit_code))


def _missing_company(client: ErpNextClient, company: str) -> ConfigError:
    return ConfigError(
        f"company {company!r} does not exist in ERPNext; set [defaults] company to one of: "
        f"{_names(client, 'Company', [])}"
    )


def _doc(client: ErpNextClient, doctype: str, name: str) -> dict[str, Any] | None:
    return client.get(doctype, name) if name else None


def _names(client: ErpNextClient, doctype: str, filters: Sequence[Any], limit: int = 8) -> str:
    rows = list(client.list(doctype, fields=("name",), filters=filters, limit=limit))
    names = [str(r["name"]) for r in rows]
    return ", ".join(names) if names else "none"


def _account_groups(client: ErpNextClient, company: str) -> str:
    """Group accounts of the company that suit charge accounts: tax groups first, then expense groups."""
    base = [["company", "=", company], ["is_group", "=", 1]]
    names: list[str] = []
    for extra in (
        ["account_type", "=", "Tax"],
        ["root_type", "=", "Liability"],
        ["root_type", "=", "Expense"],
    ):
        for row in client.list("Account", fields=("name",), filters=[*base, extra], limit=6):
            if row["name"] not in names:
                names.append(str(row["name"]))
    return ", ".join(names[:6]) if names else "none"


def _erpnext_checks(client: ErpNextClient, settings: Settings) -> list[CheckResult]:
    d = settings.defaults
    out: list[CheckResult] = []
    add = out.append

    company = client.get("Company", d.company)
    abbr: str | None = None
    if company is None:
        add(
            CheckResult(
                "company",
                False,
                f"company {d.company!r} does not exist in ERPNext",
                f"set [defaults] company to one of: {_names(client, 'Company', [])}",
            )
        )
    else:
        abbr = str(company.get("abbr") or "")
        add(
            CheckResult(
                "company",
                True,
                f"{d.company!r} (abbreviation {abbr}, currency {company.get('default_currency')})",
            )
        )

    # warehouses
    leaf_warehouses = [["company", "=", d.company], ["is_group", "=", 0]]
    for label, wh_name, key in (
        ("warehouse", d.warehouse, "warehouse"),
        ("fba warehouse", d.fba_warehouse, "fba_warehouse"),
    ):
        if wh_name is None:
            continue
        wh = _doc(client, "Warehouse", wh_name)
        if wh is None:
            add(
                CheckResult(
                    label,
                    False,
                    f"warehouse {wh_name!r} does not exist",
                    f"set [defaults] {key} to a warehouse of {d.company!r}: "
                    f"{_names(client, 'Warehouse', leaf_warehouses)}",
                )
            )
            continue
        problems = []
        if wh.get("company") != d.company:
            problems.append(f"belongs to company {wh.get('company')!r}, not {d.company!r}")
        if int(wh.get("is_group") or 0):
            problems.append("is a group warehouse (orders need a leaf warehouse)")
        if int(wh.get("disabled") or 0):
            problems.append("is disabled")
        if problems:
            add(
                CheckResult(
                    label,
                    False,
                    f"warehouse {wh_name!r} " + " and ".join(problems),
                    f"set [defaults] {key} to a warehouse of {d.company!r}: "
                    f"{_names(client, 'Warehouse', leaf_warehouses)}",
                )
            )
        else:
            add(CheckResult(label, True, f"{wh_name!r} belongs to {d.company!r}"))

    # price list
    pl = _doc(client, "Price List", d.price_list)
    selling_lists = [["selling", "=", 1], ["enabled", "=", 1]]
    if pl is None:
        add(
            CheckResult(
                "price list",
                False,
                f"price list {d.price_list!r} does not exist",
                f"set [defaults] price_list to an enabled selling price list: "
                f"{_names(client, 'Price List', selling_lists)}",
            )
        )
    else:
        problems = []
        if not int(pl.get("selling") or 0):
            problems.append("is not a selling price list")
        if pl.get("enabled") is not None and not int(pl["enabled"]):
            problems.append("is disabled")
        if problems:
            add(
                CheckResult(
                    "price list",
                    False,
                    f"price list {d.price_list!r} " + " and ".join(problems),
                    f"tick Selling/Enabled on {d.price_list!r} in ERPNext, or set [defaults] price_list to "
                    f"one of: {_names(client, 'Price List', selling_lists)}",
                )
            )
        else:
            add(CheckResult("price list", True, f"{d.price_list!r} (selling, {pl.get('currency')})"))

    # item group (setup creates it), customer group, territory
    ig = _doc(client, "Item Group", d.item_group)
    if ig is None:
        add(
            CheckResult(
                "item group",
                False,
                f"item group {d.item_group!r} does not exist",
                SETUP_FIX + f" (it creates it under {ITEM_GROUP_ROOT!r}) or set [defaults] item_group",
            )
        )
    elif settings.items.classification_groups and not int(ig.get("is_group") or 0):
        add(
            CheckResult(
                "item group",
                False,
                f"item group {d.item_group!r} is not a group, but [items] classification_groups = true "
                "creates child groups under it",
                f"tick 'Is Group' on {d.item_group!r} in ERPNext or set classification_groups = false",
            )
        )
    else:
        add(CheckResult("item group", True, f"{d.item_group!r} exists"))
    for label, doctype, value, key in (
        ("customer group", "Customer Group", d.customer_group, "customer_group"),
        ("territory", "Territory", d.territory, "territory"),
    ):
        if _doc(client, doctype, value) is None:
            add(
                CheckResult(
                    label,
                    False,
                    f"{doctype} {value!r} does not exist",
                    f"set [defaults] {key} to one of: {_names(client, doctype, [])}",
                )
            )
        else:
            add(CheckResult(label, True, f"{value!r} exists"))

    # account group and charge accounts
    if abbr is None:
        add(
            CheckResult(
                "account group", False, "not checked: the company is missing", "fix the company first"
            )
        )
    else:
        group_name = full_account_name(d.account_group, abbr)
        group = _doc(client, "Account", group_name)
        group_ok = False
        if group is None:
            add(
                CheckResult(
                    "account group",
                    False,
                    f"account {group_name!r} does not exist",
                    f"set [defaults] account_group to a group account of {d.company!r}, e.g. "
                    f"{_account_groups(client, d.company)}",
                )
            )
        else:
            problems = []
            if not int(group.get("is_group") or 0):
                problems.append("is a ledger, not a group (accounts cannot be created under it)")
            if group.get("company") != d.company:
                problems.append(f"belongs to company {group.get('company')!r}")
            if problems:
                add(
                    CheckResult(
                        "account group",
                        False,
                        f"account {group_name!r} " + " and ".join(problems),
                        f"set [defaults] account_group to a group account of {d.company!r}, e.g. "
                        f"{_account_groups(client, d.company)}",
                    )
                )
            else:
                group_ok = True
                add(CheckResult("account group", True, f"{group_name!r} ({group.get('root_type')})"))
        wanted = [full_account_name(n, abbr) for n in charge_accounts(settings)]
        rows = {
            r["name"]: r
            for r in client.list(
                "Account",
                fields=("name", "company", "is_group", "disabled"),
                filters=[["name", "in", wanted]],
            )
        }
        missing = [n for n in wanted if n not in rows]
        wrong = [
            n
            for n, r in rows.items()
            if r.get("company") != d.company or int(r.get("is_group") or 0) or int(r.get("disabled") or 0)
        ]
        if missing:
            fix = SETUP_FIX if group_ok else "fix the account group, then " + SETUP_FIX
            add(CheckResult("charge accounts", False, f"missing: {', '.join(missing)}", fix))
        elif wrong:
            add(
                CheckResult(
                    "charge accounts",
                    False,
                    f"not usable (other company, a group, or disabled): {', '.join(sorted(wrong))}",
                    "fix them in ERPNext or name other accounts in [accounts]",
                )
            )
        else:
            add(CheckResult("charge accounts", True, f"{len(wanted)} accounts exist"))

    # custom fields
    existing = existing_custom_fields(client)
    missing_fields = [
        f"{s['dt']}.{s['fieldname']}" for s in CUSTOM_FIELDS if (s["dt"], s["fieldname"]) not in existing
    ]
    differences = custom_field_differences(client, existing)
    note = (
        ("; differing from amz2erp's definition (left as they are): " + "; ".join(differences))
        if differences
        else ""
    )
    order_id = existing.get(("Sales Order", "amazon_order_id"))
    if missing_fields:
        add(CheckResult("custom fields", False, f"missing: {', '.join(missing_fields)}{note}", SETUP_FIX))
    elif order_id is not None and int(order_id.get("unique") or 0) and settings.orders.amend_on_drift:
        add(
            CheckResult(
                "custom fields",
                False,
                "Sales Order.amazon_order_id is unique, so an amendment cannot carry the order id (the cancelled "
                "original keeps it), but [orders] amend_on_drift = true amends orders" + note,
                "set [orders] amend_on_drift = false, or untick Unique on Sales Order.amazon_order_id "
                "(Customize Form)",
            )
        )
    else:
        add(CheckResult("custom fields", True, f"{len(CUSTOM_FIELDS)} fields exist{note}"))

    # currencies: an order in another currency than the company's needs a rate (recording 049)
    if company is not None:
        company_currency = str(company.get("default_currency") or "")
        for currency in sorted(
            {m.currency for m in settings.amazon.resolved_marketplaces()} - {company_currency}
        ):
            pair = f"{currency}:{company_currency}"
            label = f"exchange rate {currency}"
            if pair in settings.orders.exchange_rates:
                add(CheckResult(label, True, f"{pair} from [orders.exchange_rates]"))
                continue
            record = client.find(
                "Currency Exchange",
                [["from_currency", "=", currency], ["to_currency", "=", company_currency]],
            )
            if record is not None:
                add(
                    CheckResult(
                        label, True, f"ERPNext has a Currency Exchange {currency} to {company_currency}"
                    )
                )
            else:
                add(
                    CheckResult(
                        label,
                        False,
                        f"orders in {currency} need a rate to {company_currency}, and ERPNext has no "
                        f"Currency Exchange record {currency} to {company_currency} (without one, and "
                        "without internet access, ERPNext refuses the Sales Order)",
                        f"create a Currency Exchange {currency} to {company_currency} in ERPNext, or set "
                        f'[orders.exchange_rates] "{pair}" = <rate>',
                    )
                )

    # placeholder item
    if settings.items.unknown_sku == "placeholder":
        code = settings.items.placeholder_item
        if client.exists("Item", code):
            add(CheckResult("placeholder item", True, f"{code!r} exists"))
        else:
            add(CheckResult("placeholder item", False, f"item {code!r} does not exist", SETUP_FIX))
    return out


def _amazon_checks(amazon: AmazonParticipations, settings: Settings) -> list[CheckResult]:
    out: list[CheckResult] = []
    try:
        participations = amazon.marketplace_participations()
    except AmazonAuthError as exc:
        return [
            CheckResult(
                "amazon credentials",
                False,
                f"Amazon refused the credentials: {exc}",
                "check [amazon] refresh_token, lwa_app_id and lwa_client_secret (or re-authorise the "
                "app in Seller Central and use the new refresh token)",
                ExitCode.AUTH,
            )
        ]
    except ConfigError as exc:
        return [CheckResult("amazon credentials", False, str(exc), "fix [amazon] in the config file")]
    except AmazonError as exc:
        return [
            CheckResult(
                "amazon credentials",
                False,
                f"Amazon could not be asked: {exc}",
                "check the network and [amazon] region/endpoint, then retry",
                exc.exit_code,
            )
        ]
    out.append(CheckResult("amazon credentials", True, plural(len(participations), "marketplace participation")))

    participating: dict[str, dict[str, Any]] = {}
    for p in participations:
        mid = str(p.get("marketplace_id") or p.get("marketplaceId") or "")
        if mid and p.get("participating", p.get("isParticipating", True)):
            participating[mid] = p
    available = ", ".join(sorted(mp.BY_ID[m].code if m in mp.BY_ID else m for m in participating)) or "none"
    for market in settings.amazon.resolved_marketplaces():
        label = f"marketplace {market.code}"
        if market.region != settings.amazon.region:
            out.append(
                CheckResult(
                    label,
                    False,
                    f"{market.code} ({market.marketplace_id}) is in region {market.region}, but "
                    f"[amazon] region = {settings.amazon.region}",
                    "use one config per region, or set [amazon] region",
                )
            )
        elif market.marketplace_id not in participating:
            out.append(
                CheckResult(
                    label,
                    False,
                    f"the seller does not participate in {market.code} ({market.marketplace_id}); "
                    f"participating: {available}",
                    f"remove {market.code} from [amazon] marketplaces",
                )
            )
        else:
            out.append(CheckResult(label, True, f"{market.code} ({market.marketplace_id}) participating"))
    return out


__all__ = [
    "CUSTOM_FIELDS",
    "CheckResult",
    "SetupAction",
    "apply_setup",
    "charge_accounts",
    "checks_exit_code",
    "custom_field_differences",
    "full_account_name",
    "placeholder_keys",
    "plan_setup",
    "run_checks",
    "section_placeholders",
]
