"""`amz2erp check`: is the configuration right for the live ERPNext site (and Amazon account)?

`run_checks` runs, in dependency order: the template placeholders, ERPNext reachability and credentials, then
every check of the ERPNEXT_CHECKS registry over one shared `CheckContext`, then the Amazon credentials and
marketplaces. Every failed check says what is wrong and what to do, and carries the exit code it means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from amz2erp.amazon import marketplaces as mp
from amz2erp.config import Settings, placeholder_keys
from amz2erp.erpnext.client import ErpNextClient
from amz2erp.erpnext.schema import (
    BANK_ACCOUNT_TYPES,
    ITEM_GROUP_ROOT,
    Doctype,
    account_group_problems,
    charge_accounts,
    custom_field_differences,
    custom_fields_for,
    describe_account_group,
    existing_custom_fields,
    full_account_name,
    settlement_account_specs,
)
from amz2erp.errors import (
    AmazonAuthError,
    AmazonError,
    ConfigError,
    ErpNextAuthError,
    ErpNextConfigError,
    ErpNextError,
    ErpNextUnavailableError,
    ExitCode,
)
from amz2erp.ui import plural

SETUP_FIX = "run `amz2erp setup`"


@dataclass(frozen=True)
class CheckResult:
    """One ✓/✗ line of `check`: what was checked, the finding, and for a failure what to do."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    code: ExitCode = ExitCode.CONFIG  # the exit code a failure means (3 credentials, 4 unreachable, 2 config)


def passed(name: str, detail: str) -> CheckResult:
    """A ✓ line."""
    return CheckResult(name, True, detail)


def failed(name: str, detail: str, fix: str | None, code: ExitCode = ExitCode.CONFIG) -> CheckResult:
    """A ✗ line; ``code`` is the exit code it means (most failures are configuration: 2)."""
    return CheckResult(name, False, detail, fix, code)


def checks_exit_code(results: Sequence[CheckResult]) -> ExitCode:
    """0 when every check passed, else the code of the first failure: checks run in dependency order
    (placeholders, reachability, credentials, masters), so the first failure is the one to fix first."""
    for r in results:
        if not r.ok:
            return r.code
    return ExitCode.OK


class AmazonParticipations(Protocol):
    def marketplace_participations(self) -> list[dict[str, Any]]: ...


def list_names(client: ErpNextClient, doctype: str, filters: Sequence[Any], limit: int = 8) -> str:
    """Up to ``limit`` names of ``doctype`` matching ``filters``, for a fix that says what to choose from."""
    rows = list(client.list(doctype, fields=("name",), filters=filters, limit=limit))
    names = [str(r["name"]) for r in rows]
    return ", ".join(names) if names else "none"


# --- the ERPNext master checks: a registry over one context ----------------------------------------------------


@dataclass
class CheckContext:
    """What the ERPNext checks share: the client and settings, and what earlier checks found out (a check
    that depends on an earlier one reads it here instead of asking ERPNext again)."""

    client: ErpNextClient
    settings: Settings
    company: dict[str, Any] | None = None  # set by check_company
    account_group_ok: bool = False  # set by check_account_group
    order_id_field: bool = False  # set by check_custom_fields: Sales Order.amazon_order_id exists
    today: date | None = None  # None: the real date (tests pin it)

    @property
    def abbr(self) -> str | None:
        return None if self.company is None else str(self.company.get("abbr") or "")

    def doc(self, doctype: str, name: str | None) -> dict[str, Any] | None:
        """The full document, or None (also for an empty name)."""
        return self.client.get(doctype, name) if name else None

    def names(self, doctype: str, filters: Sequence[Any] = ()) -> str:
        return list_names(self.client, doctype, filters)


Check = Callable[[CheckContext], Iterable[CheckResult]]


def check_company(ctx: CheckContext) -> Iterable[CheckResult]:
    company = ctx.company = ctx.client.get(Doctype.COMPANY, ctx.settings.defaults.company)
    name = ctx.settings.defaults.company
    if company is None:
        yield failed(
            "company",
            f"company {name!r} does not exist in ERPNext",
            f"set [defaults] company to one of: {ctx.names(Doctype.COMPANY)}",
        )
    else:
        yield passed("company", f"{name!r} (abbreviation {ctx.abbr}, currency {company.get('default_currency')})")


def check_warehouses(ctx: CheckContext) -> Iterable[CheckResult]:
    d = ctx.settings.defaults
    for label, wh_name, key in (
        ("warehouse", d.warehouse, "warehouse"),
        ("fba warehouse", d.fba_warehouse, "fba_warehouse"),
    ):
        if wh_name is None:
            continue
        wh = ctx.doc(Doctype.WAREHOUSE, wh_name)
        problems = []
        if wh is None:
            problems.append("does not exist")
        else:
            if wh.get("company") != d.company:
                problems.append(f"belongs to company {wh.get('company')!r}, not {d.company!r}")
            if int(wh.get("is_group") or 0):
                problems.append("is a group warehouse (orders need a leaf warehouse)")
            if int(wh.get("disabled") or 0):
                problems.append("is disabled")
        if problems:
            leaves = ctx.names(Doctype.WAREHOUSE, [["company", "=", d.company], ["is_group", "=", 0]])
            yield failed(
                label,
                f"warehouse {wh_name!r} " + " and ".join(problems),
                f"set [defaults] {key} to a warehouse of {d.company!r}: {leaves}",
            )
        else:
            yield passed(label, f"{wh_name!r} belongs to {d.company!r}")


def check_price_list(ctx: CheckContext) -> Iterable[CheckResult]:
    name = ctx.settings.defaults.price_list
    pl = ctx.doc(Doctype.PRICE_LIST, name)
    selling = [["selling", "=", 1], ["enabled", "=", 1]]
    if pl is None:
        yield failed(
            "price list",
            f"price list {name!r} does not exist",
            f"set [defaults] price_list to an enabled selling price list: {ctx.names(Doctype.PRICE_LIST, selling)}",
        )
        return
    problems = []
    if not int(pl.get("selling") or 0):
        problems.append("is not a selling price list")
    if pl.get("enabled") is not None and not int(pl["enabled"]):
        problems.append("is disabled")
    if problems:
        yield failed(
            "price list",
            f"price list {name!r} " + " and ".join(problems),
            f"tick Selling/Enabled on {name!r} in ERPNext, or set [defaults] price_list to "
            f"one of: {ctx.names(Doctype.PRICE_LIST, selling)}",
        )
    else:
        yield passed("price list", f"{name!r} (selling, {pl.get('currency')})")


def check_item_group(ctx: CheckContext) -> Iterable[CheckResult]:
    name = ctx.settings.defaults.item_group
    ig = ctx.doc(Doctype.ITEM_GROUP, name)
    if ig is None:
        yield failed(
            "item group",
            f"item group {name!r} does not exist",
            SETUP_FIX + f" (it creates it under {ITEM_GROUP_ROOT!r}) or set [defaults] item_group",
        )
    elif ctx.settings.items.classification_groups and not int(ig.get("is_group") or 0):
        yield failed(
            "item group",
            f"item group {name!r} is not a group, but [items] classification_groups = true "
            "creates child groups under it",
            f"tick 'Is Group' on {name!r} in ERPNext or set classification_groups = false",
        )
    else:
        yield passed("item group", f"{name!r} exists")


def check_customer_group_and_territory(ctx: CheckContext) -> Iterable[CheckResult]:
    d = ctx.settings.defaults
    for label, doctype, value, key in (
        ("customer group", Doctype.CUSTOMER_GROUP, d.customer_group, "customer_group"),
        ("territory", Doctype.TERRITORY, d.territory, "territory"),
    ):
        if ctx.doc(doctype, value) is None:
            yield failed(
                label, f"{doctype} {value!r} does not exist", f"set [defaults] {key} to one of: {ctx.names(doctype)}"
            )
        else:
            yield passed(label, f"{value!r} exists")


def check_account_group(ctx: CheckContext) -> Iterable[CheckResult]:
    if ctx.abbr is None:
        yield failed("account group", "not checked: the company is missing", "fix the company first")
        return
    d = ctx.settings.defaults
    group_name = full_account_name(d.account_group, ctx.abbr)
    group = ctx.doc(Doctype.ACCOUNT, group_name)
    problems = account_group_problems(group, d.company)
    if problems:
        yield failed(
            "account group",
            describe_account_group(group_name, problems),
            f"set [defaults] account_group to a group account of {d.company!r}, e.g. "
            f"{_account_groups(ctx.client, d.company)}",
        )
    else:
        ctx.account_group_ok = True
        yield passed("account group", f"{group_name!r} ({(group or {}).get('root_type')})")


def check_accounts(ctx: CheckContext) -> Iterable[CheckResult]:
    """The configured charge accounts exist, as ledgers of the company, enabled."""
    if ctx.abbr is None:
        return  # the account group check already says the company is missing
    abbr, company = ctx.abbr, ctx.settings.defaults.company
    wanted = [full_account_name(n, abbr) for n in charge_accounts(ctx.settings)]
    rows = {
        r["name"]: r
        for r in ctx.client.list(
            Doctype.ACCOUNT, fields=("name", "company", "is_group", "disabled"), filters=[["name", "in", wanted]]
        )
    }
    missing = [n for n in wanted if n not in rows]
    wrong = [
        n
        for n, r in rows.items()
        if r.get("company") != company or int(r.get("is_group") or 0) or int(r.get("disabled") or 0)
    ]
    if missing:
        fix = SETUP_FIX if ctx.account_group_ok else "fix the account group, then " + SETUP_FIX
        yield failed("charge accounts", f"missing: {', '.join(missing)}", fix)
    elif wrong:
        yield failed(
            "charge accounts",
            f"not usable (other company, a group, or disabled): {', '.join(sorted(wrong))}",
            "fix them in ERPNext or name other accounts in [accounts]",
        )
    else:
        yield passed("charge accounts", f"{len(wanted)} accounts exist")


def check_custom_fields(ctx: CheckContext) -> Iterable[CheckResult]:
    existing = existing_custom_fields(ctx.client)
    wanted = custom_fields_for(ctx.settings)
    missing = [f"{s['dt']}.{s['fieldname']}" for s in wanted if (s["dt"], s["fieldname"]) not in existing]
    differences = custom_field_differences(ctx.client, existing)
    note = ("; differing from amz2erp's definition (left as they are): " + "; ".join(differences)) if differences else ""
    order_id = existing.get((Doctype.SALES_ORDER, "amazon_order_id"))
    ctx.order_id_field = order_id is not None
    if missing:
        yield failed("custom fields", f"missing: {', '.join(missing)}{note}", SETUP_FIX)
    elif order_id is not None and int(order_id.get("unique") or 0) and ctx.settings.orders.amend_on_drift:
        yield failed(
            "custom fields",
            "Sales Order.amazon_order_id is unique, so an amendment cannot carry the order id (the cancelled "
            "original keeps it), but [orders] amend_on_drift = true amends orders" + note,
            "set [orders] amend_on_drift = false, or untick Unique on Sales Order.amazon_order_id "
            "(Customize Form)",
        )
    else:
        yield passed("custom fields", f"{len(wanted)} fields exist{note}")


def check_exchange_rates(ctx: CheckContext) -> Iterable[CheckResult]:
    """An order in another currency than the company's needs a rate: without a Currency Exchange record (and
    without internet access) ERPNext refuses the Sales Order."""
    if ctx.company is None:
        return
    company_currency = str(ctx.company.get("default_currency") or "")
    settings = ctx.settings
    for currency in sorted({m.currency for m in settings.amazon.resolved_marketplaces()} - {company_currency}):
        pair = f"{currency}:{company_currency}"
        label = f"exchange rate {currency}"
        if pair in settings.orders.exchange_rates:
            yield passed(label, f"{pair} from [orders.exchange_rates]")
            continue
        record = ctx.client.find(
            Doctype.CURRENCY_EXCHANGE, [["from_currency", "=", currency], ["to_currency", "=", company_currency]]
        )
        if record is not None:
            yield passed(label, f"ERPNext has a Currency Exchange {currency} to {company_currency}")
        else:
            yield failed(
                label,
                f"orders in {currency} need a rate to {company_currency}, and ERPNext has no "
                f"Currency Exchange record {currency} to {company_currency} (without one, and "
                "without internet access, ERPNext refuses the Sales Order)",
                f"create a Currency Exchange {currency} to {company_currency} in ERPNext, or set "
                f'[orders.exchange_rates] "{pair}" = <rate>',
            )


def check_placeholder_item(ctx: CheckContext) -> Iterable[CheckResult]:
    if ctx.settings.items.unknown_sku != "placeholder":
        return
    code = ctx.settings.items.placeholder_item
    if ctx.client.exists(Doctype.ITEM, code):
        yield passed("placeholder item", f"{code!r} exists")
    else:
        yield failed("placeholder item", f"item {code!r} does not exist", SETUP_FIX)


def check_settlement_bank_account(ctx: CheckContext) -> Iterable[CheckResult]:
    """The Bank/Cash ledger Amazon pays into: setup never invents it (it is the user's real bank account)."""
    s = ctx.settings.settlements
    if not s.bank_account:
        yield passed("settlements", "[settlements] bank_account is not set: sync-settlements can read and "
                     "--dry-run settlements, not post them")
        return
    if ctx.abbr is None:
        return  # the company check already failed
    company = ctx.settings.defaults.company
    bank = full_account_name(s.bank_account, ctx.abbr)
    row = ctx.doc(Doctype.ACCOUNT, bank)
    ledgers = ctx.names(Doctype.ACCOUNT, [["company", "=", company], ["is_group", "=", 0],
                                          ["account_type", "in", list(BANK_ACCOUNT_TYPES)]])
    fix = f"create the Bank account Amazon pays into in ERPNext, or set [settlements] bank_account to one of: {ledgers}"
    if row is None:
        yield failed("settlement bank account", f"account {bank!r} does not exist", fix)
        return
    problems = _account_problems(row, company)
    if row.get("account_type") not in BANK_ACCOUNT_TYPES:
        problems.append(f"is of type {row.get('account_type') or 'none'!r}, not Bank or Cash")
    if problems:
        yield failed("settlement bank account", f"account {bank!r} " + " and ".join(problems), fix)
    else:
        yield passed("settlement bank account", f"{bank!r} ({row.get('account_type')})")


def check_settlement_accounts(ctx: CheckContext) -> Iterable[CheckResult]:
    """The accounts a settlement books to (categories, clearing, suspense) exist as usable ledgers."""
    if not ctx.settings.settlements.bank_account or ctx.abbr is None:
        return
    company = ctx.settings.defaults.company
    specs = settlement_account_specs(ctx.settings, ctx.abbr)
    rows = {r["name"]: r for r in ctx.client.list(Doctype.ACCOUNT, fields=("name", "company", "is_group", "disabled"),
                                                  filters=[["name", "in", [x.name for x in specs]]])}
    missing = [x.name for x in specs if x.name not in rows]
    wrong = sorted(n for n, r in rows.items()
                   if r.get("company") != company or int(r.get("is_group") or 0) or int(r.get("disabled") or 0))
    if missing:
        yield failed("settlement accounts", f"missing: {', '.join(missing)}", SETUP_FIX)
    elif wrong:
        yield failed("settlement accounts", f"not usable (other company, a group, or disabled): {', '.join(wrong)}",
                     "fix them in ERPNext or name other accounts in [settlements.accounts]")
    else:
        yield passed("settlement accounts", f"{len(specs)} accounts exist")


# --- invoice mode ----------------------------------------------------------------------------------------------

# How far back sync-settlements reaches by default: Amazon keeps settlement reports for 90 days.
SETTLEMENT_REACH_DAYS = 90


def _account_problems(row: dict[str, Any] | None, company: str, *, account_type: str | None = None,
                      root_type: str | None = None, currency: str | None = None,
                      not_types: Sequence[str] = ()) -> list[str]:
    """Why ``row`` (an Account, or None) cannot take the rows invoice mode books to it; empty when it can."""
    if row is None:
        return ["does not exist"]
    problems = []
    if row.get("company") != company:
        problems.append(f"belongs to company {row.get('company')!r}")
    if int(row.get("is_group") or 0):
        problems.append("is a group")
    if int(row.get("disabled") or 0):
        problems.append("is disabled")
    if account_type is not None and row.get("account_type") != account_type:
        problems.append(f"is of type {row.get('account_type') or 'none'!r}, not {account_type!r}")
    if row.get("account_type") in not_types:
        problems.append(f"is of type {row.get('account_type')!r} (it would need a party on every row)")
    if root_type is not None and row.get("root_type") and row.get("root_type") != root_type:
        problems.append(f"is an {row.get('root_type')} account, not {root_type}")
    if currency is not None and row.get("account_currency") and row.get("account_currency") != currency:
        problems.append(f"is in {row.get('account_currency')}, not the company's {currency}")
    return problems


def _company_account(ctx: CheckContext, label: str, field: str, what: str, **rules: Any) -> CheckResult:
    """One of the company's default accounts (``field`` on Company) that invoice mode's documents use."""
    assert ctx.company is not None
    company = ctx.settings.defaults.company
    name = str(ctx.company.get(field) or "")
    fix = f"set it on Company {company!r} (Accounts tab) to a usable ledger"
    if not name:
        return failed(label, f"Company {company!r} has no {field.replace('_', ' ')}: {what}", fix)
    problems = _account_problems(ctx.doc(Doctype.ACCOUNT, name), company, **rules)
    if problems:
        return failed(label, f"{field.replace('_', ' ')} {name!r} " + " and ".join(problems), fix)
    return passed(label, f"{name!r}")


def _fiscal_gaps(years: Sequence[dict[str, Any]], start: date, end: date) -> list[tuple[date, date]]:
    """The stretches of [start, end] no year covers (``years``: year_start_date / year_end_date rows)."""
    spans = sorted((date.fromisoformat(str(y["year_start_date"])[:10]), date.fromisoformat(str(y["year_end_date"])[:10]))
                   for y in years)
    gaps: list[tuple[date, date]] = []
    day = start
    for lo, hi in spans:
        if day > end:
            break
        if hi < day:
            continue
        if lo > day:
            gaps.append((day, min(end, lo - timedelta(days=1))))
        day = max(day, hi + timedelta(days=1))
    if day <= end:
        gaps.append((day, end))
    return gaps


def check_invoice_mode(ctx: CheckContext) -> Iterable[CheckResult]:
    """What the Sales Invoices, Credit Notes and receipt entries of ``[settlements] mode = "invoice"`` need:
    the company's income and receivable accounts, a clearing account without a party, an exchange gain/loss
    account when a marketplace sells in another currency, fiscal years over the dates they post on, and with
    ``[orders] deliver`` on, what stock needs (warehouses, negative stock, stock items)."""
    settings = ctx.settings
    if settings.settlements.mode != "invoice" or ctx.company is None or ctx.abbr is None:
        return
    company = settings.defaults.company
    currency = str(ctx.company.get("default_currency") or "")
    yield _company_account(ctx, "invoice income account", "default_income_account",
                           "the invoices' lines are booked to it (unless an item names its own)", root_type="Income")
    yield _company_account(ctx, "invoice receivable account", "default_receivable_account",
                           "the invoices' customers owe it, the receipt entries clear it",
                           account_type="Receivable", currency=currency)
    clearing = full_account_name(settings.settlements.clearing_account, ctx.abbr)
    problems = _account_problems(ctx.doc(Doctype.ACCOUNT, clearing), company, currency=currency,
                                 not_types=("Receivable", "Payable"))
    if problems:
        if problems != ["does not exist"]:
            fix = "set [settlements] clearing_account to an asset ledger of the company in its currency"
        elif settings.settlements.bank_account:
            fix = SETUP_FIX
        else:  # setup creates the settlement accounts once the bank account is known
            fix = "set [settlements] bank_account, then " + SETUP_FIX
        yield failed("invoice clearing account", f"{clearing!r} " + " and ".join(problems), fix)
    else:
        yield passed("invoice clearing account", f"{clearing!r}")
    foreign = sorted({m.currency for m in settings.amazon.resolved_marketplaces()} - {currency})
    if foreign:
        yield _company_account(ctx, "exchange gain/loss account", "exchange_gain_loss_account",
                               f"receipts of {', '.join(foreign)} settlements book the difference between the "
                               "invoices' rates and the settlement's to it", currency=currency)
    yield from _check_fiscal_years(ctx)
    if settings.orders.deliver != "none":
        yield from _check_stock(ctx)


def _check_fiscal_years(ctx: CheckContext) -> Iterable[CheckResult]:
    """Every invoice, credit note and entry posts on a settlement date; ERPNext refuses one outside an active
    Fiscal Year of the company (on submit, so a run would fail half-way)."""
    today = ctx.today or datetime.now(timezone.utc).date()
    start = ctx.settings.sync.after or today - timedelta(days=SETTLEMENT_REACH_DAYS)
    company = ctx.settings.defaults.company
    years = []
    for row in ctx.client.list(Doctype.FISCAL_YEAR, fields=("name", "year_start_date", "year_end_date", "disabled")):
        if int(row.get("disabled") or 0) or not row.get("year_start_date") or not row.get("year_end_date"):
            continue
        if str(row["year_end_date"])[:10] < start.isoformat() or str(row["year_start_date"])[:10] > today.isoformat():
            continue
        doc = ctx.client.get(Doctype.FISCAL_YEAR, str(row["name"])) or row
        companies = [c.get("company") for c in doc.get("companies") or []]
        if not companies or company in companies:
            years.append(row)
    gaps = _fiscal_gaps(years, start, today)
    reach = f"{start.isoformat()}–{today.isoformat()}"
    if gaps:
        shown = ", ".join(f"{a.isoformat()}–{b.isoformat()}" for a, b in gaps[:3])
        yield failed("fiscal years", f"no active Fiscal Year of {company!r} covers {shown} (settlements post "
                     f"from {reach})", "create the Fiscal Years in ERPNext (Accounting > Fiscal Year), or set "
                     "[sync] after to a date they cover")
    else:
        yield passed("fiscal years", f"{len(years)} cover {reach}")


def _check_stock(ctx: CheckContext) -> Iterable[CheckResult]:
    """With [orders] deliver on, shipped quantities leave the warehouses (which check_warehouses verified)."""
    settings = ctx.settings
    try:
        stock = ctx.client.get(Doctype.STOCK_SETTINGS, Doctype.STOCK_SETTINGS)
    except ErpNextError as exc:  # reported, not fatal: stock problems are per order, never a run failure
        stock, unread = None, str(exc)
    else:
        unread = "" if stock is not None else "not found"
    if stock is None:
        negative = f"Stock Settings could not be read ({unread})"
    elif int(stock.get("allow_negative_stock") or 0):
        negative = "negative stock allowed: every shipment leaves stock, even beyond what ERPNext holds"
    else:
        negative = ("negative stock not allowed: a shipment beyond ERPNext's stock is reported per order and "
                    "its invoice still posts")
    warehouses = ", ".join(repr(w) for w in dict.fromkeys(
        w for w in (settings.defaults.warehouse, settings.defaults.fba_warehouse) if w))
    yield passed("stock settings", f"[orders] deliver = {settings.orders.deliver!r} from {warehouses}; {negative}")
    group = settings.defaults.item_group
    counts = {flag: int(ctx.client.get_method("frappe.client.get_count", doctype=Doctype.ITEM, filters=[
        ["item_group", "=", group], ["is_stock_item", "=", flag], ["disabled", "=", 0]]) or 0) for flag in (1, 0)}
    note = "" if settings.items.is_stock_item else (
        "; [items] is_stock_item = false: new items are created without stock, so nothing will move")
    yield passed("stock items", f"item group {group!r}: {plural(counts[1], 'stock item')}, {counts[0]} without "
                 f"stock (skipped quietly){note}")


def check_duplicate_orders(ctx: CheckContext) -> Iterable[CheckResult]:
    """A warning, not a failure: Amazon order ids that more than one live Sales Order carries (left by another
    connector, or by hand). amz2erp never adds to them, but the books count those orders twice. One grouped
    query."""
    if not ctx.order_id_field:
        return
    repeated = ctx.client.repeated(Doctype.SALES_ORDER, "amazon_order_id",
                                   filters=[["amazon_order_id", "is", "set"], ["docstatus", "<", 2]])
    if not repeated:
        yield passed("duplicate orders", "no Amazon order id has more than one live Sales Order")
        return
    shown = ", ".join(f"{oid} ({n}×)" for oid, n in list(repeated.items())[:5]) + (" …" if len(repeated) > 5 else "")
    yield passed("duplicate orders", f"warning: {plural(len(repeated), 'Amazon order id')} with more than one live "
                 f"Sales Order: {shown}; `amz2erp audit` lists them by month with what to do")


# In dependency order: the company first (later checks read ctx.company), the account group before the
# charge accounts (their fix depends on it).
ERPNEXT_CHECKS: tuple[Check, ...] = (
    check_company,
    check_warehouses,
    check_price_list,
    check_item_group,
    check_customer_group_and_territory,
    check_account_group,
    check_accounts,
    check_custom_fields,
    check_duplicate_orders,
    check_exchange_rates,
    check_placeholder_item,
    check_settlement_bank_account,
    check_settlement_accounts,
    check_invoice_mode,
)


def erpnext_checks(client: ErpNextClient, settings: Settings, *, today: date | None = None) -> list[CheckResult]:
    """Every check of the registry, in order, over one context."""
    ctx = CheckContext(client, settings, today=today)
    return [result for check in ERPNEXT_CHECKS for result in check(ctx)]


def _account_groups(client: ErpNextClient, company: str) -> str:
    """Group accounts of the company that suit charge accounts: tax groups first, then expense groups."""
    base = [["company", "=", company], ["is_group", "=", 1]]
    names: list[str] = []
    for extra in (
        ["account_type", "=", "Tax"],
        ["root_type", "=", "Liability"],
        ["root_type", "=", "Expense"],
    ):
        for row in client.list(Doctype.ACCOUNT, fields=("name",), filters=[*base, extra], limit=6):
            if row["name"] not in names:
                names.append(str(row["name"]))
    return ", ".join(names[:6]) if names else "none"


# --- the whole `check` --------------------------------------------------------------------------------------------


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
    say = progress or (lambda message: None)

    placeholders = placeholder_keys(settings)
    if placeholders:
        results.append(failed(
            "placeholders",
            "still the example values of the `init` template: " + ", ".join(placeholders),
            "fill them in with your own values (the comments in the config file say where they come from)",
        ))
    erp_placeholders = [p for p in placeholders if p.startswith("[erpnext]")]
    if erp_placeholders:
        results.append(failed("erpnext reachable", "not checked: " + ", ".join(erp_placeholders) + " not filled in",
                              "fill in [erpnext] url, api_key and api_secret"))
    else:
        results.extend(_erpnext_part(client, settings, say))

    if amazon is not None:
        amazon_placeholders = [p for p in placeholders if p.startswith("[amazon]")]
        if amazon_placeholders:
            results.append(failed("amazon credentials", "not checked: " + ", ".join(amazon_placeholders) +
                                  " not filled in", "fill in [amazon] refresh_token, lwa_app_id and lwa_client_secret"))
        else:
            say(f"Asking Amazon ({settings.amazon.region}) for the seller's marketplaces (Login with Amazon first)…")
            results.extend(_amazon_checks(amazon, settings))
    return results


def _erpnext_part(client: ErpNextClient, settings: Settings, say: Callable[[str], None]) -> Iterable[CheckResult]:
    """Reachability, then credentials, then the registry; a failure of the first two ends the part (nothing
    after them could be asked)."""
    erp = settings.erpnext
    say(f"Asking ERPNext at {erp.url} for ping…")
    try:
        client.probe()
    except ErpNextConfigError as exc:
        yield failed("erpnext reachable", str(exc), "fix [erpnext] url", ExitCode.CONFIG)
        return
    except ErpNextError as exc:
        yield failed("erpnext reachable", str(exc),
                     "check [erpnext] url (scheme, host, port), that the site is up and this host can reach it",
                     exc.exit_code)
        return
    yield passed("erpnext reachable", f"{erp.url} answers")
    say("Asking ERPNext who the API token belongs to…")
    try:
        user = client.logged_user()
    except ErpNextAuthError as exc:
        yield failed("erpnext credentials", f"ERPNext refused the API token: {exc}",
                     "set [erpnext] api_key / api_secret (or AMZ2ERP_ERPNEXT_API_KEY / _SECRET) to the "
                     "keys of an enabled user (User > API Access > Generate Keys)", ExitCode.AUTH)
        return
    except ErpNextError as exc:
        yield failed("erpnext credentials", f"could not verify the API token: {exc}", None, exc.exit_code)
        return
    yield passed("erpnext credentials", f"logged in as {user}")
    say(f"Reading the ERPNext masters of {settings.defaults.company!r}…")
    try:
        # all or nothing: a query refused half-way reports the refusal, not half a list of checks
        masters = erpnext_checks(client, settings)
    except ErpNextAuthError as exc:
        yield failed("erpnext permissions", str(exc),
                     "give the API user read access to the masters (e.g. roles System Manager, "
                     "Accounts Manager, Stock Manager, Sales Manager)", ExitCode.AUTH)
    except ErpNextUnavailableError as exc:
        yield failed("erpnext available", str(exc), "retry later", ExitCode.UNAVAILABLE)
    except ErpNextError as exc:
        yield failed("erpnext checks", f"ERPNext refused a check query: {exc}", None, exc.exit_code)
    else:
        yield from masters


def _amazon_checks(amazon: AmazonParticipations, settings: Settings) -> list[CheckResult]:
    name = "amazon credentials"
    try:
        participations = amazon.marketplace_participations()
    except AmazonAuthError as exc:
        return [failed(name, f"Amazon refused the credentials: {exc}",
                       "check [amazon] refresh_token, lwa_app_id and lwa_client_secret (or re-authorise the "
                       "app in Seller Central and use the new refresh token)", ExitCode.AUTH)]
    except ConfigError as exc:
        return [failed(name, str(exc), "fix [amazon] in the config file")]
    except AmazonError as exc:
        return [failed(name, f"Amazon could not be asked: {exc}",
                       "check the network and [amazon] region/endpoint, then retry", exc.exit_code)]
    out = [passed(name, plural(len(participations), "marketplace participation"))]

    participating: dict[str, dict[str, Any]] = {}
    for p in participations:
        mid = str(p.get("marketplace_id") or p.get("marketplaceId") or "")
        if mid and p.get("participating", p.get("isParticipating", True)):
            participating[mid] = p
    available = ", ".join(sorted(mp.BY_ID[m].code if m in mp.BY_ID else m for m in participating)) or "none"
    for market in settings.amazon.resolved_marketplaces():
        label = f"marketplace {market.code}"
        if market.region != settings.amazon.region:
            out.append(failed(label, f"{market.code} ({market.marketplace_id}) is in region {market.region}, but "
                                     f"[amazon] region = {settings.amazon.region}",
                              "use one config per region, or set [amazon] region"))
        elif market.marketplace_id not in participating:
            out.append(failed(label, f"the seller does not participate in {market.code} ({market.marketplace_id}); "
                                     f"participating: {available}",
                              f"remove {market.code} from [amazon] marketplaces"))
        else:
            out.append(passed(label, f"{market.code} ({market.marketplace_id}) participating"))
    return out


__all__ = [
    "ERPNEXT_CHECKS",
    "CheckContext",
    "CheckResult",
    "checks_exit_code",
    "erpnext_checks",
    "list_names",
    "run_checks",
]
