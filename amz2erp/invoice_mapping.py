"""Pure mapping for invoice mode: a settlement's order rows → shipments and refunds, and ERPNext's own unsaved
documents (what ``make_sales_invoice``, ``make_delivery_note`` and ``make_sales_return`` answer) → the
documents to POST, so that each one holds exactly what the settlement says Amazon charged or refunded.

* :func:`settled_orders` groups the order-side rows of a settlement (principal, shipping, gift wrap, their
  taxes, promotions, marketplace-facilitator tax) per order: its shipments (Order rows by shipment-id) and
  its refunds (refund rows by adjustment-id), with per-item principal and quantity and per-kind charges.
* :func:`invoice_payload` turns ERPNext's mapped Sales Invoice and one shipment into the invoice to submit:
  only the shipped Sales Order lines (``so_detail``), qty = shipped qty, rates by the Sales Order's own rule
  (``mapping._line_parts``: two lines one minor unit apart when a line total does not divide by its
  quantity), charge rows = the shipment's charges on the ``[accounts]`` the Sales Orders use. Its grand total
  is then the shipment's settled amount to the cent, which the function checks before answering.
* :func:`credit_note_payload` does the same for ERPNext's mapped return (negative quantities): the refunded
  lines, whole when the refunded principal equals the invoiced line, else the refunded quantity at the
  refunded amount. ``None`` when no quantity can carry the refund (a goodwill or partial-price refund, a rate
  above the invoiced one, a quantity no longer returnable): that refund is amount-only and becomes a Journal
  Entry credit note (:func:`journal_credit_note`).
* :func:`delivery_note_payload`: ERPNext's mapped Delivery Note with the shipped quantities of stock items.

Nothing here talks to ERPNext, reads the clock or writes anything.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any

from amz2erp.amazon.settlement_report import Settlement, SettlementRow, currency_exponent
from amz2erp.errors import RecordError
from amz2erp.invoice_refs import ORDER_ID_FIELD, POSTING_KEY_FIELD
from amz2erp.mapping import _CHARGES, _MF_DESCRIPTION, _line_parts, _tax_row, sales_order_total
from amz2erp.settlement_categories import Category, CategoryTable
from amz2erp.settlement_mapping import row_categories

__all__ = [
    "ChargeKind",
    "InvoiceMappingError",
    "Refund",
    "SettledItem",
    "SettledOrder",
    "Shipment",
    "SoLine",
    "credit_note_payload",
    "delivery_note_payload",
    "document_total",
    "invoice_payload",
    "journal_credit_note",
    "match_items",
    "settled_orders",
]


class InvoiceMappingError(RecordError):
    """One order's settled rows cannot be put on its documents (no matching Sales Order line, another currency,
    a total that would not come out to the cent): the order is reported and its rows stay off the invoices."""


class ChargeKind(str, Enum):
    """The charge rows of an invoice. The values are the ``[accounts]`` keys the Sales Orders book them on."""

    TAX = "item_tax"  # the seller's tax (item, shipping, gift wrap): one row, as on the Sales Order
    SHIPPING = "shipping"
    GIFT_WRAP = "gift_wrap"
    PROMOTION = "promotion_discount"
    SHIPPING_PROMOTION = "shipping_discount"
    MF_TAX = "marketplace_facilitator_tax"  # only with [orders] marketplace_facilitator_tax = "book"


#: Row order and descriptions: the Sales Order's (mapping._CHARGES, first charge per account).
_DESCRIPTIONS: dict[str, str] = {}
for _c in _CHARGES:
    _DESCRIPTIONS.setdefault(_c.account, _c.description)
_DESCRIPTIONS[ChargeKind.MF_TAX.value] = _MF_DESCRIPTION
_ORDER = [ChargeKind(a) for a in _DESCRIPTIONS if a != ChargeKind.MF_TAX.value] + [ChargeKind.MF_TAX]


@dataclass(frozen=True)
class SettledItem:
    """One order item's principal in a shipment or refund. ``principal`` is signed as Amazon signs it
    (positive on an order, negative on a refund); ``qty`` is the shipped or refunded quantity, None when no
    row says it."""

    order_item_code: str
    sku: str
    qty: int | None
    principal: Decimal

    @property
    def key(self) -> str:
        return self.order_item_code or f"sku:{self.sku}"


@dataclass(frozen=True)
class _Group:
    order_id: str
    currency: str
    posted_at: datetime | None
    items: tuple[SettledItem, ...]
    charges: Mapping[ChargeKind, Decimal]  # without MF tax
    mf_tax: Decimal  # the marketplace-facilitator tax the buyer paid (or got back): Amazon's sign
    other: Decimal  # order-side money neither an item nor a charge holds (goodwill, restocking fee, …)
    rows: int

    @property
    def posted(self) -> date | None:
        return None if self.posted_at is None else self.posted_at.astimezone(timezone.utc).date()

    def total(self, *, book_mf: bool) -> Decimal:
        """The settled order-side money, Amazon's sign (what the document's grand total must be)."""
        money = sum((i.principal for i in self.items), Decimal(0)) + sum(self.charges.values(), Decimal(0))
        return money + self.other + (self.mf_tax if book_mf else Decimal(0))

    def charge_rows(self, *, book_mf: bool) -> list[tuple[ChargeKind, Decimal]]:
        charges = dict(self.charges)
        if book_mf and self.mf_tax:
            charges[ChargeKind.MF_TAX] = self.mf_tax
        return [(k, charges[k]) for k in _ORDER if charges.get(k)]


@dataclass(frozen=True)
class Shipment(_Group):
    shipment_id: str = ""


@dataclass(frozen=True)
class Refund(_Group):
    adjustment_id: str = ""


@dataclass(frozen=True)
class SettledOrder:
    order_id: str
    shipments: tuple[Shipment, ...] = ()
    refunds: tuple[Refund, ...] = ()


def _norm(text: str) -> str:
    return re.sub(r"[\s_-]+", "", text).casefold()


def _is_refund(row: SettlementRow) -> bool:
    return row.transaction_type.strip().casefold().endswith("refund")


def _kind(row: SettlementRow, cat: Category) -> ChargeKind | str | None:
    """"principal", a charge kind, "mf", "other", or None (not order-side money)."""
    desc = _norm(row.amount_description)
    if cat is Category.PRINCIPAL:
        return "principal"
    if cat is Category.SHIPPING:
        return ChargeKind.SHIPPING
    if cat is Category.GIFT_WRAP:
        return ChargeKind.GIFT_WRAP
    if cat in (Category.TAX, Category.REFUND_TAX):
        return ChargeKind.TAX
    if cat is Category.MF_TAX:
        return "mf"
    if cat is Category.PROMOTION:
        return ChargeKind.SHIPPING_PROMOTION if "ship" in desc else ChargeKind.PROMOTION
    if cat is Category.REFUND_PRINCIPAL:
        # one category holds every refunded price component; the labels say which (V2: ItemPrice|Shipping;
        # Finances transactions: Shipping|ShippingPrincipal, GiftWrap|…)
        kind = _norm(row.amount_type)
        if desc.startswith("shipping") or kind == "shipping":
            return ChargeKind.SHIPPING
        if desc.startswith("giftwrap") or kind == "giftwrap":
            return ChargeKind.GIFT_WRAP
        if desc.endswith("principal"):
            return "principal"
        return "other"
    return None


@dataclass
class _Acc:
    posted_at: datetime | None = None
    items: dict[str, list[Any]] = field(default_factory=dict)  # key → [code, sku, qty, principal minor, qty seen on principal]
    charges: dict[ChargeKind, int] = field(default_factory=dict)
    mf: int = 0
    other: int = 0
    rows: int = 0


def settled_orders(settlement: Settlement, table: CategoryTable) -> list[SettledOrder]:
    """The order-side rows of ``settlement`` per order, as shipments and refunds (orders by id; shipments and
    refunds in the order of their first row). Fees, withheld taxes and rows without an order id are not
    order-side and are left to the settlement's entry."""
    cats = row_categories(settlement, table)
    cur = settlement.currency
    exp = currency_exponent(cur)
    groups: dict[tuple[str, bool, str], _Acc] = {}
    for row, cat in zip(settlement.rows, cats, strict=True):
        if not row.order_id or not cat.order_side:
            continue
        kind = _kind(row, cat)
        if kind is None:
            continue
        refund = _is_refund(row)
        acc = groups.setdefault((row.order_id, refund, row.adjustment_id if refund else row.shipment_id), _Acc())
        acc.rows += 1
        if row.posted_at is not None and (acc.posted_at is None or row.posted_at > acc.posted_at):
            acc.posted_at = row.posted_at  # the last row's time: the document comes after all of them
        if kind == "mf":
            # the withholding that cancels the buyer's tax is Amazon's business, not the buyer's: only the
            # tax the buyer paid (on an order) or got back (on a refund) belongs on the document
            if (row.amount_minor > 0) != refund:
                acc.mf += row.amount_minor
        elif kind == "other":
            acc.other += row.amount_minor
        elif kind == "principal":
            key = row.order_item_code or f"sku:{row.sku}"
            item = acc.items.setdefault(key, [row.order_item_code, row.sku, None, 0, False])
            item[3] += row.amount_minor
            if row.qty is not None and not item[4]:
                item[2], item[4] = abs(row.qty), True
        else:
            assert isinstance(kind, ChargeKind)
            acc.charges[kind] = acc.charges.get(kind, 0) + row.amount_minor
            if row.qty is not None and (row.order_item_code or row.sku):
                # an item's quantity may sit on any of its rows (quantity-purchased is not on every row)
                key = row.order_item_code or f"sku:{row.sku}"
                if key in acc.items and acc.items[key][2] is None:
                    acc.items[key][2] = abs(row.qty)

    def dec(minor: int) -> Decimal:
        return Decimal(minor).scaleb(-exp)

    orders: dict[str, dict[str, list[Any]]] = {}
    for (oid, refund, ident), acc in groups.items():
        items = tuple(SettledItem(code, sku, qty, dec(minor)) for code, sku, qty, minor, _ in acc.items.values())
        charges = {k: dec(v) for k, v in acc.charges.items() if v}
        common: dict[str, Any] = dict(order_id=oid, currency=cur, posted_at=acc.posted_at, items=items,
                                      charges=charges, mf_tax=dec(acc.mf), other=dec(acc.other), rows=acc.rows)
        entry = orders.setdefault(oid, {"shipments": [], "refunds": []})
        if refund:
            entry["refunds"].append(Refund(**common, adjustment_id=ident))
        else:
            entry["shipments"].append(Shipment(**common, shipment_id=ident))
    return [SettledOrder(oid, tuple(v["shipments"]), tuple(v["refunds"])) for oid, v in sorted(orders.items())]


# --------------------------------------------------------------------------------------------- Sales Order lines


@dataclass(frozen=True)
class SoLine:
    """A Sales Order Item as the matching needs it."""

    name: str  # the SO Item's name: what so_detail and filtered_children name
    item_code: str
    amazon_order_item_id: str
    description: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SoLine:
        return cls(str(row.get("name") or ""), str(row.get("item_code") or ""),
                   str(row.get("amazon_order_item_id") or ""), str(row.get("description") or ""))


def _sku_in(description: str, sku: str) -> bool:
    # the order mapping writes "Amazon SKU <sku>" (numbered " #2" when an order repeats a SKU) into each line
    pattern = r"Amazon SKU " + re.escape(html.escape(sku, quote=False)) + r"(?: #\d+)?(?:,|<|$)"
    return re.search(pattern, description) is not None


def match_items(order_id: str, items: Iterable[SettledItem], lines: Sequence[SoLine],
                sku_codes: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Settled item key → the names of its Sales Order lines (one Amazon line may be two ERPNext lines).

    By ``amazon_order_item_id`` = order-item-code; else by the SKU the order mapping wrote into the line's
    description; else by item code (``sku_codes``: SKU → item_code). Each line belongs to one item at most.
    :class:`InvoiceMappingError` when an item finds no line."""
    taken: set[str] = set()
    out: dict[str, list[str]] = {}
    for item in items:
        found: list[str] = []
        if item.order_item_code:
            found = [ln.name for ln in lines if ln.amazon_order_item_id == item.order_item_code and ln.name not in taken]
        if not found and item.sku:
            found = [ln.name for ln in lines if ln.name not in taken and _sku_in(ln.description, item.sku)]
            code = (sku_codes or {}).get(item.sku)
            if not found and code:
                found = [ln.name for ln in lines if ln.name not in taken and ln.item_code == code]
        if not found:
            what = f"order-item-code {item.order_item_code}" if item.order_item_code else f"SKU {item.sku!r}"
            raise InvoiceMappingError(f"order {order_id}: no Sales Order line for {what}")
        taken.update(found)
        out[item.key] = found
    return out


# --------------------------------------------------------------------------------------------- documents

_LOCAL = re.compile(r"^__")
#: Totals ERPNext computes on save: the mapper's values describe the whole Sales Order, not what we post.
_COMPUTED = frozenset({
    "total_qty", "total", "base_total", "net_total", "base_net_total", "total_taxes_and_charges",
    "base_total_taxes_and_charges", "grand_total", "base_grand_total", "rounded_total", "base_rounded_total",
    "rounding_adjustment", "base_rounding_adjustment", "outstanding_amount", "in_words", "base_in_words",
    "amount_eligible_for_commission", "total_net_weight",
})


def _clean(doc: Mapping[str, Any]) -> dict[str, Any]:
    """ERPNext's mapped document without its client-side flags (``__islocal``, ``__onload`` …)."""
    return {k: v for k, v in doc.items() if not _LOCAL.match(k)}


def _header_of(mapped: Mapping[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in _clean(mapped).items() if k not in _COMPUTED}
    doc.pop("name", None)
    return doc


def _step(currency: str, precision: int = 2) -> Decimal:
    return Decimal(1).scaleb(-min(currency_exponent(currency), precision))


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def _parts(total: Decimal, qty: int, currency: str, precision: int) -> list[tuple[int, Decimal]]:
    """The Sales Order's rate rule (mapping._line_parts): the currency's minor unit, else the site's."""
    step = _step(currency, precision)
    if total != total.quantize(step):
        step = Decimal(1).scaleb(-precision)
    return _line_parts(total, qty, step)


def document_total(doc: Mapping[str, Any], *, precision: int = 2) -> Decimal:
    """grand_total as ERPNext computes it for our documents (lines rounded, Actual rows as given)."""
    return sales_order_total(doc, precision=precision)


def _header(doc: dict[str, Any], *, key: str, order_id: str, posted: date, posted_at: datetime | None) -> None:
    doc.update({
        "posting_date": posted.isoformat(),
        # without set_posting_time ERPNext overwrites the date with today (and a past due date then fails)
        "set_posting_time": 1,
        POSTING_KEY_FIELD: key,
        ORDER_ID_FIELD: order_id,
        "docstatus": 1,
    })
    if posted_at is not None:
        doc["posting_time"] = posted_at.astimezone(timezone.utc).strftime("%H:%M:%S")


def _charges(group: _Group, accounts: Mapping[str, str], cost_center: str | None, *,
             book_mf: bool) -> list[dict[str, Any]]:
    rows = []
    for kind, amount in group.charge_rows(book_mf=book_mf):
        row = _tax_row(accounts[kind.value], _DESCRIPTIONS[kind.value], amount)
        if cost_center:
            row["cost_center"] = cost_center
        rows.append(row)
    return rows


def _cost_center(mapped: Mapping[str, Any]) -> str | None:
    for row in [*(mapped.get("taxes") or ()), *(mapped.get("items") or ())]:
        if row.get("cost_center"):
            return str(row["cost_center"])
    return None


def _set_line(row: Mapping[str, Any], qty: int, rate: Decimal) -> dict[str, Any]:
    out = _clean(row)
    factor = _dec(row.get("conversion_factor")) or Decimal(1)
    out.update({"qty": qty, "stock_qty": float(qty * factor), "rate": float(rate), "amount": float(rate * qty)})
    # a price-list rate with a discount would make ERPNext derive the rate again: the settled rate rules
    for derived in ("price_list_rate", "base_price_list_rate", "discount_percentage", "discount_amount",
                    "margin_rate_or_amount", "rate_with_margin", "base_rate_with_margin"):
        out.pop(derived, None)
    return out


def _finish(doc: dict[str, Any], group: _Group, *, book_mf: bool, precision: int, what: str) -> dict[str, Any]:
    want = group.total(book_mf=book_mf).quantize(Decimal(1).scaleb(-precision))
    got = document_total(doc, precision=precision)
    if got != want:
        raise InvoiceMappingError(f"order {group.order_id}: {what} would total {got}, the settlement says {want}")
    return doc


def _check_currency(mapped: Mapping[str, Any], group: _Group, what: str) -> None:
    currency = str(mapped.get("currency") or group.currency).upper()
    if currency != group.currency.upper():
        raise InvoiceMappingError(f"order {group.order_id}: the {what} is in {currency}, the settlement in "
                                  f"{group.currency}")


def invoice_payload(mapped: Mapping[str, Any], shipment: Shipment, lines: Mapping[str, list[str]], *,
                    key: str, accounts: Mapping[str, str], update_stock: bool, book_mf: bool,
                    posting_date: date, precision: int = 2) -> dict[str, Any]:
    """The Sales Invoice to POST for one shipment, from ``make_sales_invoice``'s answer (``mapped``, made with
    ``filtered_children`` = the shipped lines). ``lines`` is :func:`match_items`' answer, ``accounts`` the
    full ``[accounts]`` names by kind (``MappingContext.accounts``)."""
    _check_currency(mapped, shipment, "Sales Order")
    if shipment.other:
        raise InvoiceMappingError(f"order {shipment.order_id}: shipment {shipment.shipment_id or '-'} carries "
                                  f"{shipment.other} that is neither a price nor a charge")
    by_detail = _rows_by_so_detail(mapped)
    items: list[dict[str, Any]] = []
    for item in shipment.items:
        rows = [r for name in lines.get(item.key, ()) for r in by_detail.get(name, ())]
        if not rows:
            raise InvoiceMappingError(f"order {shipment.order_id}: ERPNext has nothing left to invoice for "
                                      f"{item.order_item_code or item.sku} (already billed?)")
        qty = item.qty if item.qty else int(sum(_dec(r.get("qty")) for r in rows))
        if qty <= 0 or item.principal < 0:
            raise InvoiceMappingError(f"order {shipment.order_id}: {item.principal} for {qty} of "
                                      f"{item.order_item_code or item.sku} is no sale")
        for i, (q, rate) in enumerate(_parts(item.principal, qty, shipment.currency, precision)):
            # a third rate on one line reuses its last ERPNext line (same so_detail)
            items.append(_set_line(rows[min(i, len(rows) - 1)], q, rate))
    doc = _header_of(mapped)
    doc.update({
        "items": items,
        "taxes": _charges(shipment, accounts, _cost_center(mapped), book_mf=book_mf),
        "taxes_and_charges": "",
        "due_date": posting_date.isoformat(),
        "payment_schedule": [],
        "update_stock": 1 if update_stock else 0,
        "ignore_pricing_rule": 1,
        "disable_rounded_total": 1,  # else outstanding is the rounded total, not the settled amount
    })
    _header(doc, key=key, order_id=shipment.order_id, posted=posting_date, posted_at=shipment.posted_at)
    return _finish(doc, shipment, book_mf=book_mf, precision=precision, what="the Sales Invoice")


def credit_note_payload(mapped: Mapping[str, Any], refund: Refund, lines: Mapping[str, list[str]], *,
                        key: str, accounts: Mapping[str, str], update_stock: bool, book_mf: bool,
                        posting_date: date, precision: int = 2) -> dict[str, Any] | None:
    """The Credit Note to POST for one refund, from ``make_sales_return``'s answer on the order's invoice, or
    None when no item quantity can carry the refund (amount-only: :func:`journal_credit_note`)."""
    _check_currency(mapped, refund, "invoice")
    if refund.other or not refund.items or any(i.principal >= 0 for i in refund.items):
        return None
    by_detail = _rows_by_so_detail(mapped)
    items: list[dict[str, Any]] = []
    for item in refund.items:
        rows = [r for name in lines.get(item.key, ()) for r in by_detail.get(name, ())]
        returnable = int(-sum(_dec(r.get("qty")) for r in rows))  # ERPNext maps what is left to return
        if not rows or returnable <= 0:
            return None
        amount = -item.principal
        invoiced = sum((-_dec(r.get("qty")) * _dec(r.get("rate")) for r in rows), Decimal(0))
        if amount == invoiced:
            items.extend(_clean(r) for r in rows)  # the whole line, as invoiced
            continue
        if not item.qty or item.qty > returnable:
            return None
        parts = _parts(amount, item.qty, refund.currency, precision)
        # ERPNext refuses a return rate above the invoiced one
        if max(r for _, r in parts) > max(_dec(r.get("rate")) for r in rows):
            return None
        for i, (q, rate) in enumerate(parts):
            items.append(_set_line(rows[min(i, len(rows) - 1)], -q, rate))
    doc = _header_of(mapped)
    doc.update({
        "items": items,
        "taxes": _charges(refund, accounts, _cost_center(mapped), book_mf=book_mf),
        "taxes_and_charges": "",
        "payment_schedule": [],
        "update_stock": 1 if update_stock else 0,
        "ignore_pricing_rule": 1,
        "disable_rounded_total": 1,
        # the credit note keeps its own (negative) outstanding: the settlement's receipt clears it
        "update_outstanding_for_self": 1,
    })
    _header(doc, key=key, order_id=refund.order_id, posted=posting_date, posted_at=refund.posted_at)
    return _finish(doc, refund, book_mf=book_mf, precision=precision, what="the Credit Note")


def delivery_note_payload(mapped: Mapping[str, Any], shipment: Shipment, lines: Mapping[str, list[str]],
                          stock_items: Collection[str], *, key: str, posting_date: date) -> dict[str, Any] | None:
    """The Delivery Note to POST for one shipment from ``make_delivery_note``'s answer: the shipped quantity
    of each stock item, taken from its Sales Order lines in order. None when nothing of it is a stock item."""
    by_detail = _rows_by_so_detail(mapped)
    items: list[dict[str, Any]] = []
    for item in shipment.items:
        rows = [r for name in lines.get(item.key, ()) for r in by_detail.get(name, ())]
        rows = [r for r in rows if str(r.get("item_code")) in stock_items]
        left = item.qty if item.qty else int(sum(_dec(r.get("qty")) for r in rows))
        for row in rows:
            take = min(left, int(_dec(row.get("qty"))))
            if take <= 0:
                break
            out = _clean(row)
            factor = _dec(row.get("conversion_factor")) or Decimal(1)
            out.update({"qty": take, "stock_qty": float(take * factor)})
            items.append(out)
            left -= take
    if not items:
        return None
    doc = _header_of(mapped)
    doc["items"] = items
    _header(doc, key=key, order_id=shipment.order_id, posted=posting_date, posted_at=shipment.posted_at)
    return doc


@dataclass(frozen=True)
class InvoiceInfo:
    """What a Journal Entry credit note needs of the invoice it credits."""

    name: str
    customer: str
    debit_to: str
    currency: str
    conversion_rate: Decimal
    party_account_currency: str


def journal_credit_note(*, key: str, order_id: str, adjustment_id: str, invoice: InvoiceInfo, amount: Decimal,
                        refund_account: str, company: str, company_currency: str, posting_date: date,
                        cost_center: str | None) -> dict[str, Any]:
    """A Journal Entry ``voucher_type: "Credit Note"`` for an amount-only refund of ``amount`` (positive, in the
    invoice's currency): Cr the customer's receivable against the invoice, Dr the refunds account."""
    if amount <= 0:
        raise InvoiceMappingError(f"order {order_id}: refund {adjustment_id} of {-amount} is no refund")
    step = _step(company_currency)
    base = (amount * invoice.conversion_rate).quantize(step, rounding=ROUND_HALF_UP)
    receivable: dict[str, Any] = {
        "account": invoice.debit_to, "party_type": "Customer", "party": invoice.customer,
        "reference_type": "Sales Invoice", "reference_name": invoice.name,
    }
    multi = invoice.party_account_currency.upper() != company_currency.upper()
    if multi:  # a receivable in the invoice's currency: its amount at the invoice's rate
        receivable.update({"credit_in_account_currency": float(amount), "exchange_rate": float(invoice.conversion_rate)})
    else:
        receivable["credit_in_account_currency"] = float(base)
    refund_row: dict[str, Any] = {"account": refund_account, "debit_in_account_currency": float(base)}
    if multi:
        refund_row["exchange_rate"] = 1.0
    if cost_center:
        refund_row["cost_center"] = cost_center
    return {
        "doctype": "Journal Entry",
        "voucher_type": "Credit Note",
        "company": company,
        "posting_date": posting_date.isoformat(),
        "multi_currency": 1 if multi else 0,
        "user_remark": f"Amazon refund {adjustment_id} of order {order_id} (no quantity: amount only)",
        POSTING_KEY_FIELD: key,
        "accounts": [receivable, refund_row],
        "docstatus": 1,
    }


def _rows_by_so_detail(mapped: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """A mapped document's item rows by the Sales Order line they came from (``so_detail``)."""
    by_detail: dict[str, list[Mapping[str, Any]]] = {}
    for row in mapped.get("items") or ():
        by_detail.setdefault(str(row.get("so_detail") or ""), []).append(row)
    return by_detail
