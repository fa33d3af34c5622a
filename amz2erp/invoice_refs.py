"""Invoice mode's shared vocabulary: the keys of the documents it writes and what the invoicing step hands to
the settlement's clearing entries.

Invoice mode (``[settlements] mode = "invoice"``) hangs every document on the settlement that pays it: a
Sales Invoice per settled shipment (and a Delivery Note when ``[orders] deliver = "delivery_note"``), a
Credit Note per refund, then Journal Entries that clear them through the clearing account. Each document
carries a natural key in ``amazon_posting_key`` (a custom field), so a re-run or a crash at any point finds
what was written instead of writing it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final

__all__ = [
    "ORDER_ID_FIELD",
    "POSTING_KEY_FIELD",
    "ClearingRef",
    "Invoicing",
    "RefKind",
    "credit_note_key",
    "delivery_key",
    "invoice_key",
    "receipt_key",
]

# The custom field holding a document's natural key (Sales Invoice, Delivery Note, Journal Entry).
POSTING_KEY_FIELD: Final = "amazon_posting_key"
# The Amazon order a Sales Invoice or Delivery Note belongs to (Sales Order's field of the same name is no_copy).
ORDER_ID_FIELD: Final = "amazon_order_id"


def invoice_key(order_id: str, shipment_id: str = "") -> str:
    """A Sales Invoice per settled shipment: split shipments are settled (and invoiced) one by one."""
    return f"SI:{order_id}:{shipment_id}" if shipment_id else f"SI:{order_id}"


def delivery_key(order_id: str, shipment_id: str = "") -> str:
    return f"DN:{order_id}:{shipment_id}" if shipment_id else f"DN:{order_id}"


def credit_note_key(order_id: str, adjustment_id: str) -> str:
    """A Credit Note (or an amount-only Journal Entry credit note) per Amazon refund adjustment."""
    return f"CN:{order_id}:{adjustment_id}"


def receipt_key(settlement_id: str, part: int) -> str:
    """The n-th (1-based) receipt Journal Entry clearing a settlement's invoices (≤ 100 party rows each)."""
    return f"RCPT:{settlement_id}:{part}"


class RefKind(str, Enum):
    INVOICE = "invoice"  # Sales Invoice: the settlement credits the customer's receivable
    CREDIT_NOTE = "credit_note"  # Sales Invoice return: the settlement debits it
    JOURNAL_CREDIT_NOTE = "journal_credit_note"  # amount-only refund: Journal Entry voucher_type Credit Note


@dataclass(frozen=True)
class ClearingRef:
    """One receivable document a settlement clears.

    ``amount`` is signed as the receivable sees it, in company currency: positive for an invoice (the
    settlement credits the customer), negative for a credit note (it debits the customer). ``settled`` is
    what the settlement says the document is worth, in the settlement's currency and signed the same way; the
    two differ only by the exchange rate."""

    order_id: str
    kind: RefKind
    doctype: str  # "Sales Invoice" or "Journal Entry"
    name: str
    customer: str
    receivable_account: str  # the invoice's debit_to
    amount: Decimal
    settled: Decimal
    # A journal credit note: the Sales Invoice it was made against. ERPNext refuses a receivable debit that
    # references a Journal Entry, so the receipt references this invoice instead (empty: the order's invoice
    # in the same settlement, if any, else no reference).
    against: str = ""


@dataclass(frozen=True)
class Invoicing:
    """What the invoicing step did for one settlement, for the clearing entries and the run summary.

    ``unmatched`` are orders with settled order-side money but no Sales Order (imported by another tool, or
    outside the synced window): their rows go to the suspense account. ``problems`` are per-order notes that
    do not stop the settlement (negative stock, a non-stock order with deliver on, …)."""

    refs: tuple[ClearingRef, ...]
    unmatched: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()  # (order id, one line)
