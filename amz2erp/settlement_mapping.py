"""Pure mapping: a balanced :class:`Settlement` → one ERPNext v15 Journal Entry (summary mode) + a summary.

One line per category (never per order), each the negated sum of the category's rows: money Amazon paid
the seller (sales, reimbursements, a released reserve) is credited to its account, money Amazon kept (fees,
refunds, a held reserve) is debited. The bank line is the settlement's ``total-amount``: a payout debits the
bank account, a charge (negative total) credits the clearing account. Because Σ rows = total-amount (checked
first), the entry balances to the cent.

Marketplace-facilitator tax: where Amazon collects and remits the tax itself, the ``Tax`` rows the buyer
paid and the ``ItemWithheldTax`` rows that take it back belong together. When they cancel out within one
order (or one refund), the tax rows join the ``mf_tax`` category, so nothing is booked as tax the seller
owes, exactly as the Sales Orders leave that tax out.

Amounts are sent as ``debit_in_account_currency`` / ``credit_in_account_currency`` only (ERPNext derives
``debit``/``credit`` from them and the exchange rate; a row with only ``debit`` would become zero), as floats
of two-decimal values, which round-trip exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from amz2erp.amazon.settlement_report import Settlement, SettlementError, SettlementRow, currency_exponent
from amz2erp.erpnext.schema import full_account_name
from amz2erp.errors import ConfigError
from amz2erp.settlement_categories import (
    CLEARING_CATEGORIES,
    SUSPENSE_CATEGORIES,
    Category,
    CategoryTable,
)
from amz2erp.settlement_config import SettlementsSettings

__all__ = [
    "CategoryTotal",
    "JournalLine",
    "NothingToPostError",
    "OrderSettled",
    "SettlementAccounts",
    "SettlementCurrencyError",
    "SettlementEntry",
    "SettlementInvariantError",
    "SettlementSummary",
    "UnmappedRow",
    "UnmappedRowsError",
    "resolve_accounts",
    "row_categories",
    "settlement_to_journal_entry",
    "summarise",
]


class UnmappedRowsError(SettlementError):
    """``unmapped = "error"`` and the settlement has rows no category rule matches: not posted."""


class SettlementCurrencyError(SettlementError):
    """The settlement's currency is not the company's: a converted payout needs exchange handling."""


class NothingToPostError(SettlementError):
    """Every category nets to zero and the total is zero: there is no Journal Entry to write."""


class SettlementInvariantError(SettlementError):
    """The entry built does not balance or carries a non-positive amount: a bug, never posted."""


# --------------------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class SettlementAccounts:
    """Full ERPNext account names (with " - ABBR") for one company."""

    bank: str | None  # None: not configured; a payout cannot be posted
    clearing: str
    suspense: str
    cost_center: str | None  # None: the company's default cost center
    by_category: Mapping[Category, str]

    def for_category(self, category: Category) -> str:
        return self.by_category[category]


def resolve_accounts(
    settings: SettlementsSettings,
    table: CategoryTable,
    company_abbr: str,
    *,
    marketplace_facilitator_tax: str | None = None,
) -> SettlementAccounts:
    """Account names completed with the company abbreviation, as ``[accounts]`` names are.

    ``table`` already carries ``[settlements.accounts]`` (see ``SettlementsSettings.category_table``).
    ``marketplace_facilitator_tax`` is ``[accounts] marketplace_facilitator_tax``: the Sales Orders' MF tax
    account, used for ``mf_tax`` unless ``[settlements.accounts]`` names one.
    """
    clearing = full_account_name(settings.clearing_account, company_abbr)
    suspense = full_account_name(settings.suspense_account, company_abbr)
    by_category: dict[Category, str] = {}
    for category in Category:
        name = table.account_name(category)
        if category is Category.MF_TAX and marketplace_facilitator_tax and "mf_tax" not in settings.accounts:
            name = marketplace_facilitator_tax
        if name:
            by_category[category] = full_account_name(name, company_abbr)
        elif category in CLEARING_CATEGORIES:
            by_category[category] = clearing
        elif category in SUSPENSE_CATEGORIES:
            by_category[category] = suspense
        else:  # load_table refuses such a table; a hand-built one may still lack an account
            raise ConfigError(f"[settlements.accounts] {category.value}: no account for this category")
    return SettlementAccounts(
        bank=full_account_name(settings.bank_account, company_abbr) if settings.bank_account else None,
        clearing=clearing,
        suspense=suspense,
        cost_center=full_account_name(settings.cost_center, company_abbr) if settings.cost_center else None,
        by_category=by_category,
    )


# --------------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class CategoryTotal:
    category: Category
    amount_minor: int  # Σ rows with Amazon's sign (+ = to the seller)
    rows: int
    currency: str

    @property
    def amount(self) -> Decimal:
        return _dec(self.amount_minor, self.currency)


@dataclass(frozen=True)
class UnmappedRow:
    line: int
    key: str  # transaction-type|amount-type|amount-description
    amount: Decimal
    order_id: str


@dataclass(frozen=True)
class OrderSettled:
    """What one Amazon order contributed to the settlement, for the comparison with its Sales Order.

    ``charged`` is the order-side money of its Order rows (principal, shipping, gift wrap, promotions,
    seller-collected tax), which excludes marketplace-facilitator tax just as the Sales Order total does by
    default; ``mf_tax`` is that tax (add it when ``orders.marketplace_facilitator_tax = "book"``).
    ``refunded`` is the order-side money of its refund rows (negative), ``fees`` its selling/FBA fees."""

    order_id: str
    marketplace_name: str
    charged: Decimal
    mf_tax: Decimal
    refunded: Decimal
    fees: Decimal
    rows: int


@dataclass(frozen=True)
class SettlementSummary:
    settlement_id: str
    currency: str
    total: Decimal
    categories: tuple[CategoryTotal, ...]  # every category with rows, enum order (net zero included)
    unmapped: tuple[UnmappedRow, ...]
    orders: tuple[OrderSettled, ...]  # by order id
    rows: int

    def category(self, category: Category) -> CategoryTotal | None:
        return next((c for c in self.categories if c.category is category), None)


def _dec(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-currency_exponent(currency))


def _is_refund(row: SettlementRow) -> bool:
    # "Refund", "Chargeback Refund", "A-to-z Guarantee Refund" (V2) and "Refund" (transactions)
    return row.transaction_type.strip().casefold().endswith("refund")


def row_categories(settlement: Settlement, table: CategoryTable) -> list[Category]:
    """The category of every row, in row order, after the marketplace-facilitator netting."""
    cats = [table.categorize(r.transaction_type, r.amount_type, r.amount_description) for r in settlement.rows]
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, (row, cat) in enumerate(zip(settlement.rows, cats, strict=True)):
        if row.order_id and cat in (Category.TAX, Category.REFUND_TAX, Category.MF_TAX):
            groups[(row.transaction_type, row.order_id, row.adjustment_id)].append(i)
    for indexes in groups.values():
        mf = [i for i in indexes if cats[i] is Category.MF_TAX]
        taxes = [i for i in indexes if cats[i] is not Category.MF_TAX]
        if mf and taxes and sum(settlement.rows[i].amount_minor for i in indexes) == 0:
            for i in taxes:
                cats[i] = Category.MF_TAX
    return cats


def summarise(settlement: Settlement, table: CategoryTable, categories: list[Category] | None = None) -> SettlementSummary:
    """Per category: amount and rows; the unmapped rows; per order: charged, MF tax, refunded, fees."""
    cats = categories if categories is not None else row_categories(settlement, table)
    currency = settlement.currency
    amounts: dict[Category, int] = defaultdict(int)
    counts: dict[Category, int] = defaultdict(int)
    unmapped: list[UnmappedRow] = []
    orders: dict[str, dict[str, Any]] = {}
    for row, cat in zip(settlement.rows, cats, strict=True):
        amounts[cat] += row.amount_minor
        counts[cat] += 1
        if cat is Category.UNMAPPED:
            unmapped.append(UnmappedRow(row.line, row.key, row.amount, row.order_id))
        if not row.order_id or not (cat.order_side or cat.order_fee):
            continue
        o = orders.setdefault(
            row.order_id,
            {"market": row.marketplace_name, "charged": 0, "mf_tax": 0, "refunded": 0, "fees": 0, "rows": 0},
        )
        o["rows"] += 1
        o["market"] = o["market"] or row.marketplace_name
        if cat.order_fee:
            o["fees"] += row.amount_minor
        elif _is_refund(row):
            o["refunded"] += row.amount_minor
        elif cat is Category.MF_TAX:
            # The buyer-paid tax rows that MF withholding cancels are not the seller's money; neither is
            # the withholding. Only the tax the buyer paid is reported, apart.
            if row.amount_minor > 0:
                o["mf_tax"] += row.amount_minor
        else:
            o["charged"] += row.amount_minor
    return SettlementSummary(
        settlement_id=settlement.settlement_id,
        currency=currency,
        total=settlement.total,
        categories=tuple(CategoryTotal(c, amounts[c], counts[c], currency) for c in Category if counts[c]),
        unmapped=tuple(unmapped),
        orders=tuple(
            OrderSettled(
                order_id=oid,
                marketplace_name=o["market"],
                charged=_dec(o["charged"], currency),
                mf_tax=_dec(o["mf_tax"], currency),
                refunded=_dec(o["refunded"], currency),
                fees=_dec(o["fees"], currency),
                rows=o["rows"],
            )
            for oid, o in sorted(orders.items())
        ),
        rows=len(settlement.rows),
    )


# --------------------------------------------------------------------------------------------- journal entry


@dataclass(frozen=True)
class JournalLine:
    account: str
    debit_minor: int
    credit_minor: int
    remark: str
    category: Category | None  # None: the bank line


@dataclass(frozen=True)
class SettlementEntry:
    payload: dict[str, Any]  # POST /api/resource/Journal Entry (without docstatus: the writer decides)
    lines: tuple[JournalLine, ...]
    summary: SettlementSummary


def _remark(category: Category, rows: int) -> str:
    return f"{category.value} ({rows} row{'' if rows == 1 else 's'})"


def _money(minor: int, currency: str) -> float:
    return float(_dec(minor, currency))


def settlement_to_journal_entry(
    settlement: Settlement,
    table: CategoryTable,
    accounts: SettlementAccounts,
    *,
    company: str,
    company_currency: str,
    unmapped: Literal["suspense", "error"] = "suspense",
) -> SettlementEntry:
    """The Journal Entry for one settlement (summary mode), its lines and its summary.

    Raises :class:`SettlementImbalanceError` when the rows do not add up to the total,
    :class:`UnmappedRowsError` for unmapped rows under ``unmapped = "error"``, :class:`SettlementCurrencyError`
    for a settlement in another currency than the company's, ``ConfigError`` for a payout without a bank
    account, :class:`NothingToPostError` when everything nets to zero.
    """
    settlement.check_balance()
    currency = settlement.currency
    if currency != company_currency.upper():
        raise SettlementCurrencyError(
            f"settlement {settlement.settlement_id} is in {currency}, {company} books in {company_currency.upper()}: "
            "settlements in another currency are not posted yet"
        )
    cats = row_categories(settlement, table)
    summary = summarise(settlement, table, cats)
    if summary.unmapped and unmapped == "error":
        keys = sorted({u.key for u in summary.unmapped})
        shown = ", ".join(repr(k) for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        raise UnmappedRowsError(
            f"settlement {settlement.settlement_id}: {len(summary.unmapped)} row(s) match no category ({shown}); "
            "add them to [settlements.map] or set unmapped = \"suspense\""
        )

    lines: list[JournalLine] = []
    total = settlement.total_minor
    if total > 0:
        if accounts.bank is None:
            raise ConfigError("[settlements] bank_account is not set: the account Amazon pays into is required to post")
        lines.append(JournalLine(accounts.bank, total, 0, "total-amount", None))
    elif total < 0:
        lines.append(JournalLine(accounts.clearing, 0, -total, "total-amount < 0: owed to Amazon", None))
    for ct in summary.categories:
        value = -ct.amount_minor  # money to the seller is credited, money kept by Amazon debited
        if value == 0:
            continue
        lines.append(
            JournalLine(
                accounts.for_category(ct.category),
                max(value, 0),
                max(-value, 0),
                _remark(ct.category, ct.rows),
                ct.category,
            )
        )
    if not lines:
        raise NothingToPostError(f"settlement {settlement.settlement_id}: total and every category are zero")
    _check_invariants(settlement, summary, lines)

    rows: list[dict[str, Any]] = []
    for line in lines:
        row: dict[str, Any] = {"account": line.account}
        if line.debit_minor:
            row["debit_in_account_currency"] = _money(line.debit_minor, currency)
        else:
            row["credit_in_account_currency"] = _money(line.credit_minor, currency)
        if line.category is not None:
            if accounts.cost_center:
                row["cost_center"] = accounts.cost_center
            row["user_remark"] = line.remark
        rows.append(row)
    posting = settlement.deposit_date.isoformat()
    remark = (
        f"Amazon settlement {settlement.settlement_id}, {settlement.start.date().isoformat()}–"
        f"{settlement.end.date().isoformat()}, {', '.join(settlement.marketplaces) or 'Amazon'}, {currency}"
    )
    if settlement.trace_id:
        remark += f"; trace {settlement.trace_id}"
    payload: dict[str, Any] = {
        "doctype": "Journal Entry",
        "voucher_type": "Bank Entry",
        "company": company,
        "posting_date": posting,
        "cheque_no": settlement.settlement_id,
        "cheque_date": posting,
        "user_remark": remark,
        "amazon_settlement_id": settlement.settlement_id,
        "multi_currency": 0,
        "accounts": rows,
    }
    return SettlementEntry(payload=payload, lines=tuple(lines), summary=summary)


def _check_invariants(settlement: Settlement, summary: SettlementSummary, lines: list[JournalLine]) -> None:
    """Balanced, every amount positive and on one side, bank line = total, Σ categories = total."""
    problems = []
    debit = sum(line.debit_minor for line in lines)
    credit = sum(line.credit_minor for line in lines)
    if debit != credit:
        problems.append(f"debits {debit} ≠ credits {credit}")
    if any((line.debit_minor > 0) == (line.credit_minor > 0) or min(line.debit_minor, line.credit_minor) < 0
           for line in lines):
        problems.append("a line without exactly one positive amount")
    bank = sum(line.debit_minor - line.credit_minor for line in lines if line.category is None)
    if bank != settlement.total_minor:
        problems.append(f"bank line {bank} ≠ total {settlement.total_minor}")
    if sum(c.amount_minor for c in summary.categories) != settlement.total_minor:
        problems.append("categories do not add up to the total")
    if problems:
        raise SettlementInvariantError(
            f"settlement {settlement.settlement_id}: internal error, entry not posted: {'; '.join(problems)}"
        )
