"""Pure mapping: a balanced :class:`Settlement` → one ERPNext v15 Journal Entry + a summary.

One line per category (never per order), each the negated sum of the category's rows: money Amazon paid
the seller (sales, reimbursements, a released reserve) is credited to its account, money Amazon kept (fees,
refunds, a held reserve) is debited. The bank line is the settlement's ``total-amount``: a payout debits the
bank account, a charge (negative total) credits the clearing account. Because Σ rows = total-amount (checked
first), the entry balances to the cent.

Marketplace-facilitator tax: where Amazon collects and remits the tax itself, the ``Tax`` rows the buyer
paid and the ``ItemWithheldTax`` rows that take it back belong together. When they cancel out within one
order (or one refund), the tax rows join the ``mf_tax`` category, so nothing is booked as tax the seller
owes, exactly as the Sales Orders leave that tax out.

A settlement in another currency than the company's needs a :class:`Conversion` (the rate and where it came
from). Every line is then booked in the company currency at that rate, rounded per line; the cents the rounding
leaves go to the ``currency_difference`` account. When the bank account is in the company currency the bank
line is Amazon's converted payout (or the total at the rate); when it is in the settlement currency the bank
row stays in that currency with the rate, and ERPNext computes its company-currency amount itself.

Invoice mode (``invoicing=``): the order-side rows of orders with Sales Invoices and Credit Notes become one
line on the clearing account (category ``invoiced``), which ``clearing_mapping.receipt_entries`` clears
document by document; orders settled without a Sales Order go to the suspense account (``unmatched``).

Amounts are sent as ``debit_in_account_currency`` / ``credit_in_account_currency`` only (ERPNext derives
``debit``/``credit`` from them and the exchange rate; a row with only ``debit`` would become zero), as floats
of two-decimal values, which round-trip exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any, Literal

from amz2erp.amazon.settlement_report import (
    Settlement,
    SettlementError,
    SettlementRow,
    currency_exponent,
    format_minor,
    to_minor,
)
from amz2erp.erpnext.schema import full_account_name
from amz2erp.errors import ConfigError
from amz2erp.invoice_refs import Invoicing
from amz2erp.settlement_categories import (
    CLEARING_CATEGORIES,
    SUSPENSE_CATEGORIES,
    Category,
    CategoryTable,
)
from amz2erp.settlement_config import SettlementsSettings

__all__ = [
    "CategoryTotal",
    "Conversion",
    "ConvertedTotals",
    "JournalLine",
    "NothingToPostError",
    "OrderSettled",
    "RateSource",
    "SettlementAccounts",
    "SettlementCurrencyError",
    "SettlementEntry",
    "SettlementInvariantError",
    "SettlementSummary",
    "UnmappedRow",
    "UnmappedRowsError",
    "invoice_categories",
    "resolve_accounts",
    "row_categories",
    "settlement_to_journal_entry",
    "summarise",
]


class UnmappedRowsError(SettlementError):
    """``unmapped = "error"`` and the settlement has rows no category rule matches: not posted."""


class SettlementCurrencyError(SettlementError):
    """A settlement in another currency than the company's without a usable rate, or a bank account in a
    currency the entry cannot use: not posted."""


class NothingToPostError(SettlementError):
    """Every category nets to zero and the total is zero: there is no Journal Entry to write."""


class SettlementInvariantError(SettlementError):
    """The entry built does not balance or carries a non-positive amount: a bug, never posted."""


# --------------------------------------------------------------------------------------------- conversion

#: ERPNext keeps a Journal Entry row's exchange_rate to 9 decimals (Float, precision 9).
RATE_PLACES = 9
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)


class RateSource(str, Enum):
    """Where the rate of a :class:`Conversion` came from."""

    AMAZON = "amazon"  # Amazon converted the payout: the event group's ConvertedTotal / OriginalTotal
    CURRENCY_EXCHANGE = "currency_exchange"  # an ERPNext Currency Exchange record
    FALLBACK = "fallback"  # a rate the user configured


@dataclass(frozen=True)
class Conversion:
    """How a settlement in another currency becomes company-currency money.

    ``rate``: company-currency units per settlement-currency unit (kept to 9 decimals, as ERPNext keeps it).
    ``converted_total``: only when Amazon converted the payout (``RateSource.AMAZON``): the event group's
    ConvertedTotal, in the company currency; the bank line then equals it to the cent.
    """

    rate: Decimal
    source: RateSource
    converted_total: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.rate, Decimal) or not self.rate.is_finite() or self.rate <= 0:
            raise ValueError(f"exchange rate {self.rate!r}: a positive Decimal is required")
        if self.rate.quantize(_RATE_QUANTUM) == 0:
            raise ValueError(f"exchange rate {self.rate}: below ERPNext's 9 decimals")
        if self.converted_total is not None:
            if self.source is not RateSource.AMAZON:
                raise ValueError("converted_total is Amazon's converted payout: only with RateSource.AMAZON")
            if not isinstance(self.converted_total, Decimal) or not self.converted_total.is_finite():
                raise ValueError(f"converted total {self.converted_total!r}: a Decimal is required")

    @classmethod
    def from_amazon(cls, original_total: Decimal, converted_total: Decimal) -> Conversion:
        """The rate Amazon converted a payout at: ConvertedTotal / OriginalTotal (ValueError when a zero or
        a sign change makes it meaningless)."""
        if original_total == 0 or converted_total == 0 or (original_total > 0) != (converted_total > 0):
            raise ValueError(
                f"Amazon's converted payout {converted_total} for {original_total} gives no exchange rate"
            )
        rate = (converted_total / original_total).quantize(_RATE_QUANTUM)
        return cls(rate, RateSource.AMAZON, converted_total)


@dataclass(frozen=True)
class ConvertedTotals:
    """The company-currency side of a converted settlement, for the run summary."""

    currency: str  # the company currency
    rate: Decimal  # as posted (9 decimals)
    source: RateSource
    total: Decimal  # the bank line (or the charge), signed like the settlement total
    categories: Mapping[Category, Decimal]  # per category, Amazon's sign (+ = to the seller)
    difference: Decimal  # the currency_difference line, Amazon's sign (0: none)
    bank_in_settlement_currency: bool  # the bank row stays in the settlement currency, at the rate


# --------------------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class SettlementAccounts:
    """Full ERPNext account names (with " - ABBR") for one company."""

    bank: str | None  # None: not configured; a payout cannot be posted
    clearing: str
    suspense: str
    cost_center: str | None  # None: the company's default cost center
    by_category: Mapping[Category, str]
    # invoice mode, a settlement in another currency: the company's Exchange Gain/Loss account takes the
    # difference between the invoices' rates and the settlement's (None: the currency_difference account)
    exchange_gain_loss: str | None = None

    def for_category(self, category: Category) -> str:
        return self.by_category[category]


def resolve_accounts(
    settings: SettlementsSettings,
    table: CategoryTable,
    company_abbr: str,
    *,
    marketplace_facilitator_tax: str | None = None,
    exchange_gain_loss: str | None = None,
) -> SettlementAccounts:
    """Account names completed with the company abbreviation, as ``[accounts]`` names are.

    ``table`` already carries ``[settlements.accounts]`` (see ``SettlementsSettings.category_table``).
    ``marketplace_facilitator_tax`` is ``[accounts] marketplace_facilitator_tax``: the Sales Orders' MF tax
    account, used for ``mf_tax`` unless ``[settlements.accounts]`` names one. ``exchange_gain_loss`` is the
    company's ``exchange_gain_loss_account`` (a full name), for invoice mode's receipt entries.
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
        exchange_gain_loss=exchange_gain_loss or None,
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
    converted: ConvertedTotals | None = None  # a settlement in another currency than the company's

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


def _category_totals(settlement: Settlement, cats: list[Category]) -> tuple[CategoryTotal, ...]:
    amounts: dict[Category, int] = defaultdict(int)
    counts: dict[Category, int] = defaultdict(int)
    for row, cat in zip(settlement.rows, cats, strict=True):
        amounts[cat] += row.amount_minor
        counts[cat] += 1
    return tuple(CategoryTotal(c, amounts[c], counts[c], settlement.currency) for c in Category if counts[c])


# --------------------------------------------------------------------------------------------- invoice mode


def invoice_categories(
    settlement: Settlement, cats: list[Category], invoicing: Invoicing, *, book_mf_tax: bool = False
) -> tuple[list[Category], tuple[str, ...]]:
    """Invoice mode: the order-side rows of invoiced orders become :attr:`Category.INVOICED` (the clearing
    account), those of ``invoicing.unmatched`` orders :attr:`Category.UNMATCHED` (the suspense account).

    The rows moved for an invoiced order are exactly the money its invoices and credit notes hold: its Order
    rows' principal, shipping, gift wrap, promotions and seller-collected tax (+ the marketplace-facilitator
    tax the buyer paid when ``book_mf_tax``: the invoice then books it and the withholding stays on the MF
    tax account to clear it), and all order-side rows of its refunds. Per order they must add up to what
    ``invoicing.refs`` say the documents settle, else :class:`SettlementInvariantError` (the clearing account
    would not net to zero). Answers the new categories and the orders with order-side money that nothing
    claims (left in their categories, as summary mode books them)."""
    sid, currency = settlement.settlement_id, settlement.currency
    invoiced: dict[str, int] = defaultdict(int)
    for ref in invoicing.refs:
        try:
            invoiced[ref.order_id] += to_minor(ref.settled, currency)
        except ValueError as exc:
            raise SettlementInvariantError(f"settlement {sid}: {ref.doctype} {ref.name} settles {exc}") from None
    unmatched = set(invoicing.unmatched)
    both = sorted(unmatched & set(invoiced))
    if both:
        raise SettlementInvariantError(
            f"settlement {sid}: order(s) {', '.join(both)} both invoiced and without a Sales Order; not posted"
        )
    out = list(cats)
    cleared: dict[str, int] = defaultdict(int)
    left: dict[str, int] = defaultdict(int)
    for i, (row, cat) in enumerate(zip(settlement.rows, cats, strict=True)):
        oid = row.order_id
        if not oid or not cat.order_side:
            continue
        if oid in unmatched:
            out[i] = Category.UNMATCHED
        elif oid in invoiced:
            if cat is not Category.MF_TAX or _is_refund(row) or (book_mf_tax and row.amount_minor > 0):
                out[i] = Category.INVOICED
                cleared[oid] += row.amount_minor
        elif cat is not Category.MF_TAX:
            left[oid] += row.amount_minor
    wrong = [oid for oid in sorted(invoiced) if invoiced[oid] != cleared.get(oid, 0)]
    if wrong:
        shown = "; ".join(
            f"{oid}: documents {format_minor(invoiced[oid], currency)}, rows {format_minor(cleared.get(oid, 0), currency)}"
            for oid in wrong[:5]
        )
        more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
        raise SettlementInvariantError(
            f"settlement {sid}: the invoices and credit notes do not hold the order-side money the settlement "
            f"pays ({currency}; {shown}{more}); not posted"
        )
    return out, tuple(oid for oid in sorted(left) if left[oid])


# --------------------------------------------------------------------------------------------- journal entry


@dataclass(frozen=True)
class JournalLine:
    account: str
    debit_minor: int
    credit_minor: int
    remark: str
    category: Category | None  # None: the bank line
    # debit/credit above are in the company currency; a row in another currency (the bank account in the
    # settlement currency) also carries its own amount and the rate ERPNext multiplies it by
    account_currency: str | None = None
    amount_in_account_currency_minor: int = 0
    exchange_rate: Decimal | None = None


@dataclass(frozen=True)
class SettlementEntry:
    payload: dict[str, Any]  # POST /api/resource/Journal Entry (without docstatus: the writer decides)
    lines: tuple[JournalLine, ...]
    summary: SettlementSummary
    # invoice mode: orders with order-side money that neither an invoice nor Invoicing.unmatched claims (a
    # refund of a sale booked before invoice mode, say): booked by category, as summary mode books them
    not_invoiced: tuple[str, ...] = ()


def _remark(category: Category, rows: int) -> str:
    return f"{category.value} ({rows} row{'' if rows == 1 else 's'})"


def _money(minor: int, currency: str) -> float:
    return float(_dec(minor, currency))


@dataclass(frozen=True)
class _Fx:
    company_currency: str
    rate: Decimal
    source: RateSource
    converted_total_minor: int | None  # Amazon's converted payout, company minor units
    foreign_bank: bool  # the bank row stays in the settlement currency


def _convert(minor: int, currency: str, rate: Decimal, company_currency: str) -> int:
    """Settlement minor units × rate → company minor units, rounded half up (away from zero)."""
    value = Decimal(minor).scaleb(currency_exponent(company_currency) - currency_exponent(currency)) * rate
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# ERPNext rounds the bank row's debit = amount × rate itself, with the site's rounding method (banker's or
# commercial) on a float product: only a product clearly away from a half cent rounds the same everywhere.
# Frappe's legacy rounding first rounds the scaled value to 8 decimals; a float product errs by ~1e-15 of it.
_TIE_MARGIN = Decimal("1e-7")  # in company minor units, plus 1e-12 of the amount


def _unambiguous_rate(total_minor: int, currency: str, rate: Decimal, company_currency: str) -> Decimal:
    """``rate``, or the closest rate above it in 10^-9 steps, such that ``total × rate`` is not (nearly) a half
    minor unit and the rate is not exactly 1 (ERPNext replaces a rate of 1 on a foreign row by a Currency
    Exchange). For a total of one cent the rate moves by at most 2·10^-7; for larger totals by less."""
    scaled = abs(Decimal(total_minor).scaleb(currency_exponent(company_currency) - currency_exponent(currency)))
    margin = _TIE_MARGIN + scaled * rate * Decimal("1e-12")

    def ambiguous(r: Decimal) -> bool:
        frac = (scaled * r) % 1
        return r == 1 or abs(frac - Decimal("0.5")) < margin

    if not ambiguous(rate) or scaled == 0:
        return rate
    step = scaled * _RATE_QUANTUM
    delta = (scaled * rate) % 1 - Decimal("0.5")
    near_tie = abs(delta) < margin  # else only the rate of exactly 1 is to avoid: the next one up will do
    first = max(1, int(((margin - delta) / step).to_integral_value(rounding=ROUND_CEILING))) if near_tie else 1
    for k in range(first, first + 1000):
        candidate = rate + k * _RATE_QUANTUM
        if not ambiguous(candidate):
            return candidate
    raise SettlementInvariantError(f"no exchange rate near {rate} gives ERPNext an unambiguous bank amount")


def _plan_fx(
    settlement: Settlement,
    company: str,
    company_currency: str,
    conversion: Conversion | None,
    bank_currency: str,
) -> _Fx | None:
    """None when the settlement is in the company currency; the conversion to apply otherwise."""
    sid, currency, total = settlement.settlement_id, settlement.currency, settlement.total_minor
    if currency == company_currency:
        if conversion is not None and conversion.rate != 1:
            raise SettlementCurrencyError(
                f"settlement {sid} is in {currency}, the company's currency, yet an exchange rate "
                f"{conversion.rate} was given: not posted"
            )
        if total > 0 and bank_currency != company_currency:
            raise SettlementCurrencyError(
                f"settlement {sid} is in {currency} but the bank account is in {bank_currency}: "
                f"use a {currency} bank account for [settlements] bank_account"
            )
        return None
    if conversion is None:
        raise SettlementCurrencyError(
            f"settlement {sid} is in {currency}, {company} books in {company_currency}: no exchange rate "
            f"{currency}→{company_currency} (Amazon's converted payout, an ERPNext Currency Exchange record "
            "or a configured rate); not posted"
        )
    foreign_bank = total > 0 and bank_currency == currency
    if total > 0 and bank_currency not in (currency, company_currency):
        raise SettlementCurrencyError(
            f"settlement {sid} is in {currency}, {company} books in {company_currency}, the bank account is in "
            f"{bank_currency}: a bank account in {currency} or {company_currency} is required"
        )
    rate = conversion.rate.quantize(_RATE_QUANTUM)
    converted: int | None = None
    if conversion.converted_total is not None:
        if foreign_bank:
            raise SettlementCurrencyError(
                f"settlement {sid}: Amazon paid it out converted to {conversion.converted_total} "
                f"{company_currency}, but the bank account is in {currency}: set [settlements] bank_account to "
                f"the {company_currency} account Amazon pays into"
            )
        try:
            converted = to_minor(conversion.converted_total, company_currency)
        except ValueError as exc:
            raise SettlementCurrencyError(f"settlement {sid}: Amazon's converted payout {exc}") from None
        # the rate may be ConvertedTotal / OriginalTotal rounded to 9 decimals: allow that much, no more
        exact = Decimal(total).scaleb(currency_exponent(company_currency) - currency_exponent(currency)) * rate
        slack = Decimal("0.5") + abs(exact) / rate * _RATE_QUANTUM / 2
        if abs(exact - converted) > slack or (converted > 0) != (total > 0):
            raise SettlementCurrencyError(
                f"settlement {sid}: Amazon's converted payout {conversion.converted_total} {company_currency} "
                f"is not {settlement.total} {currency} at the rate {rate}: not posted"
            )
    elif foreign_bank:
        rate = _unambiguous_rate(total, currency, rate, company_currency)
    return _Fx(company_currency, rate, conversion.source, converted, foreign_bank)


def settlement_to_journal_entry(
    settlement: Settlement,
    table: CategoryTable,
    accounts: SettlementAccounts,
    *,
    company: str,
    company_currency: str,
    unmapped: Literal["suspense", "error"] = "suspense",
    conversion: Conversion | None = None,
    bank_account_currency: str | None = None,
    invoicing: Invoicing | None = None,
    book_mf_tax: bool = False,
) -> SettlementEntry:
    """The Journal Entry for one settlement, its lines and its summary.

    ``invoicing`` None: summary mode. Given (invoice mode), the order-side rows of the invoiced orders become
    one line on the clearing account (credit = invoiced − refunded, :attr:`Category.INVOICED`), which the
    :func:`amz2erp.clearing_mapping.receipt_entries` debit back, and those of orders without a Sales Order
    go to the suspense account (:attr:`Category.UNMATCHED`); fees, reimbursements, reserves and the bank line
    stay exactly as in summary mode (see :func:`invoice_categories`; ``book_mf_tax`` is ``[orders]
    marketplace_facilitator_tax = "book"``). ``summary.orders`` still describes every order by category.

    ``conversion`` is required when the settlement's currency is not the company's; ``bank_account_currency``
    is the bank account's currency as ERPNext has it (None: the company's). A charge (negative total) is
    credited to the clearing account, a company-currency account, whatever the bank account's currency.

    Raises :class:`SettlementImbalanceError` when the rows do not add up to the total,
    :class:`UnmappedRowsError` for unmapped rows under ``unmapped = "error"``, :class:`SettlementCurrencyError`
    for a settlement in another currency without a usable conversion (or a bank account in a third currency),
    ``ConfigError`` for a payout without a bank account, :class:`NothingToPostError` when everything nets to
    zero.
    """
    settlement.check_balance()
    currency = settlement.currency
    company_currency = company_currency.upper()
    bank_currency = (bank_account_currency or company_currency).upper()
    fx = _plan_fx(settlement, company, company_currency, conversion, bank_currency)
    cats = row_categories(settlement, table)
    summary = summarise(settlement, table, cats)
    not_invoiced: tuple[str, ...] = ()
    if invoicing is not None:
        cats, not_invoiced = invoice_categories(settlement, cats, invoicing, book_mf_tax=book_mf_tax)
        summary = replace(summary, categories=_category_totals(settlement, cats))
    if summary.unmapped and unmapped == "error":
        keys = sorted({u.key for u in summary.unmapped})
        shown = ", ".join(repr(k) for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        raise UnmappedRowsError(
            f"settlement {settlement.settlement_id}: {len(summary.unmapped)} row(s) match no category ({shown}); "
            "add them to [settlements.map] or set unmapped = \"suspense\""
        )

    def booked(minor: int) -> int:  # settlement money → what the entry books (company currency)
        return minor if fx is None else _convert(minor, currency, fx.rate, fx.company_currency)

    lines: list[JournalLine] = []
    total = settlement.total_minor
    if total > 0:
        if accounts.bank is None:
            raise ConfigError("[settlements] bank_account is not set: the account Amazon pays into is required to post")
        bank = booked(total) if fx is None or fx.converted_total_minor is None else fx.converted_total_minor
        if fx is not None and fx.foreign_bank:
            if bank == 0:  # ERPNext refuses a row whose company-currency amount is zero
                raise SettlementCurrencyError(
                    f"settlement {settlement.settlement_id}: {settlement.total} {currency} at {fx.rate} is 0 "
                    f"{fx.company_currency}: a bank row ERPNext cannot post; not posted"
                )
            lines.append(JournalLine(accounts.bank, bank, 0, "total-amount", None, currency, total, fx.rate))
        elif bank:  # a converted total can round to nothing
            lines.append(JournalLine(accounts.bank, bank, 0, "total-amount", None))
    elif total < 0:
        charge = -booked(total) if fx is None or fx.converted_total_minor is None else -fx.converted_total_minor
        if charge:
            lines.append(JournalLine(accounts.clearing, 0, charge, "total-amount < 0: owed to Amazon", None))
    converted: dict[Category, Decimal] = {}
    for ct in summary.categories:
        value = -booked(ct.amount_minor)  # money to the seller is credited, money kept by Amazon debited
        if fx is not None:
            converted[ct.category] = _dec(-value, fx.company_currency)
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
    difference = 0
    if fx is not None:
        # per-line rounding (and Amazon's own rounding of the payout) leaves a few cents: booked apart
        difference = sum(line.debit_minor - line.credit_minor for line in lines)
        if difference:
            lines.append(
                JournalLine(
                    accounts.for_category(Category.CURRENCY_DIFFERENCE),
                    max(-difference, 0),
                    max(difference, 0),
                    f"{Category.CURRENCY_DIFFERENCE.value} ({currency}→{fx.company_currency} at {fx.rate}, "
                    f"{fx.source.value})",
                    Category.CURRENCY_DIFFERENCE,
                )
            )
        bank_total = sum(line.debit_minor - line.credit_minor for line in lines if line.category is None)
        summary = replace(
            summary,
            converted=ConvertedTotals(
                currency=fx.company_currency,
                rate=fx.rate,
                source=fx.source,
                total=_dec(bank_total, fx.company_currency),
                categories=converted,
                difference=_dec(difference, fx.company_currency),
                bank_in_settlement_currency=fx.foreign_bank,
            ),
        )
    if not lines:
        raise NothingToPostError(f"settlement {settlement.settlement_id}: total and every category are zero")
    _check_invariants(settlement, summary, lines, fx)

    book_currency = currency if fx is None else fx.company_currency
    multi = any(line.account_currency for line in lines)
    rows: list[dict[str, Any]] = []
    for line in lines:
        row: dict[str, Any] = {"account": line.account}
        side = "debit" if line.debit_minor else "credit"
        if line.account_currency:
            row["exchange_rate"] = float(line.exchange_rate or 0)
            row[f"{side}_in_account_currency"] = _money(line.amount_in_account_currency_minor, line.account_currency)
        else:
            if multi:
                row["exchange_rate"] = 1.0
            row[f"{side}_in_account_currency"] = _money(line.debit_minor or line.credit_minor, book_currency)
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
    if fx is not None:
        remark += f" at {fx.rate} {fx.company_currency}/{currency} ({fx.source.value})"
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
        "multi_currency": 1 if multi else 0,
        "accounts": rows,
    }
    return SettlementEntry(payload=payload, lines=tuple(lines), summary=summary, not_invoiced=not_invoiced)


def _check_invariants(
    settlement: Settlement, summary: SettlementSummary, lines: list[JournalLine], fx: _Fx | None
) -> None:
    """Balanced, every amount positive and on one side, bank line = total (or Amazon's converted payout),
    Σ categories = total, the currency difference within half a minor unit per line."""
    problems = []
    debit = sum(line.debit_minor for line in lines)
    credit = sum(line.credit_minor for line in lines)
    if debit != credit:
        problems.append(f"debits {debit} ≠ credits {credit}")
    if any((line.debit_minor > 0) == (line.credit_minor > 0) or min(line.debit_minor, line.credit_minor) < 0
           for line in lines):
        problems.append("a line without exactly one positive amount")
    bank_lines = [line for line in lines if line.category is None]
    if fx is not None and fx.foreign_bank:
        bank = sum(line.amount_in_account_currency_minor for line in bank_lines)
        expected = settlement.total_minor
    else:
        bank = sum(line.debit_minor - line.credit_minor for line in bank_lines)
        expected = settlement.total_minor if fx is None else (
            fx.converted_total_minor if fx.converted_total_minor is not None
            else _convert(settlement.total_minor, settlement.currency, fx.rate, fx.company_currency)
        )
    if bank != expected:
        problems.append(f"bank line {bank} ≠ {expected}")
    if sum(c.amount_minor for c in summary.categories) != settlement.total_minor:
        problems.append("categories do not add up to the total")
    diff = [line for line in lines if line.category is Category.CURRENCY_DIFFERENCE]
    # each converted amount (a line, or one that rounded to nothing) is off by at most half a minor unit
    rounded = sum(1 for c in summary.categories if c.amount_minor) + (1 if settlement.total_minor else 0)
    if diff and 2 * (diff[0].debit_minor + diff[0].credit_minor) > rounded:
        problems.append(f"currency difference {diff[0].debit_minor + diff[0].credit_minor} exceeds the rounding")
    if problems:
        raise SettlementInvariantError(
            f"settlement {settlement.settlement_id}: internal error, entry not posted: {'; '.join(problems)}"
        )
