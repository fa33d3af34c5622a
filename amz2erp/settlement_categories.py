"""Settlement categories: which kind of money each settlement row is, and which account holds it.

The table is data (``templates/settlement_categories.toml``, package data): an ordered list of
``transaction-type|amount-type|amount-description`` patterns → :class:`Category`, and a default account name
per category. Users override both from ``[settlements.map]`` and ``[settlements.accounts]``. A row no pattern
matches is :attr:`Category.UNMAPPED` — never guessed from the sign of its amount — so new Amazon fee labels
land in a visible suspense account instead of a plausible wrong one.

Pure: no I/O beyond reading the packaged table once.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "CLEARING_CATEGORIES",
    "DERIVED_CATEGORIES",
    "SUSPENSE_CATEGORIES",
    "Category",
    "CategoryRule",
    "CategoryTable",
    "RootType",
    "default_table",
    "parse_account_overrides",
    "parse_rules",
]


class RootType(str, Enum):
    """ERPNext's Account.root_type: `setup` creates each category's account under a group of this root."""

    ASSET = "Asset"
    LIABILITY = "Liability"
    INCOME = "Income"
    EXPENSE = "Expense"


class Category(str, Enum):
    """Kinds of settlement money. The order is the order of the Journal Entry's lines: sales, their taxes,
    promotions and refunds first, then fees, then reimbursements, reserve and debt."""

    PRINCIPAL = "principal"
    SHIPPING = "shipping"
    GIFT_WRAP = "gift_wrap"
    TAX = "tax"  # tax the seller collected on orders (VAT, seller-collected sales tax)
    MF_TAX = "mf_tax"  # marketplace-facilitator tax Amazon withholds (and the tax rows it cancels)
    WITHHELD_TAX = "withheld_tax"  # TCS/TDS withheld on the seller's behalf (a tax asset)
    PROMOTION = "promotion"
    REFUND_PRINCIPAL = "refund_principal"
    REFUND_TAX = "refund_tax"  # seller-collected tax given back on refunds
    COMMISSION = "commission"
    REFUND_FEE = "refund_fee"
    FBA_FEES = "fba_fees"
    ADVERTISING = "advertising"
    STORAGE = "storage"
    LONG_TERM_STORAGE = "long_term_storage"
    FBA_OTHER = "fba_other"
    PROMO_FEES = "promo_fees"
    SUBSCRIPTION = "subscription"
    SHIPPING_LABELS = "shipping_labels"
    FEE_TAX = "fee_tax"  # VAT charged on Amazon's fees (input tax)
    REIMBURSEMENT = "reimbursement"
    RESERVE_RELEASED = "reserve_released"
    RESERVE_HELD = "reserve_held"
    DEBT = "debt"
    CARD_CHARGE = "card_charge"
    LOANS = "loans"
    UNMAPPED = "unmapped"
    # invoice mode (never a row's category in the table: the mapping moves an order's order-side rows here)
    INVOICED = "invoiced"  # orders with Sales Invoices/Credit Notes: cleared through the clearing account
    UNMATCHED = "unmatched"  # orders settled without a Sales Order: the suspense account, reported
    # rounding left over when a settlement in another currency is converted line by line (never a row's
    # category: the mapping adds it so the entry balances in the company currency)
    CURRENCY_DIFFERENCE = "currency_difference"

    @property
    def root_type(self) -> RootType:
        return _ROOT[self]

    @property
    def order_side(self) -> bool:
        """Money the buyer paid or got back (what a Sales Order's total holds), as opposed to fees."""
        return self in _ORDER_SIDE

    @property
    def order_fee(self) -> bool:
        """Fees Amazon charges per order (reported per order next to its order-side amount)."""
        return self in (Category.COMMISSION, Category.REFUND_FEE, Category.FBA_FEES)


_ROOT: dict[Category, RootType] = {
    **dict.fromkeys(
        (Category.PRINCIPAL, Category.SHIPPING, Category.GIFT_WRAP, Category.PROMOTION,
         Category.REFUND_PRINCIPAL, Category.REIMBURSEMENT),
        RootType.INCOME,
    ),
    **dict.fromkeys(
        (Category.TAX, Category.REFUND_TAX, Category.MF_TAX, Category.LOANS), RootType.LIABILITY
    ),
    **dict.fromkeys(
        (Category.COMMISSION, Category.REFUND_FEE, Category.FBA_FEES, Category.STORAGE,
         Category.LONG_TERM_STORAGE, Category.FBA_OTHER, Category.ADVERTISING, Category.PROMO_FEES,
         Category.SUBSCRIPTION, Category.SHIPPING_LABELS, Category.CURRENCY_DIFFERENCE),
        RootType.EXPENSE,
    ),
    **dict.fromkeys(
        (Category.WITHHELD_TAX, Category.FEE_TAX, Category.RESERVE_HELD, Category.RESERVE_RELEASED,
         Category.DEBT, Category.CARD_CHARGE, Category.UNMAPPED, Category.INVOICED, Category.UNMATCHED),
        RootType.ASSET,
    ),
}
_ORDER_SIDE = frozenset(
    (Category.PRINCIPAL, Category.SHIPPING, Category.GIFT_WRAP, Category.PROMOTION, Category.REFUND_PRINCIPAL,
     Category.TAX, Category.REFUND_TAX, Category.MF_TAX)
)
#: Amazon's claims on the seller and their settlement by card: the clearing account, by default.
CLEARING_CATEGORIES = frozenset((Category.DEBT, Category.CARD_CHARGE, Category.INVOICED))
#: Rows nobody mapped (or, in invoice mode, orders without a Sales Order): the suspense account, by default.
SUSPENSE_CATEGORIES = frozenset((Category.UNMAPPED, Category.UNMATCHED))
#: Categories the invoice-mode mapping assigns from the invoices; a [settlements.map] rule cannot name them.
DERIVED_CATEGORIES = frozenset((Category.INVOICED, Category.UNMATCHED))

TABLE_RESOURCE = "templates/settlement_categories.toml"


def _norm(text: str) -> str:
    # Amazon spells the same label "Product Charges" and "ProductCharges": case and blanks never matter.
    return re.sub(r"\s+", "", text).casefold()


def _compile(part: str) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in _norm(part))
    return re.compile(body + r"\Z", re.DOTALL)


@dataclass(frozen=True)
class CategoryRule:
    pattern: str  # as written: "transaction-type|amount-type|amount-description"
    category: Category
    parts: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]] = field(compare=False, repr=False)

    @classmethod
    def parse(cls, pattern: str, category: str | Category) -> CategoryRule:
        """A ValueError (one line) for a key that is not three ``|``-separated parts or an unknown category."""
        pieces = pattern.split("|")
        if len(pieces) != 3 or not all(p.strip() for p in pieces):
            raise ValueError(
                f"{pattern!r}: write \"transaction-type|amount-type|amount-description\" (use * for any)"
            )
        try:
            cat = Category(category)
        except ValueError:
            raise ValueError(
                f"{pattern!r} = {category!r}: unknown category (one of {', '.join(c.value for c in Category)})"
            ) from None
        if cat in DERIVED_CATEGORIES:
            raise ValueError(
                f"{pattern!r} = {category!r}: invoice mode assigns this category from the invoices; map the row "
                "to its order-side category (e.g. principal) instead"
            )
        compiled = (_compile(pieces[0]), _compile(pieces[1]), _compile(pieces[2]))
        return cls(pattern, cat, compiled)

    def matches(self, transaction_type: str, amount_type: str, amount_description: str) -> bool:
        return all(
            rx.match(_norm(v)) is not None
            for rx, v in zip(self.parts, (transaction_type, amount_type, amount_description), strict=True)
        )


def parse_rules(mapping: Mapping[str, Any]) -> tuple[CategoryRule, ...]:
    """``{"Order|ItemPrice|Principal": "principal", ...}`` in order → rules (ValueError on a bad entry)."""
    return tuple(CategoryRule.parse(str(k), str(v)) for k, v in mapping.items())


def parse_account_overrides(mapping: Mapping[str, Any]) -> dict[Category, str]:
    """``{"commission": "My Fees"}`` → ``{Category.COMMISSION: "My Fees"}`` (ValueError on a bad entry)."""
    out: dict[Category, str] = {}
    for key, value in mapping.items():
        try:
            cat = Category(key)
        except ValueError:
            raise ValueError(
                f"{key!r}: unknown category (one of {', '.join(c.value for c in Category)})"
            ) from None
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key!r}: the account name must be a non-empty string")
        out[cat] = value.strip()
    return out


class CategoryTable:
    """Ordered rules (first match wins) and default account names per category."""

    def __init__(self, rules: Sequence[CategoryRule], accounts: Mapping[Category, str]) -> None:
        self.rules = tuple(rules)
        self.accounts: Mapping[Category, str] = dict(accounts)
        self._cache: dict[tuple[str, str, str], tuple[Category, str | None]] = {}

    def match(self, transaction_type: str, amount_type: str, amount_description: str) -> tuple[Category, str | None]:
        """The category and the pattern that decided it (None: no pattern matched → UNMAPPED)."""
        key = (transaction_type, amount_type, amount_description)
        hit = self._cache.get(key)
        if hit is None:
            rule = next((r for r in self.rules if r.matches(*key)), None)
            hit = (rule.category, rule.pattern) if rule else (Category.UNMAPPED, None)
            self._cache[key] = hit
        return hit

    def categorize(self, transaction_type: str, amount_type: str, amount_description: str) -> Category:
        return self.match(transaction_type, amount_type, amount_description)[0]

    def account_name(self, category: Category) -> str | None:
        """The account name (without " - ABBR") for ``category``; None for the clearing/suspense categories
        that follow the configured clearing or suspense account."""
        return self.accounts.get(category)

    def with_overrides(
        self,
        rules: Mapping[str, Any] | Sequence[CategoryRule] | None = None,
        accounts: Mapping[str, Any] | None = None,
    ) -> CategoryTable:
        """A new table: the override rules tried before the defaults, and the account names replaced."""
        extra = parse_rules(rules) if isinstance(rules, Mapping) else tuple(rules or ())
        merged = dict(self.accounts)
        merged.update(parse_account_overrides(accounts or {}))
        return CategoryTable((*extra, *self.rules), merged)


def load_table(text: str, *, source: str = TABLE_RESOURCE) -> CategoryTable:
    """A table from TOML text with ``[accounts]`` and ``[map]``; ValueError naming the source when bad."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: invalid TOML: {exc}") from None
    unknown = set(data) - {"accounts", "map"}
    if unknown:
        raise ValueError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}")
    try:
        rules = parse_rules(data.get("map", {}))
        accounts = parse_account_overrides(data.get("accounts", {}))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    without = [
        c.value for c in Category
        if c not in accounts and c not in CLEARING_CATEGORIES and c not in SUSPENSE_CATEGORIES
    ]
    if without:
        raise ValueError(f"{source}: no default account for {', '.join(without)}")
    return CategoryTable(rules, accounts)


@cache
def default_table() -> CategoryTable:
    """The packaged default table (read once)."""
    text = resources.files("amz2erp").joinpath(TABLE_RESOURCE).read_text(encoding="utf-8")
    return load_table(text)
