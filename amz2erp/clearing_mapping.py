"""Pure mapping, invoice mode: the receipt Journal Entries that clear a settlement's invoices and credit notes.

In invoice mode the settlement's own Journal Entry books its invoiced orders' order-side money as one line on
the clearing account (:attr:`Category.INVOICED`). The receipt entries take it back out, document by document:
each credits the customer's receivable for an invoice (party, reference = the invoice, so its outstanding
drops to zero) and debits it for a credit note, balanced by one row on the same clearing account. The clearing
account then nets to zero per settlement, and the bank line of the settlement entry still equals the deposit.

* At most ``max_party_rows`` receivable rows per entry (ERPNext queues the submission of a Journal Entry with
  more than 100 rows, and large entries are slow to read): the documents are split into parts, an order's
  documents kept together, each part keyed ``receipt_key(settlement, n)``. The split depends only on the
  documents (sorted), so a re-run builds the same entries with the same keys.
* Rows referencing the same document are netted (an amount-only credit note made against an invoice of the
  same settlement lowers that invoice's outstanding: the receipt credits the invoice the difference).
* A settlement in another currency than the company's: every receivable row is what the document holds in
  the company currency (at the invoice's rate), the clearing rows together are exactly the settlement
  entry's clearing line (at the settlement's rate); the difference is the exchange gain or loss, one row on
  the company's Exchange Gain/Loss account per entry.

Amounts go out as ``debit_in_account_currency`` / ``credit_in_account_currency`` floats of two-decimal values,
as the settlement entry's do; every account here is in the company currency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from amz2erp.amazon.settlement_report import Settlement, currency_exponent, format_minor, to_minor
from amz2erp.erpnext.schema import Doctype
from amz2erp.invoice_refs import POSTING_KEY_FIELD, ClearingRef, Invoicing, RefKind, receipt_key
from amz2erp.settlement_categories import Category
from amz2erp.settlement_mapping import (
    Conversion,
    SettlementAccounts,
    SettlementInvariantError,
    SettlementSummary,
    _convert,
)

__all__ = ["MAX_PARTY_ROWS", "ReceiptEntry", "receipt_entries"]

#: ERPNext submits a Journal Entry of more than 100 rows in the background: stay below.
MAX_PARTY_ROWS = 100
PARTY_TYPE = "Customer"
_KIND_ORDER = {RefKind.INVOICE: 0, RefKind.CREDIT_NOTE: 1, RefKind.JOURNAL_CREDIT_NOTE: 2}


@dataclass(frozen=True)
class ReceiptEntry:
    """One receipt Journal Entry: its key (``amazon_posting_key``), the payload to POST (without docstatus:
    the writer decides) and the documents it clears."""

    key: str
    payload: dict[str, Any]
    refs: tuple[ClearingRef, ...]


@dataclass
class _PartyRow:
    """One receivable row: the documents referencing the same target, netted."""

    order_id: str
    account: str
    customer: str
    reference: tuple[str, str] | None  # (reference_type, reference_name)
    amount: int = 0  # company minor units, + = credit the customer
    settled: int = 0  # settlement minor units, same sign
    refs: list[ClearingRef] | None = None


def _sort_key(ref: ClearingRef) -> tuple[str, int, str, str]:
    return ref.order_id, _KIND_ORDER.get(ref.kind, 9), ref.doctype, ref.name


def _reference(ref: ClearingRef, invoices: dict[str, list[ClearingRef]]) -> tuple[str, str] | None:
    """What a receivable row for ``ref`` references. A journal credit note cannot be referenced by a
    receivable debit (ERPNext: "you can select reference document only if account gets credited"); it was
    made against the order's invoice and lowered that invoice's outstanding, so the row references the
    invoice: ``ref.against``, else the order's one invoice in this settlement, else nothing (the party's
    balance is still right; ERPNext's Payment Reconciliation can match it)."""
    if ref.kind is not RefKind.JOURNAL_CREDIT_NOTE and ref.doctype != Doctype.JOURNAL_ENTRY:
        return ref.doctype, ref.name
    if ref.against:
        return Doctype.SALES_INVOICE, ref.against
    same = [r for r in invoices.get(ref.order_id, []) if r.customer == ref.customer
            and r.receivable_account == ref.receivable_account]
    return (Doctype.SALES_INVOICE, same[0].name) if len(same) == 1 else None


def _party_rows(refs: Sequence[ClearingRef], settlement_currency: str, company_currency: str) -> list[_PartyRow]:
    invoices: dict[str, list[ClearingRef]] = defaultdict(list)
    for ref in refs:
        if ref.kind is RefKind.INVOICE:
            invoices[ref.order_id].append(ref)
    rows: dict[tuple[str, str, tuple[str, str] | None], _PartyRow] = {}
    for ref in refs:
        target = _reference(ref, invoices)
        row = rows.setdefault((ref.receivable_account, ref.customer, target),
                              _PartyRow(ref.order_id, ref.receivable_account, ref.customer, target, refs=[]))
        try:
            row.amount += to_minor(ref.amount, company_currency)
            row.settled += to_minor(ref.settled, settlement_currency)
        except ValueError as exc:
            raise SettlementInvariantError(f"{ref.doctype} {ref.name}: an amount {exc}") from None
        assert row.refs is not None
        row.refs.append(ref)
    return list(rows.values())


def _parts(rows: list[_PartyRow], max_party_rows: int) -> list[list[_PartyRow]]:
    """Consecutive parts of at most ``max_party_rows`` rows; an order's rows stay in one part when they fit."""
    by_order: dict[str, list[_PartyRow]] = defaultdict(list)
    for row in rows:
        by_order[row.order_id].append(row)
    parts: list[list[_PartyRow]] = []
    current: list[_PartyRow] = []
    for oid in sorted(by_order):
        group = by_order[oid]
        if current and len(current) + len(group) > max_party_rows:
            parts.append(current)
            current = []
        for row in group:
            if len(current) == max_party_rows:
                parts.append(current)
                current = []
            current.append(row)
    if current:
        parts.append(current)
    return parts


def _money(minor: int, currency: str) -> float:
    return float(Decimal(minor).scaleb(-currency_exponent(currency)))


def receipt_entries(
    settlement: Settlement,
    summary: SettlementSummary,
    invoicing: Invoicing,
    accounts: SettlementAccounts,
    *,
    company: str,
    posting_date: date | str,
    cost_center: str | None,
    conversion: Conversion | None,
    max_party_rows: int = MAX_PARTY_ROWS,
) -> list[ReceiptEntry]:
    """The receipt entries clearing ``invoicing.refs`` (empty when there is nothing to clear).

    ``summary`` is the summary of the settlement's invoice-mode entry (``settlement_to_journal_entry(...,
    invoicing=invoicing).summary``): its :attr:`Category.INVOICED` total, in the company currency when the
    settlement was converted, is what the clearing rows add up to, to the cent. ``conversion`` is the one
    that entry was built with (None: the settlement is in the company currency).

    Raises :class:`SettlementInvariantError` when the documents do not hold what the settlement entry put
    on the clearing account, or (same currency) an invoice differs from what the settlement pays it by more
    than a rounding cent; ValueError for a ``summary`` that is not an invoice-mode one.
    """
    if max_party_rows < 1:
        raise ValueError(f"max_party_rows {max_party_rows}: at least 1")
    sid, currency = settlement.settlement_id, settlement.currency
    refs = sorted(invoicing.refs, key=_sort_key)
    if not refs:
        return []
    cleared = summary.category(Category.INVOICED)
    if cleared is None:
        raise ValueError(f"settlement {sid}: the summary has no invoiced line (build the entry with invoicing=)")
    if (conversion is None) != (summary.converted is None):
        raise ValueError(f"settlement {sid}: the summary and the conversion disagree on the settlement's currency")
    company_currency = currency if summary.converted is None else summary.converted.currency
    rows = _party_rows(refs, currency, company_currency)
    settled_total = sum(r.settled for r in rows)
    if settled_total != cleared.amount_minor:
        raise SettlementInvariantError(
            f"settlement {sid}: the documents settle {format_minor(settled_total, currency)} {currency}, the entry "
            f"clears {format_minor(cleared.amount_minor, currency)}; receipts not posted"
        )
    if summary.converted is None:
        clearing_total = settled_total
        rate = Decimal(1)
    else:
        clearing_total = to_minor(summary.converted.categories.get(Category.INVOICED, Decimal(0)), company_currency)
        rate = summary.converted.rate

    clearing = accounts.for_category(Category.INVOICED)
    difference_account = accounts.exchange_gain_loss or accounts.for_category(Category.CURRENCY_DIFFERENCE)
    parts = _parts(rows, max_party_rows)
    shares = [p_settled if summary.converted is None else _convert(p_settled, currency, rate, company_currency)
              for p_settled in (sum(r.settled for r in part) for part in parts)]
    shares[-1] = clearing_total - sum(shares[:-1])  # the parts' clearing rows add up to the entry's line
    built: list[tuple[tuple[ClearingRef, ...], list[dict[str, Any]]]] = []
    for part, share in zip(parts, shares, strict=True):
        part_refs = tuple(ref for row in part for ref in (row.refs or []))
        lines = _lines(sid, part, share, len(part_refs), clearing=clearing, difference_account=difference_account,
                       cost_center=cost_center, currency=currency, company_currency=company_currency,
                       rate=rate if summary.converted is not None else None)
        if lines:  # documents that net to nothing in a part with no clearing share: no entry
            built.append((part_refs, lines))
    posting = posting_date.isoformat() if isinstance(posting_date, date) else str(posting_date)
    out: list[ReceiptEntry] = []
    for n, (part_refs, lines) in enumerate(built, start=1):
        key = receipt_key(sid, n)
        _check(sid, key, lines, max_party_rows)
        payload: dict[str, Any] = {
            "doctype": Doctype.JOURNAL_ENTRY,
            "voucher_type": "Journal Entry",
            "company": company,
            "posting_date": posting,
            "user_remark": f"Amazon settlement {sid}: receipt {n} of {len(built)}, clears "
                           f"{len(part_refs)} document{'' if len(part_refs) == 1 else 's'}",
            POSTING_KEY_FIELD: key,
            "multi_currency": 0,
            "accounts": lines,
        }
        out.append(ReceiptEntry(key=key, payload=payload, refs=part_refs))
    return out


def _lines(sid: str, part: list[_PartyRow], share: int, documents: int, *, clearing: str, difference_account: str,
           cost_center: str | None, currency: str, company_currency: str, rate: Decimal | None) -> list[dict[str, Any]]:
    """One receipt's rows: a receivable row per netted document, the clearing row (``share``, company minor
    units, + = debit), the difference row (``rate`` None: the settlement is in the company currency)."""
    lines: list[dict[str, Any]] = []
    for row in part:
        if row.amount == 0:
            continue
        line: dict[str, Any] = {
            "account": row.account, "party_type": PARTY_TYPE, "party": row.customer,
            ("credit_in_account_currency" if row.amount > 0 else "debit_in_account_currency"):
                _money(abs(row.amount), company_currency),
            "user_remark": f"Amazon order {row.order_id}",
        }
        if row.reference is not None:
            line["reference_type"], line["reference_name"] = row.reference
        lines.append(line)
    if share:
        lines.append({"account": clearing,
                      ("debit_in_account_currency" if share > 0 else "credit_in_account_currency"):
                          _money(abs(share), company_currency),
                      "user_remark": f"invoiced (settlement {sid})"})
    difference = sum(r.amount for r in part) - share  # + : the documents hold more than the settlement paid
    if difference:
        if rate is None and abs(difference) > documents:
            raise SettlementInvariantError(
                f"settlement {sid}: documents are worth {format_minor(difference, currency)} {currency} more than "
                "the settlement pays for them; receipts not posted"
            )
        diff_line: dict[str, Any] = {
            "account": difference_account,
            ("debit_in_account_currency" if difference > 0 else "credit_in_account_currency"):
                _money(abs(difference), company_currency),
            "user_remark": "rounding difference" if rate is None
            else f"exchange difference ({currency}→{company_currency} at {rate})",
        }
        if cost_center:
            diff_line["cost_center"] = cost_center
        lines.append(diff_line)
    return lines


def _check(sid: str, key: str, lines: list[dict[str, Any]], max_party_rows: int) -> None:
    """Balanced to the cent, every amount positive and on one side, at most ``max_party_rows`` party rows."""
    def amount(line: dict[str, Any], side: str) -> Decimal:
        return Decimal(str(line.get(f"{side}_in_account_currency", 0)))

    problems = []
    if sum(amount(x, "debit") for x in lines) != sum(amount(x, "credit") for x in lines):
        problems.append("debits ≠ credits")
    if any((amount(x, "debit") > 0) == (amount(x, "credit") > 0) for x in lines):
        problems.append("a line without exactly one positive amount")
    if sum(1 for x in lines if x.get("party")) > max_party_rows:
        problems.append("too many party rows")
    if problems:
        raise SettlementInvariantError(f"settlement {sid}, {key}: internal error, not posted: {'; '.join(problems)}")
