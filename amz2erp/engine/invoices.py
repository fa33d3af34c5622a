"""Invoice mode, per settlement: the Sales Invoices, Delivery Notes and Credit Notes of its orders, exactly once.

:class:`Invoicer` (one per sync-settlements run, so a later settlement's refunds find earlier invoices, also in
a dry run) runs before each settlement's Journal Entry and answers what that entry and its receipts clear
(:class:`~amz2erp.invoice_refs.Invoicing`):

1. per settled shipment (Order rows by order-id + shipment-id) a submitted Sales Invoice made by ERPNext's
   ``make_sales_invoice`` from the order's Sales Order, holding what the settlement charged
   (:func:`~amz2erp.invoice_mapping.invoice_payload`), dated the shipment's posted date; with ``[orders]
   deliver = "invoice"`` it moves the stock itself (``update_stock``);
2. with ``deliver = "delivery_note"``, a Delivery Note per shipment from ``make_delivery_note`` (stock items
   only; an order without one is skipped quietly);
3. per refund (adjustment-id) a Credit Note from ``make_sales_return`` against the order's invoice, or, when no
   item quantity can carry the refund, a Journal Entry credit note against the invoice.

Each document carries its key (``invoice_refs``) in ``amazon_posting_key``. Intent in the ledger before the
write, outcome after; a key the ledger does not know as done is first looked up in ERPNext, so a crash at any
point followed by a re-run leaves exactly one document, and a re-run of a finished settlement reads nothing.

Per-order problems never stop the settlement: an order without a submitted Sales Order, or whose rows cannot be
put on its documents, is *unmatched* (its rows go to the suspense account) and reported; a Delivery Note
refused for negative stock is reported and the invoice still posts; an invoice refused for negative stock
(``deliver = "invoice"``) is posted without moving the stock and reported. A refund ERPNext refuses as a
Credit Note becomes a Journal Entry credit note. What ERPNext refuses after an order's first document was
written fails the settlement (nothing half-cleared is posted; the next run finds what was written).

A dry run writes through ``engine.dryrun`` and notes every document as a `PlannedWrite`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from amz2erp.amazon.settlement_report import Settlement, SettlementError, currency_exponent
from amz2erp.engine.dryrun import DryLedger
from amz2erp.engine.plan import Action, PlannedWrite
from amz2erp.engine.runtime import Runtime
from amz2erp.erpnext.client import MAKE_DELIVERY_NOTE, MAKE_SALES_INVOICE, MAKE_SALES_RETURN, ErpNextClient
from amz2erp.erpnext.schema import Doctype
from amz2erp.errors import (
    ErpNextClosedPeriodError,
    ErpNextDuplicateError,
    ErpNextFiscalYearError,
    ErpNextNegativeStockError,
    ErpNextValidationError,
    RecordError,
)
from amz2erp.invoice_mapping import (
    InvoiceInfo,
    InvoiceMappingError,
    Refund,
    SettledOrder,
    Shipment,
    SoLine,
    credit_note_payload,
    delivery_note_payload,
    document_total,
    invoice_payload,
    journal_credit_note,
    match_items,
    settled_orders,
)
from amz2erp.invoice_refs import (
    ORDER_ID_FIELD,
    POSTING_KEY_FIELD,
    ClearingRef,
    Invoicing,
    RefKind,
    credit_note_key,
    delivery_key,
    invoice_key,
)
from amz2erp.mapping import item_code_for
from amz2erp.settlement_categories import Category
from amz2erp.settlement_mapping import SettlementSummary, resolve_accounts
from amz2erp.state import Kind, StateStore, Status

log = logging.getLogger(__name__)

SI = Doctype.SALES_INVOICE
DN = Doctype.DELIVERY_NOTE
JE = Doctype.JOURNAL_ENTRY
SO = Doctype.SALES_ORDER
DONE = Status.DONE
BATCH = 100  # ids per `in` filter
# A Credit Note never carries marketplace-facilitator tax, even with [orders] marketplace_facilitator_tax =
# "book": on a refund Amazon gives the buyer the tax back and takes as much back from its withholding, equal and
# opposite rows that the settlement's entry clears together (invoice_categories); the invoice's MF tax row stays
# cleared by the order's withholding, so the MF tax account still nets to zero.
CREDIT_NOTES_BOOK_MF_TAX = False
_SI_FIELDS = ("name", "customer", "debit_to", "currency", "conversion_rate", "party_account_currency",
              "grand_total", "base_grand_total", "posting_date", ORDER_ID_FIELD)


class SettlementInvoicingError(SettlementError):
    """ERPNext refused a document of an order that already has one written for this settlement: the
    settlement is not posted (a re-run resumes from what was written)."""


class _Unmatched(Exception):
    """The order cannot be invoiced here (nothing of it written yet): its rows go to suspense."""


class _NotInvoiced(Exception):
    """A refund of a sale that was never invoiced (shipped before invoice mode): nothing to credit, the
    settlement's entry books its rows by category, as summary mode does."""


def _hash(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


@dataclass
class _InvoiceDoc:
    """A submitted Sales Invoice (or one a dry run would write) as the clearing and the credit notes need it."""

    name: str
    customer: str
    debit_to: str
    currency: str
    conversion_rate: Decimal
    party_account_currency: str
    base_grand_total: Decimal
    posting_date: str
    sales_order: str = ""

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], *, company_currency: str, sales_order: str = "") -> _InvoiceDoc:
        rate = _dec(doc.get("conversion_rate")) or Decimal(1)
        currency = str(doc.get("currency") or company_currency)
        base = doc.get("base_grand_total")
        step = Decimal(1).scaleb(-min(currency_exponent(company_currency), 2))
        amount = _dec(base) if base not in (None, "") else (_dec(doc.get("grand_total")) * rate).quantize(
            step, rounding=ROUND_HALF_UP)
        return cls(str(doc.get("name") or ""), str(doc.get("customer") or ""), str(doc.get("debit_to") or ""),
                   currency, rate, str(doc.get("party_account_currency") or company_currency), amount,
                   str(doc.get("posting_date") or ""), sales_order)

    def info(self) -> dict[str, Any]:
        return {"customer": self.customer, "debit_to": self.debit_to, "currency": self.currency,
                "conversion_rate": str(self.conversion_rate), "party_account_currency": self.party_account_currency,
                "base_grand_total": str(self.base_grand_total), "posting_date": self.posting_date,
                "sales_order": self.sales_order}

    @classmethod
    def from_info(cls, name: str, info: Mapping[str, Any]) -> _InvoiceDoc:
        return cls(name, str(info["customer"]), str(info["debit_to"]), str(info["currency"]),
                   Decimal(str(info["conversion_rate"])), str(info["party_account_currency"]),
                   Decimal(str(info["base_grand_total"])), str(info.get("posting_date") or ""),
                   str(info.get("sales_order") or ""))


@dataclass
class _OrderWork:
    order: SettledOrder
    refs: list[ClearingRef] = field(default_factory=list)
    written: bool = False  # a document of this order was written (or adopted) in this run


class Invoicer:
    """Writes one settlement's invoice-mode documents (see the module doc). ``erp``/``ledger`` are the
    settlement poster's: the real ones, or a dry run's."""

    def __init__(self, rt: Runtime, *, erp: ErpNextClient, ledger: StateStore | DryLedger,
                 plans: list[PlannedWrite] | None = None) -> None:
        self.rt = rt
        self.erp = erp
        self.state = ledger
        self.dry_run = isinstance(ledger, DryLedger)
        self.plans = plans if plans is not None else []
        settings = rt.settings
        self.orders_settings = settings.orders
        self.book_mf = settings.orders.marketplace_facilitator_tax == "book"
        self.ctx = rt.mapping_context()
        self.company = self.ctx.company
        self.company_currency = self.ctx.company_currency
        abbr = self.ctx.company_abbr
        table = settings.settlements.category_table()
        self.table = table
        accounts = resolve_accounts(settings.settlements, table, abbr)
        self.refund_account = accounts.for_category(Category.REFUND_PRINCIPAL)
        self.cost_center = accounts.cost_center
        self.precision = self.ctx.currency_precision
        self._sales_orders: dict[str, dict[str, Any] | None] = {}
        self._full_so: dict[str, dict[str, Any]] = {}
        self._stock: dict[str, bool] = {}
        self._invoices: dict[str, list[_InvoiceDoc]] = {}  # order id → invoices written or found this run
        # (doctype, key) → the submitted document ERPNext holds for it (None: none), read in batches
        self._by_key: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.problems: list[tuple[str, str]] = []

    # --- the settlement ----------------------------------------------------------------------------------

    def run(self, settlement: Settlement, summary: SettlementSummary | None = None) -> Invoicing:
        """One settlement. An Invoicer serves a whole run: the invoices of earlier settlements are known to the
        refunds of later ones without a lookup (and, in a dry run, although they were never written)."""
        self.problems = []
        orders = settled_orders(settlement, self.table)
        if summary is not None:  # the orders the settlement's summary reports with order-side money
            money = {o.order_id for o in summary.orders if o.charged or o.refunded or o.mf_tax}
            orders = [o for o in orders if o.order_id in money]
        self._prefetch(orders)
        refs: list[ClearingRef] = []
        unmatched: list[str] = []
        for order in orders:
            work = _OrderWork(order)
            try:
                self._order(work)
            except _Unmatched as exc:
                if work.written:  # never half an order on the invoices and half in suspense
                    raise SettlementInvoicingError(
                        f"settlement {settlement.settlement_id}: order {order.order_id}: {exc}") from None
                unmatched.append(order.order_id)
                self._problem(order.order_id, str(exc))
                continue
            except _NotInvoiced:
                self.rt.counts.add("refunds of sales never invoiced (booked by category)")
                continue
            except (ErpNextClosedPeriodError, ErpNextFiscalYearError) as exc:
                # the books, not the order: every order of the period would fail alike; nothing to suspense
                raise SettlementInvoicingError(
                    f"settlement {settlement.settlement_id}: order {order.order_id}: {exc}; the settlement is not "
                    "posted (open the period or add the fiscal year, then run again)") from None
            except RecordError as exc:
                if work.written:
                    raise SettlementInvoicingError(
                        f"settlement {settlement.settlement_id}: order {order.order_id}: {exc}; the settlement "
                        "is not posted (what was written is kept and found again by the next run)") from None
                unmatched.append(order.order_id)
                self._problem(order.order_id, str(exc))
                continue
            refs.extend(work.refs)
        if unmatched:
            self.rt.counts.add("orders settled without an invoice (suspense)", len(unmatched))
        return Invoicing(refs=tuple(refs), unmatched=tuple(unmatched), problems=tuple(self.problems))

    def _problem(self, order_id: str, text: str) -> None:
        line = text.removeprefix(f"order {order_id}: ")
        self.problems.append((order_id, line))
        log.warning("order %s: %s", order_id, line)

    def _order(self, work: _OrderWork) -> None:
        for shipment in work.order.shipments:
            self._shipment(work, shipment)
        for refund in work.order.refunds:
            self._refund(work, refund)

    # --- reads -------------------------------------------------------------------------------------------

    def _prefetch(self, orders: Sequence[SettledOrder]) -> None:
        """Sales Orders of the orders that still need a document (none for a settlement already invoiced), and
        the documents ERPNext may already hold for their keys (a crashed run, a lost ledger): one list call
        per hundred instead of one lookup per document."""
        keys: dict[str, list[str]] = {SI: [], JE: [], DN: []}
        for o in orders:
            for s in o.shipments:
                if self._done(Kind.INVOICE, k := invoice_key(o.order_id, s.shipment_id)) is None:
                    keys[SI].append(k)
                if self.orders_settings.deliver == "delivery_note" and self.state.get(
                        Kind.DELIVERY_NOTE, k := delivery_key(o.order_id, s.shipment_id)) is None:
                    keys[DN].append(k)
            for r in o.refunds:
                if self._done(Kind.CREDIT_NOTE, k := credit_note_key(o.order_id, r.adjustment_id)) is None:
                    keys[SI].append(k)
                    keys[JE].append(k)
        if not self.dry_run:
            for doctype, wanted in keys.items():
                fields = [*(_SI_FIELDS if doctype == SI else ("name",)), POSTING_KEY_FIELD]
                for i in range(0, len(wanted), BATCH):
                    chunk = wanted[i:i + BATCH]
                    self._by_key.update(((doctype, k), None) for k in chunk)
                    for row in self.erp.list(doctype, fields=fields, filters=[[POSTING_KEY_FIELD, "in", chunk],
                                                                              ["docstatus", "=", 1]]):
                        self._by_key[(doctype, str(row.get(POSTING_KEY_FIELD)))] = row
        self._fetch_sales_orders([o.order_id for o in orders if not self._all_done(o)])

    def _fetch_sales_orders(self, need: Sequence[str]) -> None:
        for i in range(0, len(need), BATCH):
            chunk = need[i:i + BATCH]
            for oid in chunk:
                self._sales_orders.setdefault(oid, None)
            rows = self.erp.list(SO, fields=["name", "amazon_order_id", "docstatus", "customer", "currency"],
                                 filters=[["amazon_order_id", "in", chunk], ["docstatus", "!=", 2]])
            for row in rows:
                oid = str(row.get("amazon_order_id"))
                known = self._sales_orders.get(oid)
                if known is None or int(row.get("docstatus") or 0) == 1:
                    self._sales_orders[oid] = row

    def _all_done(self, order: SettledOrder) -> bool:
        keys = [(Kind.INVOICE, invoice_key(order.order_id, s.shipment_id)) for s in order.shipments]
        keys += [(Kind.CREDIT_NOTE, credit_note_key(order.order_id, r.adjustment_id)) for r in order.refunds]
        if not all(self._done(kind, key) is not None for kind, key in keys):
            return False
        if self.orders_settings.deliver != "delivery_note":
            return True
        notes = [self.state.get(Kind.DELIVERY_NOTE, delivery_key(order.order_id, s.shipment_id)) for s in order.shipments]
        return all(e is not None and e.status in (DONE, Status.SKIPPED) for e in notes)

    def _done(self, kind: Kind, key: str) -> Any:
        entry = self.state.get(kind, key)
        return entry if entry is not None and entry.status == DONE else None

    def _sales_order(self, order_id: str) -> dict[str, Any]:
        if order_id not in self._sales_orders:
            self._fetch_sales_orders([order_id])
        row = self._sales_orders.get(order_id)
        if row is None:
            raise _Unmatched("settled without a Sales Order (imported by another tool, or outside the synced "
                             "window): its rows go to the suspense account")
        if int(row.get("docstatus") or 0) != 1:
            raise _Unmatched(f"Sales Order {row['name']} is not submitted: not invoiced, its rows go to the "
                             "suspense account")
        name = str(row["name"])
        if name not in self._full_so:
            self._full_so[name] = self.erp.get(SO, name) or {}
        return self._full_so[name]

    def _lines(self, so: Mapping[str, Any]) -> list[SoLine]:
        return [SoLine.from_row(r) for r in so.get("items") or ()]

    def _sku_codes(self, items: Iterable[Any]) -> dict[str, str]:
        codes = {}
        for item in items:
            if item.sku:
                code = item_code_for(item.sku, None, self.rt.settings.items)
                if code:
                    codes[item.sku] = code
        return codes

    def _find(self, doctype: str, key: str, fields: Sequence[str] = ("name",), *,
              fresh: bool = False) -> dict[str, Any] | None:
        """The submitted document carrying ``key`` (a crashed run, or a ledger that was lost): as read in
        `_prefetch`, unless ``fresh`` (after a failed write) or not read there."""
        if not fresh and (doctype, key) in self._by_key:
            return self._by_key[(doctype, key)]
        return self.erp.find(doctype, [[POSTING_KEY_FIELD, "=", key], ["docstatus", "=", 1]], fields=fields,
                             order_by="creation desc")

    def _stock_items(self, items: Iterable[str]) -> set[str]:
        codes = set(items)
        want = sorted(codes - set(self._stock))
        for i in range(0, len(want), BATCH):
            chunk = want[i:i + BATCH]
            for code in chunk:
                self._stock[code] = False
            for row in self.erp.list(Doctype.ITEM, fields=["name", "is_stock_item"], filters=[["name", "in", chunk]]):
                self._stock[str(row["name"])] = bool(int(row.get("is_stock_item") or 0))
        return {c for c in codes if self._stock.get(c)}

    # --- writes ------------------------------------------------------------------------------------------

    def _insert(self, kind: Kind, doctype: str, key: str, doc: dict[str, Any], reason: str) -> dict[str, Any]:
        """Intent, insert (keyed), answer the stored document; the caller marks the outcome. A refusal
        forgets the intent (nothing was written) and raises."""
        if self.dry_run:
            self.plans.append(PlannedWrite(Action.CREATE, doctype, key=key, doc=doc, reason=reason))
            if doctype != SI or "grand_total" in doc:
                return dict(doc, name="")
            # what ERPNext would compute, for the receipts a dry run shows
            total = document_total(doc, precision=self.precision)
            rate = _dec(doc.get("conversion_rate")) or Decimal(1)
            step = Decimal(1).scaleb(-min(currency_exponent(self.company_currency), self.precision))
            return dict(doc, name="", grand_total=float(total),
                        base_grand_total=float((total * rate).quantize(step, rounding=ROUND_HALF_UP)))
        self.state.mark_writing(kind, key, _hash(doc))
        try:
            return self.erp.insert(doctype, doc, key={POSTING_KEY_FIELD: key})
        except ErpNextDuplicateError:
            found = self._find(doctype, key, _SI_FIELDS if doctype == SI else ("name",), fresh=True)
            if found is None:
                self.state.forget(kind, key)
                raise
            return found
        except RecordError:
            self.state.forget(kind, key)
            raise

    # --- Sales Invoice -----------------------------------------------------------------------------------

    def _shipment(self, work: _OrderWork, shipment: Shipment) -> None:
        oid = shipment.order_id
        key = invoice_key(oid, shipment.shipment_id)
        settled = shipment.total(book_mf=self.book_mf)
        entry = self._done(Kind.INVOICE, key)
        if entry is not None:
            invoice = _InvoiceDoc.from_info(str(entry.erp_name), entry.info)
        else:
            invoice = self._write_invoice(work, shipment, key)
        self._invoices.setdefault(oid, []).append(invoice)
        work.written = True
        work.refs.append(ClearingRef(oid, RefKind.INVOICE, SI, invoice.name, invoice.customer, invoice.debit_to,
                                     invoice.base_grand_total, settled))
        if self.orders_settings.deliver == "delivery_note":
            self._delivery(shipment)

    def _write_invoice(self, work: _OrderWork, shipment: Shipment, key: str) -> _InvoiceDoc:
        oid = shipment.order_id
        so = self._sales_order(oid)
        so_name = str(so.get("name") or "")
        if not self.dry_run:
            found = self._find(SI, key, _SI_FIELDS)
            if found is not None:
                return self._invoice_done(key, found, so_name, adopted=True)
        lines = match_items(oid, shipment.items, self._lines(so), self._sku_codes(shipment.items))
        names = [n for found in lines.values() for n in found]
        mapped = self.erp.make_mapped(MAKE_SALES_INVOICE, so_name, filtered_children=names)
        posted = shipment.posted or date.fromisoformat(str(so.get("transaction_date")))
        update_stock = self.orders_settings.deliver == "invoice"
        doc = invoice_payload(mapped, shipment, lines, key=key, accounts=self.ctx.accounts, update_stock=update_stock,
                              book_mf=self.book_mf, posting_date=posted, precision=self.precision)
        reason = f"order {oid}, shipment {shipment.shipment_id or '-'}: {shipment.total(book_mf=self.book_mf)}"
        try:
            created = self._insert(Kind.INVOICE, SI, key, doc, reason)
        except ErpNextNegativeStockError as exc:
            if not update_stock:
                raise
            self._problem(oid, f"{exc}; the invoice is posted without moving the stock")
            self.rt.counts.add("invoices posted without stock (negative stock)")
            created = self._insert(Kind.INVOICE, SI, key, dict(doc, update_stock=0), reason)
        return self._invoice_done(key, created, so_name)

    def _invoice_done(self, key: str, doc: Mapping[str, Any], so_name: str, *, adopted: bool = False) -> _InvoiceDoc:
        invoice = _InvoiceDoc.from_doc(doc, company_currency=self.company_currency, sales_order=so_name)
        if self.dry_run:
            return invoice
        self.state.mark_done(Kind.INVOICE, key, invoice.name, _hash({"name": invoice.name}),
                             info={**invoice.info(), "order_id": doc.get(ORDER_ID_FIELD) or ""})
        self.rt.counts.add("sales invoices found in ERPNext" if adopted else "sales invoices posted")
        return invoice

    # --- Delivery Note ------------------------------------------------------------------------------------

    def _delivery(self, shipment: Shipment) -> None:
        """A Delivery Note moves stock, not money: whatever ERPNext refuses is a problem of the order, and the
        invoice and the settlement still post."""
        try:
            self._write_delivery(shipment)
        except (ErpNextClosedPeriodError, ErpNextFiscalYearError):
            raise
        except (ErpNextValidationError, InvoiceMappingError, _Unmatched) as exc:
            key = delivery_key(shipment.order_id, shipment.shipment_id)
            self._problem(shipment.order_id, f"no Delivery Note: {exc}")
            self.state.mark_failed(Kind.DELIVERY_NOTE, key, str(exc))
            self.rt.counts.add("delivery notes refused")

    def _write_delivery(self, shipment: Shipment) -> None:
        oid = shipment.order_id
        key = delivery_key(oid, shipment.shipment_id)
        entry = self.state.get(Kind.DELIVERY_NOTE, key)
        if entry is not None and entry.status in (DONE, Status.SKIPPED):
            return
        if not self.dry_run:
            found = self._find(DN, key)
            if found is not None:
                self.state.mark_done(Kind.DELIVERY_NOTE, key, str(found["name"]), "")
                return
        so = self._sales_order(oid)
        lines = match_items(oid, shipment.items, self._lines(so), self._sku_codes(shipment.items))
        mapped = self.erp.make_mapped(MAKE_DELIVERY_NOTE, str(so["name"]))
        stock = self._stock_items(str(r.get("item_code")) for r in mapped.get("items") or ())
        posted = shipment.posted or date.fromisoformat(str(so.get("transaction_date")))
        doc = delivery_note_payload(mapped, shipment, lines, stock, key=key, posting_date=posted)
        if doc is None:  # nothing of it is a stock item: nothing to deliver
            self.state.mark_skipped(Kind.DELIVERY_NOTE, key, "no stock item")
            return
        created = self._insert(Kind.DELIVERY_NOTE, DN, key, doc, f"order {oid}, shipment {shipment.shipment_id}")
        if not self.dry_run:
            self.state.mark_done(Kind.DELIVERY_NOTE, key, str(created["name"]), _hash(doc))
            self.rt.counts.add("delivery notes posted")

    # --- Credit Note ----------------------------------------------------------------------------------------

    def _refund(self, work: _OrderWork, refund: Refund) -> None:
        oid = refund.order_id
        key = credit_note_key(oid, refund.adjustment_id)
        settled = refund.total(book_mf=CREDIT_NOTES_BOOK_MF_TAX)
        entry = self._done(Kind.CREDIT_NOTE, key)
        if entry is not None:
            work.written = True
            work.refs.append(self._credit_ref(oid, entry.erp_name or "", entry.info, settled))
            return
        invoice = self._invoice_for(work, refund)
        if not self.dry_run:
            found = self._find(SI, key, _SI_FIELDS)
            if found is not None:
                work.written = True
                work.refs.append(self._credit_done(key, oid, RefKind.CREDIT_NOTE, found, invoice, settled, adopted=True))
                return
            found = self._find(JE, key)
            if found is not None:
                work.written = True
                work.refs.append(self._journal_done(key, oid, str(found["name"]), invoice, settled, adopted=True))
                return
        doc = self._credit_note_doc(refund, invoice, key)
        reason = f"order {oid}, refund {refund.adjustment_id}: {settled}"
        if doc is not None:
            try:
                created = self._insert(Kind.CREDIT_NOTE, SI, key, doc, reason + f", against {invoice.name or 'the invoice above'}")
            except ErpNextValidationError as exc:
                # ERPNext refuses the return (returned before, over-return, rate): the money still clears
                self._problem(oid, f"refund {refund.adjustment_id}: no Credit Note ({exc}); booked as a Journal "
                                   "Entry credit note")
            else:
                work.written = True
                work.refs.append(self._credit_done(key, oid, RefKind.CREDIT_NOTE, created, invoice, settled))
                return
        self._journal_credit_note(work, refund, invoice, key, settled, reason)

    def _invoice_for(self, work: _OrderWork, refund: Refund) -> _InvoiceDoc:
        """The invoice the refund's items were billed on: this run's, else the order's submitted ones."""
        oid = refund.order_id
        invoices = self._invoices.get(oid)
        if not invoices:
            rows = list(self.erp.list(SI, fields=list(_SI_FIELDS), order_by="posting_date asc",
                                      filters=[[ORDER_ID_FIELD, "=", oid], ["docstatus", "=", 1], ["is_return", "=", 0]]))
            invoices = [_InvoiceDoc.from_doc(r, company_currency=self.company_currency) for r in rows]
            self._invoices[oid] = invoices
        if not invoices:
            if work.written:
                raise InvoiceMappingError(f"order {oid}: refund {refund.adjustment_id} finds no Sales Invoice")
            raise _NotInvoiced(oid)
        if len(invoices) == 1 or self.dry_run:
            return invoices[0]
        codes = {i.order_item_code for i in refund.items if i.order_item_code}
        so = self._sales_order(oid)
        details = {ln.name for ln in self._lines(so) if ln.amazon_order_item_id in codes}
        for invoice in invoices:
            doc = self.erp.get(SI, invoice.name) or {}
            if any(str(r.get("so_detail")) in details for r in doc.get("items") or ()):
                return invoice
        return invoices[0]

    def _credit_note_doc(self, refund: Refund, invoice: _InvoiceDoc, key: str) -> dict[str, Any] | None:
        """The Credit Note, or None for an amount-only refund (or when its lines cannot be matched)."""
        if not invoice.name or not refund.items:
            if not invoice.name and refund.items:  # a dry run: the invoice is not written, nothing to map from
                return {"is_return": 1, "return_against": "(the Sales Invoice above)", POSTING_KEY_FIELD: key,
                        "grand_total": float(refund.total(book_mf=CREDIT_NOTES_BOOK_MF_TAX)), "docstatus": 1}
            return None
        try:
            so = self._sales_order(refund.order_id)
            lines = match_items(refund.order_id, refund.items, self._lines(so), self._sku_codes(refund.items))
        except (_Unmatched, InvoiceMappingError):
            return None
        mapped = self.erp.make_mapped(MAKE_SALES_RETURN, invoice.name)
        posted = max(refund.posted or date.min, date.fromisoformat(invoice.posting_date) if invoice.posting_date
                     else date.min)
        try:
            return credit_note_payload(mapped, refund, lines, key=key, accounts=self.ctx.accounts,
                                       update_stock=self.orders_settings.restock_returns,
                                       book_mf=CREDIT_NOTES_BOOK_MF_TAX,
                                       posting_date=posted, precision=self.precision)
        except InvoiceMappingError as exc:
            self._problem(refund.order_id, f"refund {refund.adjustment_id}: {exc}; booked as a Journal Entry "
                                           "credit note")
            return None

    def _credit_done(self, key: str, oid: str, kind: RefKind, doc: Mapping[str, Any], invoice: _InvoiceDoc,
                     settled: Decimal, *, adopted: bool = False) -> ClearingRef:
        note = _InvoiceDoc.from_doc(doc, company_currency=self.company_currency)
        info = {"kind": kind.value, "doctype": SI, "customer": note.customer or invoice.customer,
                "debit_to": note.debit_to or invoice.debit_to, "amount": str(note.base_grand_total),
                "invoice": invoice.name}
        if not self.dry_run:
            self.state.mark_done(Kind.CREDIT_NOTE, key, note.name, _hash({"name": note.name}), info=info)
            self.rt.counts.add("credit notes found in ERPNext" if adopted else "credit notes posted")
        return self._credit_ref(oid, note.name, info, settled)

    def _credit_ref(self, oid: str, name: str, info: Mapping[str, Any], settled: Decimal) -> ClearingRef:
        kind = RefKind(str(info["kind"]))
        # an amount-only refund's receipt row references the invoice it credits (``against``): ERPNext refuses
        # a receivable debit that references a Journal Entry
        against = str(info["invoice"]) if kind is RefKind.JOURNAL_CREDIT_NOTE else ""
        return ClearingRef(oid, kind, str(info["doctype"]), name, str(info["customer"]), str(info["debit_to"]),
                           Decimal(str(info["amount"])), settled, against=against)

    def _journal_credit_note(self, work: _OrderWork, refund: Refund, invoice: _InvoiceDoc, key: str,
                             settled: Decimal, reason: str) -> None:
        oid = refund.order_id
        posted = max(refund.posted or date.min, date.fromisoformat(invoice.posting_date) if invoice.posting_date
                     else date.min)
        info = InvoiceInfo(invoice.name, invoice.customer, invoice.debit_to, invoice.currency,
                           invoice.conversion_rate, invoice.party_account_currency)
        doc = journal_credit_note(key=key, order_id=oid, adjustment_id=refund.adjustment_id, invoice=info,
                                  amount=-settled, refund_account=self.refund_account, company=self.company,
                                  company_currency=self.company_currency, posting_date=posted,
                                  cost_center=self.cost_center)
        created = self._insert(Kind.CREDIT_NOTE, JE, key, doc, reason + " (amount only)")
        work.written = True
        work.refs.append(self._journal_done(key, oid, str(created.get("name") or ""), invoice, settled))

    def _journal_done(self, key: str, oid: str, name: str, invoice: _InvoiceDoc, settled: Decimal, *,
                      adopted: bool = False) -> ClearingRef:
        step = Decimal(1).scaleb(-min(currency_exponent(self.company_currency), 2))
        amount = (settled * invoice.conversion_rate).quantize(step, rounding=ROUND_HALF_UP)
        info = {"kind": RefKind.JOURNAL_CREDIT_NOTE.value, "doctype": JE, "customer": invoice.customer,
                "debit_to": invoice.debit_to, "amount": str(amount), "invoice": invoice.name}
        if not self.dry_run:
            self.state.mark_done(Kind.CREDIT_NOTE, key, name, _hash({"name": name}), info=info)
            self.rt.counts.add("journal credit notes found in ERPNext" if adopted else "journal credit notes posted")
        return self._credit_ref(oid, name, info, settled)

