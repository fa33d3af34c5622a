"""The audit's rules, as pure functions: given what Amazon says (orders placed in a range, the settlements it
serves) and what ERPNext holds (Sales Orders by ``amazon_order_id``, Journal Entries by
``amazon_settlement_id``, read in bulk), which differences are there, which of them `audit --fix` may repair,
and the totals per marketplace and month side by side.

No I/O here: the engine (`amz2erp.engine.audit`) reads both sides into these types and acts on the findings.

Dates: an order's month is its ``transaction_date`` — the purchase date in the marketplace's time zone, the
date amz2erp writes on the Sales Order and the day Seller Central shows — so both sides are bucketed alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

LIVE = (0, 1)  # docstatus of a draft or a submitted document; 2 is cancelled


class FindingKind(str, Enum):
    """Every difference the audit reports. The values are what ``--json`` carries."""

    MISSING = "missing"  # an importable Amazon order with no live Sales Order
    DUPLICATE = "duplicate"  # more than one live Sales Order for one Amazon order
    TOTAL_MISMATCH = "total mismatch"  # grand total ≠ what amz2erp's mapping would write
    CANCELLED_ON_AMAZON = "cancelled on Amazon, live in ERPNext"
    CANCELLED_IN_ERPNEXT = "cancelled in ERPNext, live on Amazon"
    UNKNOWN = "unknown"  # a live Sales Order whose Amazon id Amazon does not know in the range
    SETTLEMENT_NOT_POSTED = "settlement not posted"
    SETTLEMENT_POSTED_TWICE = "settlement posted twice"
    SETTLEMENT_BANK_DIFFERS = "settlement bank line differs"

    @property
    def repairable(self) -> bool:
        """Whether `audit --fix` repairs this kind through the normal exactly-once path (a cancellation only
        when nothing references the Sales Order: see `Finding.fixable`)."""
        return self in (FindingKind.MISSING, FindingKind.CANCELLED_ON_AMAZON, FindingKind.SETTLEMENT_NOT_POSTED)

    @property
    def advice(self) -> str:
        return _ADVICE[self]

    @property
    def short(self) -> str:
        """The word the per-month table counts it under."""
        return _SHORT[self]


_SHORT: dict[FindingKind, str] = {
    FindingKind.MISSING: "missing", FindingKind.DUPLICATE: "duplicate", FindingKind.TOTAL_MISMATCH: "total",
    FindingKind.CANCELLED_ON_AMAZON: "cancelled", FindingKind.CANCELLED_IN_ERPNEXT: "cancelled in ERPNext",
    FindingKind.UNKNOWN: "unknown", FindingKind.SETTLEMENT_NOT_POSTED: "unposted settlement",
    FindingKind.SETTLEMENT_POSTED_TWICE: "settlement twice", FindingKind.SETTLEMENT_BANK_DIFFERS: "bank line",
}

_ADVICE: dict[FindingKind, str] = {
    FindingKind.MISSING: "`amz2erp audit --fix` imports it (or `amz2erp retry ID`)",
    FindingKind.DUPLICATE: "cancel or delete the extra Sales Order(s) in ERPNext by hand; amz2erp never deletes "
                           "documents it did not write",
    FindingKind.TOTAL_MISMATCH: "compare the Sales Order with the order in Seller Central; with "
                                "[orders] amend_on_drift = true sync-orders amends orders amz2erp wrote",
    FindingKind.CANCELLED_ON_AMAZON: "`amz2erp audit --fix` cancels it unless a Delivery Note or Sales Invoice "
                                     "references it (then cancel those first, by hand)",
    FindingKind.CANCELLED_IN_ERPNEXT: "someone cancelled it in ERPNext: amend it by hand if the sale stands",
    FindingKind.UNKNOWN: "check the id in Seller Central (another marketplace or account, a test order); "
                         "cancel it by hand if it is not a sale",
    FindingKind.SETTLEMENT_NOT_POSTED: "`amz2erp audit --fix` posts it (or `amz2erp sync-settlements`)",
    FindingKind.SETTLEMENT_POSTED_TWICE: "cancel the extra Journal Entry in ERPNext by hand",
    FindingKind.SETTLEMENT_BANK_DIFFERS: "cancel the Journal Entry in ERPNext and run `amz2erp audit --fix` "
                                         "to post the settlement again",
}


@dataclass(frozen=True)
class AmazonOrderFact:
    """One Amazon order as the audit needs it (built from an orders report row group)."""

    order_id: str
    marketplace: str  # the marketplace id
    day: date  # the purchase date in the marketplace's time zone (the Sales Order's transaction_date)
    cancelled: bool
    importable: bool  # amz2erp would write a Sales Order for it now
    currency: str
    total: Decimal | None  # the grand total amz2erp's mapping would write (None: not importable)


@dataclass(frozen=True)
class SalesOrderRow:
    """One Sales Order row of the bulk read (any docstatus)."""

    name: str
    order_id: str
    docstatus: int
    grand_total: Decimal
    currency: str
    marketplace: str | None  # amazon_marketplace_id (None for orders other connectors wrote)
    day: date | None  # transaction_date

    @property
    def live(self) -> bool:
        return self.docstatus in LIVE

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SalesOrderRow:
        day = row.get("transaction_date")
        return cls(name=str(row["name"]), order_id=str(row.get("amazon_order_id") or ""),
                   docstatus=int(row.get("docstatus") or 0), grand_total=_money(row.get("grand_total")),
                   currency=str(row.get("currency") or ""), marketplace=row.get("amazon_marketplace_id") or None,
                   day=date.fromisoformat(str(day)[:10]) if day else None)


@dataclass(frozen=True)
class SettlementFact:
    """One settlement Amazon serves: its id, deposit (the payout) and marketplaces."""

    settlement_id: str
    marketplace: str  # the first marketplace of the settlement ("" when Amazon names none)
    deposit_date: date
    total: Decimal
    currency: str


@dataclass(frozen=True)
class JournalEntryRow:
    """One submitted Journal Entry carrying an ``amazon_settlement_id``; ``bank_line`` when read in detail."""

    name: str
    settlement_id: str
    bank_line: Decimal | None = None


@dataclass
class Finding:
    """One difference, with every id needed to act on it."""

    kind: FindingKind
    marketplace: str
    month: str  # YYYY-MM
    key: str  # the Amazon order id or the settlement id
    documents: tuple[str, ...] = ()  # the ERPNext documents concerned (Sales Orders, Journal Entries)
    amazon: str = ""  # what Amazon says (status, total)
    erpnext: str = ""  # what ERPNext holds
    blocked_by: tuple[str, ...] = ()  # documents that forbid the repair ("Sales Invoice SINV-0001")
    known_to_ledger: str | None = None  # for a duplicate: the Sales Order amz2erp's ledger knows

    @property
    def fixable(self) -> bool:
        return self.kind.repairable and not self.blocked_by

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "marketplace": self.marketplace, "month": self.month, "key": self.key,
                "documents": list(self.documents), "amazon": self.amazon, "erpnext": self.erpnext,
                "fixable": self.fixable, "blocked_by": list(self.blocked_by),
                "known_to_ledger": self.known_to_ledger, "advice": self.kind.advice}


@dataclass
class MonthTotals:
    """One row of the side-by-side table: a marketplace, a month and a currency."""

    marketplace: str
    month: str
    currency: str
    amazon_orders: int = 0  # orders placed (every status)
    amazon_importable: int = 0  # of which amz2erp writes a Sales Order
    erpnext_orders: int = 0  # live Sales Orders (with an Amazon id) dated in the month
    amazon_total: Decimal = Decimal("0.00")  # Σ what the mapping writes for the importable orders
    erpnext_total: Decimal = Decimal("0.00")  # Σ grand_total of those live Sales Orders
    findings: dict[str, int] = field(default_factory=dict)

    @property
    def ties(self) -> bool:
        return not self.findings and self.amazon_total == self.erpnext_total

    def as_dict(self) -> dict[str, Any]:
        return {"marketplace": self.marketplace, "month": self.month, "currency": self.currency,
                "amazon_orders": self.amazon_orders, "amazon_importable": self.amazon_importable,
                "erpnext_orders": self.erpnext_orders, "amazon_total": str(self.amazon_total),
                "erpnext_total": str(self.erpnext_total),
                "difference": str(self.amazon_total - self.erpnext_total), "findings": dict(self.findings)}


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _primary(live: list[SalesOrderRow], ledger_name: str | None) -> SalesOrderRow:
    """The Sales Order amz2erp treats as the order's: the one its ledger knows, else submitted before draft,
    oldest name first."""
    for row in live:
        if row.name == ledger_name:
            return row
    return sorted(live, key=lambda r: (-r.docstatus, r.name))[0]


def _audited(row: SalesOrderRow, marketplaces: set[str], whole_seller: bool) -> bool:
    """Whether a Sales Order Amazon does not know belongs to the audit: its marketplace is audited, or it has
    none (another connector's) and the whole seller is audited."""
    return row.marketplace in marketplaces if row.marketplace else whole_seller


def compare_orders(amazon: Iterable[AmazonOrderFact], erpnext: Iterable[SalesOrderRow], *, start: date, end: date,
                   known_ids: set[str], marketplaces: set[str], ledger: Mapping[str, str] | None = None,
                   whole_seller: bool = True) -> list[Finding]:
    """The order findings for the range [start, end] (marketplace-local days).

    ``amazon``: the orders placed in the range. ``erpnext``: every Sales Order with an Amazon id whose
    transaction_date lies in the range or next to it (the read is a day wider: other connectors date orders
    in UTC). ``known_ids``: every order id Amazon returned for the wider read, so a Sales Order dated just
    outside the range is never called unknown. ``ledger``: order id → the Sales Order amz2erp wrote.
    ``whole_seller``: every configured marketplace is audited, so a Sales Order without a marketplace id can
    be called unknown."""
    ledger = ledger or {}
    by_id: dict[str, list[SalesOrderRow]] = {}
    for row in erpnext:
        by_id.setdefault(row.order_id, []).append(row)
    out: list[Finding] = []
    seen: set[str] = set()
    for a in amazon:
        seen.add(a.order_id)
        rows = by_id.get(a.order_id, [])
        live = [r for r in rows if r.live]
        month = month_of(a.day)
        if len(live) > 1:
            out.append(Finding(FindingKind.DUPLICATE, a.marketplace, month, a.order_id,
                               tuple(r.name for r in sorted(live, key=lambda r: r.name)),
                               erpnext=f"{len(live)} live Sales Orders",
                               known_to_ledger=ledger.get(a.order_id)))
        if a.cancelled:
            for row in live:
                out.append(Finding(FindingKind.CANCELLED_ON_AMAZON, a.marketplace, month, a.order_id, (row.name,),
                                   amazon="Canceled", erpnext="draft" if row.docstatus == 0 else "submitted"))
            continue
        if not a.importable:
            continue  # pending without import_pending, nothing to ship: amz2erp writes nothing for it either
        if not live:
            cancelled = [r.name for r in rows if r.docstatus == 2]
            if cancelled:
                out.append(Finding(FindingKind.CANCELLED_IN_ERPNEXT, a.marketplace, month, a.order_id,
                                   tuple(sorted(cancelled)), amazon="live", erpnext="cancelled"))
            else:
                out.append(Finding(FindingKind.MISSING, a.marketplace, month, a.order_id,
                                   amazon=f"{a.total} {a.currency}".strip() if a.total is not None else ""))
            continue
        primary = _primary(live, ledger.get(a.order_id))
        if a.total is not None and primary.grand_total != a.total:
            out.append(Finding(FindingKind.TOTAL_MISMATCH, a.marketplace, month, a.order_id, (primary.name,),
                               amazon=f"{a.total} {a.currency}", erpnext=f"{primary.grand_total} {primary.currency}"))
    for order_id, rows in sorted(by_id.items()):
        if order_id in seen or order_id in known_ids:
            continue
        for row in rows:
            if not row.live or row.day is None or not start <= row.day <= end:
                continue
            if not _audited(row, marketplaces, whole_seller):
                continue
            out.append(Finding(FindingKind.UNKNOWN, row.marketplace or "", month_of(row.day), order_id, (row.name,),
                               amazon="not placed in this range", erpnext=f"{row.grand_total} {row.currency}"))
    return out


def compare_settlements(amazon: Iterable[SettlementFact], erpnext: Iterable[JournalEntryRow],
                        ledger: Mapping[str, str] | None = None) -> list[Finding]:
    """Settlements Amazon serves vs submitted Journal Entries: not posted, posted twice, or whose bank line
    (when read: ``JournalEntryRow.bank_line``) differs from the deposit."""
    ledger = ledger or {}
    by_id: dict[str, list[JournalEntryRow]] = {}
    for row in erpnext:
        by_id.setdefault(row.settlement_id, []).append(row)
    out: list[Finding] = []
    for s in amazon:
        month = month_of(s.deposit_date)
        rows = sorted(by_id.get(s.settlement_id, []), key=lambda r: r.name)
        deposit = f"{s.total} {s.currency}"
        if not rows:
            out.append(Finding(FindingKind.SETTLEMENT_NOT_POSTED, s.marketplace, month, s.settlement_id,
                               amazon=f"deposit {deposit} on {s.deposit_date.isoformat()}"))
            continue
        if len(rows) > 1:
            out.append(Finding(FindingKind.SETTLEMENT_POSTED_TWICE, s.marketplace, month, s.settlement_id,
                               tuple(r.name for r in rows), amazon=f"deposit {deposit}",
                               erpnext=f"{len(rows)} submitted Journal Entries",
                               known_to_ledger=ledger.get(s.settlement_id)))
        for row in rows:
            if row.bank_line is not None and row.bank_line != s.total:
                out.append(Finding(FindingKind.SETTLEMENT_BANK_DIFFERS, s.marketplace, month, s.settlement_id,
                                   (row.name,), amazon=f"deposit {deposit}",
                                   erpnext=f"bank line {row.bank_line} {s.currency}"))
    return out


def month_totals(amazon: Iterable[AmazonOrderFact], erpnext: Iterable[SalesOrderRow], findings: Iterable[Finding],
                 *, start: date, end: date, known_ids: set[str], marketplaces: set[str],
                 whole_seller: bool = True) -> list[MonthTotals]:
    """Per marketplace, month and currency: orders and totals on both sides, and the findings counted.

    ERPNext's side is every live Sales Order dated in the range (duplicates and unknowns included: that is
    what the books hold), in the month and marketplace Amazon placed the order; a Sales Order Amazon does
    not know counts by its own date and marketplace (only the audited ``marketplaces``; one without any only
    when ``whole_seller``)."""
    amazon = list(amazon)
    placed = {a.order_id: (a.marketplace, a.day) for a in amazon}
    table: dict[tuple[str, str, str], MonthTotals] = {}

    def cell(marketplace: str, month: str, currency: str) -> MonthTotals:
        key = (marketplace, month, currency)
        if key not in table:
            table[key] = MonthTotals(marketplace, month, currency)
        return table[key]

    currency_of: dict[tuple[str, str], str] = {}
    for a in amazon:
        t = cell(a.marketplace, month_of(a.day), a.currency)
        currency_of[(a.marketplace, t.month)] = a.currency
        t.amazon_orders += 1
        if a.importable and not a.cancelled:
            t.amazon_importable += 1
            t.amazon_total += a.total or Decimal(0)
    for row in erpnext:
        if not row.live:
            continue
        if row.order_id in placed:  # counted in the month Amazon placed it, whatever day it carries
            marketplace, day = placed[row.order_id]
        elif row.order_id in known_ids or row.day is None or not start <= row.day <= end:
            continue  # an order placed outside the range
        else:
            if not _audited(row, marketplaces, whole_seller):
                continue
            marketplace, day = row.marketplace or "", row.day
        t = cell(marketplace, month_of(day), row.currency)
        t.erpnext_orders += 1
        t.erpnext_total += row.grand_total
    for f in findings:
        currency = currency_of.get((f.marketplace, f.month))
        matches = [t for (m, mo, _), t in table.items() if m == f.marketplace and mo == f.month]
        t = next((x for x in matches if x.currency == currency), matches[0] if matches else None) \
            or cell(f.marketplace, f.month, currency or "")
        t.findings[f.kind.short] = t.findings.get(f.kind.short, 0) + 1
    return sorted(table.values(), key=lambda t: (t.marketplace, t.month, t.currency))
