"""`amz2erp setup`: make ERPNext ready for amz2erp, as a plan first and then its application.

`plan_setup` reads ERPNext and lists what is missing (custom fields, charge accounts, the item group, the
placeholder item, and once [settlements] bank_account is set the settlement accounts); `apply_setup` creates
exactly that, each step idempotent, so a second plan is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from amz2erp.config import Settings
from amz2erp.erpnext.checks import list_names
from amz2erp.erpnext.client import ErpNextClient
from amz2erp.erpnext.schema import (
    ITEM_GROUP_ROOT,
    SETTLEMENT_PARENT_GROUPS,
    Doctype,
    account_base_name,
    account_group_problems,
    charge_accounts,
    custom_field_differences,
    custom_field_name,
    custom_fields_for,
    describe_account_group,
    existing_custom_fields,
    full_account_name,
    settlement_account_specs,
)
from amz2erp.errors import ConfigError, ErpNextDuplicateError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetupAction:
    """One document `setup` creates."""

    doctype: str
    name: str  # the ERPNext name the document will get
    doc: dict[str, Any] = field(compare=False)
    reason: str = ""

    def describe(self) -> str:
        what = {
            Doctype.CUSTOM_FIELD: lambda: (
                f"create custom field {self.doc['dt']}.{self.doc['fieldname']} ({self.doc['fieldtype']})"
            ),
            Doctype.ACCOUNT: lambda: (
                f"create account {self.name!r} ({self.doc.get('account_type') or 'no type'}) "
                f"under {self.doc['parent_account']!r}"
            ),
            Doctype.ITEM_GROUP: lambda: (
                f"create item group {self.name!r}{' (group)' if self.doc.get('is_group') else ''} "
                f"under {self.doc.get('parent_item_group')!r}"
            ),
            Doctype.ITEM: lambda: f"create item {self.name!r} (placeholder for unmapped SKUs)",
        }.get(self.doctype, lambda: f"create {self.doctype} {self.name!r}")()
        return what + (f": {self.reason}" if self.reason else "")


def _company(client: ErpNextClient, company: str) -> dict[str, Any] | None:
    return client.find(Doctype.COMPANY, [["name", "=", company]], fields=("name", "abbr", "default_currency"))


def plan_setup(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """What `setup` would create, in order (fields, item groups, accounts, placeholder item). Reads only.
    Raises ConfigError when [defaults] company does not exist (nothing could be set up for it)."""
    if _company(client, settings.defaults.company) is None:
        raise _missing_company(client, settings.defaults.company)
    return [
        *_plan_custom_fields(client, settings),
        *_plan_item_group(client, settings),
        *_plan_accounts(client, settings),  # after the item groups, before the placeholder item that uses one
        *_plan_settlement_accounts(client, settings),
        *_plan_placeholder_item(client, settings),
    ]


def _plan_custom_fields(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """The missing custom fields this configuration needs; one that exists with other properties is left as
    it is (with a warning)."""
    existing = existing_custom_fields(client)
    for note in custom_field_differences(client, existing):
        log.warning("custom field %s; left as it is", note)
    return [
        SetupAction(Doctype.CUSTOM_FIELD, custom_field_name(spec["dt"], spec["fieldname"]), dict(spec))
        for spec in custom_fields_for(settings)
        if (spec["dt"], spec["fieldname"]) not in existing
    ]


def _plan_item_group(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """The configured item group (and the root of the tree, if even that is missing)."""
    d = settings.defaults
    actions: list[SetupAction] = []
    if client.find(Doctype.ITEM_GROUP, [["name", "=", d.item_group]], fields=("name", "is_group")) is not None:
        return actions
    if client.find(Doctype.ITEM_GROUP, [["name", "=", ITEM_GROUP_ROOT]], fields=("name", "is_group")) is None:
        actions.append(
            SetupAction(
                Doctype.ITEM_GROUP,
                ITEM_GROUP_ROOT,
                {"item_group_name": ITEM_GROUP_ROOT, "is_group": 1, "parent_item_group": ""},
                reason="the parent of the configured item group",
            )
        )
    actions.append(
        SetupAction(
            Doctype.ITEM_GROUP,
            d.item_group,
            {
                "item_group_name": d.item_group,
                "is_group": 1 if settings.items.classification_groups else 0,
                "parent_item_group": ITEM_GROUP_ROOT,
            },
            reason="[defaults] item_group",
        )
    )
    return actions


def _plan_placeholder_item(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """The item unmapped SKUs are written with, when [items] unknown_sku = "placeholder"."""
    if settings.items.unknown_sku != "placeholder":
        return []
    code = settings.items.placeholder_item
    if client.exists(Doctype.ITEM, code):
        return []
    doc = {
        "item_code": code,
        "item_name": "Amazon SKU not mapped",
        "item_group": settings.defaults.item_group,
        "stock_uom": settings.defaults.stock_uom,
        "is_stock_item": 0,
        "is_sales_item": 1,
        "description": "Placeholder for Amazon order lines whose SKU has no ERPNext item "
        '([items] unknown_sku = "placeholder"). Map the SKU and amend the order.',
    }
    return [SetupAction(Doctype.ITEM, code, doc, reason='[items] unknown_sku = "placeholder"')]


def _plan_accounts(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """The missing charge accounts, or none (with a warning) when the company or the group is unusable."""
    d = settings.defaults
    company = _company(client, d.company)
    if company is None:
        # Planning nothing here would end in "Nothing to do" while nothing can work: refuse.
        raise _missing_company(client, d.company)
    abbr = str(company.get("abbr") or "")
    parent = full_account_name(d.account_group, abbr)
    group = client.find(Doctype.ACCOUNT, [["name", "=", parent]], fields=("name", "is_group", "company"))
    problems = account_group_problems(group, d.company)
    if problems:
        log.warning(
            "%s: not a group account of %r, so charge accounts are not planned (see `amz2erp check`)",
            describe_account_group(parent, problems),
            d.company,
        )
        return []
    wanted = {
        full_account_name(n, abbr): (account_base_name(n, abbr), t)
        for n, t in charge_accounts(settings).items()
    }
    have = {
        r["name"] for r in client.list(Doctype.ACCOUNT, fields=("name",), filters=[["name", "in", sorted(wanted)]])
    }
    return [
        SetupAction(
            Doctype.ACCOUNT,
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


def _settlement_parent(client: ErpNextClient, settings: Settings, abbr: str, root_type: str) -> str | None:
    """The group a new settlement account goes under: taxes (Liability) under [defaults] account_group, the
    others under a group of their root type (SETTLEMENT_PARENT_GROUPS first); None when there is none."""
    company = settings.defaults.company
    if root_type == "Liability":
        parent = full_account_name(settings.defaults.account_group, abbr)
        group = client.find(Doctype.ACCOUNT, [["name", "=", parent]], fields=("name", "is_group", "company"))
        return None if account_group_problems(group, company) else parent
    groups = client.list(Doctype.ACCOUNT, fields=("name", "account_name"),
                         filters=[["company", "=", company], ["is_group", "=", 1], ["root_type", "=", root_type]])
    by_base = {str(g.get("account_name") or account_base_name(str(g["name"]), abbr)): str(g["name"]) for g in groups}
    for preferred in SETTLEMENT_PARENT_GROUPS.get(root_type, ()):
        if preferred in by_base:
            return by_base[preferred]
    return sorted(by_base.values())[0] if by_base else None


def _plan_settlement_accounts(client: ErpNextClient, settings: Settings) -> list[SetupAction]:
    """The missing settlement accounts (none before [settlements] bank_account is set; the bank account itself
    is never planned: it is the user's real bank ledger)."""
    if not settings.settlements.bank_account:
        return []
    company = _company(client, settings.defaults.company)
    if company is None:
        raise _missing_company(client, settings.defaults.company)
    abbr = str(company.get("abbr") or "")
    specs = settlement_account_specs(settings, abbr)
    have = {r["name"] for r in client.list(Doctype.ACCOUNT, fields=("name",),
                                           filters=[["name", "in", [s.name for s in specs]]])}
    parents: dict[str, str | None] = {}
    actions: list[SetupAction] = []
    for spec in specs:
        if spec.name in have:
            continue
        if spec.root_type not in parents:
            parents[spec.root_type] = _settlement_parent(client, settings, abbr, spec.root_type)
        parent = parents[spec.root_type]
        if parent is None:
            log.warning("no %s group account in %r: settlement account %r is not planned (see `amz2erp check`)",
                        spec.root_type, settings.defaults.company, spec.name)
            continue
        actions.append(SetupAction(
            Doctype.ACCOUNT, spec.name,
            {"account_name": account_base_name(spec.name, abbr), "parent_account": parent,
             "company": settings.defaults.company, "is_group": 0,
             "account_type": "Tax" if spec.root_type == "Liability" and "tax" in spec.purpose else ""},
            reason=f"[settlements] {spec.purpose}",
        ))
    return actions


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


def _missing_company(client: ErpNextClient, company: str) -> ConfigError:
    return ConfigError(
        f"company {company!r} does not exist in ERPNext; set [defaults] company to one of: "
        f"{list_names(client, Doctype.COMPANY, [])}"
    )


__all__ = ["SetupAction", "apply_setup", "plan_setup"]
