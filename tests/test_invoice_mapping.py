"""Invoice mode's pure mapping: settlement rows → shipments and refunds, and ERPNext's mapped documents (the real
v15 answers of make_sales_invoice, make_sales_return and make_delivery_note) → the documents to POST."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amz2erp.amazon.settlement_report import Settlement, SettlementRow, SettlementSource
from amz2erp.invoice_mapping import (
    ChargeKind,
    InvoiceInfo,
    InvoiceMappingError,
    SoLine,
    credit_note_payload,
    delivery_note_payload,
    document_total,
    invoice_payload,
    journal_credit_note,
    match_items,
    settled_orders,
)
from amz2erp.invoice_refs import ORDER_ID_FIELD, POSTING_KEY_FIELD, credit_note_key, invoice_key
from amz2erp.settlement_categories import default_table
from tests.conftest import ERPNEXT_RECORDINGS

UTC = timezone.utc
OID = "111-1234567-7000001"
ACCOUNTS = {k.value: f"Amazon {k.value} - ATC" for k in ChargeKind}
SHIPPED = datetime(2026, 10, 3, 15, 4, 5, tzinfo=UTC)
REFUNDED = datetime(2026, 10, 9, 8, 0, 0, tzinfo=UTC)


def recording(number: str) -> dict[str, Any]:
    [path] = ERPNEXT_RECORDINGS.glob(f"{number}-*.json")
    return dict(json.loads(path.read_text())["response"]["json"]["message"])


def row(tx: str, at: str, desc: str, amount: str, *, order: str = OID, code: str = "01586dcc-item", sku: str = "SKU-1",
        qty: int | None = 2, shipment: str = "SHIP1", adjustment: str = "", posted: datetime = SHIPPED) -> SettlementRow:
    return SettlementRow("S1", SettlementSource.FILE, tx, at, desc, int(Decimal(amount) * 100), "USD", order_id=order,
                         adjustment_id=adjustment, shipment_id=shipment, sku=sku, order_item_code=code, qty=qty,
                         posted_at=posted)


def settlement(*rows: SettlementRow) -> Settlement:
    total = sum(r.amount_minor for r in rows)
    return Settlement("S1", SettlementSource.FILE, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 15, tzinfo=UTC),
                      datetime(2026, 10, 17, tzinfo=UTC), total, "USD", tuple(rows))


SO_LINE = SoLine("01586dccnp", "AMZ-FIN-STOCK", "01586dcc-item", "Finance recorder stock item<br>Amazon SKU SKU-1")


def order_rows() -> list[SettlementRow]:
    return [
        row("Order", "ItemPrice", "Principal", "50.00"),
        row("Order", "ItemPrice", "Tax", "4.13"),
        row("Order", "ItemPrice", "Shipping", "5.99"),
        row("Order", "ItemPrice", "ShippingTax", "0.49"),
        row("Order", "Promotion", "Shipping", "-5.99"),
        row("Order", "Promotion", "Principal", "-2.50"),
        row("Order", "ItemFees", "Commission", "-7.50"),
        row("Order", "ItemFees", "FBAPerUnitFulfillmentFee", "-6.20"),
    ]


def refund_rows(principal: str = "-50.00", qty: int | None = 2) -> list[SettlementRow]:
    kw: dict[str, Any] = dict(shipment="", adjustment="ADJ9", posted=REFUNDED, qty=qty)
    return [
        row("Refund", "ItemPrice", "Principal", principal, **kw),
        row("Refund", "ItemPrice", "Tax", "-4.13", **kw),
        row("Refund", "Promotion", "Principal", "2.50", **kw),
        row("Refund", "ItemFees", "Commission", "7.50", **kw),
        row("Refund", "ItemFees", "RefundCommission", "-1.50", **kw),
    ]


# --- settled rows ---------------------------------------------------------------------------------------------


def test_settled_orders_group_shipments_and_refunds_with_items_and_charges() -> None:
    other = row("Order", "ItemPrice", "Principal", "9.99", order="222-0000000-0000002", code="X9", qty=1,
                shipment="SHIP2")
    [first, second] = settled_orders(settlement(*order_rows(), *refund_rows(), other), default_table())
    assert first.order_id == OID and second.order_id == "222-0000000-0000002"
    [ship] = first.shipments
    assert ship.shipment_id == "SHIP1" and ship.posted == date(2026, 10, 3)
    [item] = ship.items
    assert (item.order_item_code, item.sku, item.qty, item.principal) == ("01586dcc-item", "SKU-1", 2, Decimal("50.00"))
    assert ship.charges == {ChargeKind.TAX: Decimal("4.62"), ChargeKind.SHIPPING: Decimal("5.99"),
                            ChargeKind.SHIPPING_PROMOTION: Decimal("-5.99"), ChargeKind.PROMOTION: Decimal("-2.50")}
    assert ship.total(book_mf=False) == Decimal("52.12")  # fees are not the buyer's money
    [refund] = first.refunds
    assert refund.adjustment_id == "ADJ9" and refund.posted == date(2026, 10, 9)
    assert refund.total(book_mf=False) == Decimal("-51.63")
    assert second.shipments[0].total(book_mf=False) == Decimal("9.99") and not second.refunds


def test_marketplace_facilitator_tax_counts_only_when_booked() -> None:
    rows = [row("Order", "ItemPrice", "Principal", "20.00"), row("Order", "ItemPrice", "Tax", "1.60"),
            row("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-1.60")]
    [order] = settled_orders(settlement(*rows), default_table())
    [ship] = order.shipments
    assert ship.charges == {} and ship.mf_tax == Decimal("1.60")
    assert ship.total(book_mf=False) == Decimal("20.00") and ship.total(book_mf=True) == Decimal("21.60")
    assert ship.charge_rows(book_mf=True) == [(ChargeKind.MF_TAX, Decimal("1.60"))]


def test_refund_labels_of_finances_transactions_split_price_and_charges() -> None:
    kw: dict[str, Any] = dict(shipment="", adjustment="R1", posted=REFUNDED)
    rows = [row("Refund", "ProductCharges", "Principal", "-20.00", **kw),
            row("Refund", "Shipping", "ShippingPrincipal", "-4.99", **kw),
            row("Refund", "ItemPrice", "ReturnShipping", "-1.00", **kw)]
    [order] = settled_orders(settlement(*rows), default_table())
    [refund] = order.refunds
    assert [i.principal for i in refund.items] == [Decimal("-20.00")]
    assert refund.charges == {ChargeKind.SHIPPING: Decimal("-4.99")} and refund.other == Decimal("-1.00")


def test_goodwill_is_order_side_money_no_item_holds() -> None:
    rows = [row("Refund", "ItemPrice", "Goodwill", "-3.00", shipment="", adjustment="G1", qty=None)]
    [order] = settled_orders(settlement(*rows), default_table())
    [refund] = order.refunds
    assert refund.items == () and refund.other == Decimal("-3.00") and refund.total(book_mf=False) == Decimal("-3.00")


# --- matching Sales Order lines ------------------------------------------------------------------------------


def test_items_match_by_order_item_id_then_sku_then_item_code() -> None:
    [order] = settled_orders(settlement(*order_rows()), default_table())
    items = order.shipments[0].items
    assert match_items(OID, items, [SO_LINE]) == {"01586dcc-item": ["01586dccnp"]}
    by_sku = SoLine("n1", "AMZ-FIN-STOCK", "", "Title<br>Amazon SKU SKU-1, part 1 of 2: …")
    assert match_items(OID, items, [by_sku]) == {"01586dcc-item": ["n1"]}
    other_sku = SoLine("n2", "SKU-1", "", "Amazon SKU SKU-10")
    assert match_items(OID, items, [other_sku], {"SKU-1": "SKU-1"}) == {"01586dcc-item": ["n2"]}
    with pytest.raises(InvoiceMappingError, match="no Sales Order line for order-item-code 01586dcc-item"):
        match_items(OID, items, [other_sku])


# --- the Sales Invoice ---------------------------------------------------------------------------------------


def _invoice(*rows: SettlementRow, mapped: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    [order] = settled_orders(settlement(*rows), default_table())
    ship = order.shipments[0]
    mapped = mapped if mapped is not None else recording("103")
    return invoice_payload(mapped, ship, match_items(OID, ship.items, [SO_LINE]), key=invoice_key(OID, "SHIP1"),
                           accounts=ACCOUNTS, update_stock=kw.pop("update_stock", False),
                           book_mf=kw.pop("book_mf", False), posting_date=ship.posted or date.min, **kw)


def test_invoice_from_the_recorded_make_sales_invoice_totals_the_settled_amount() -> None:
    doc = _invoice(*order_rows())
    assert document_total(doc) == Decimal("52.12")
    assert doc["posting_date"] == doc["due_date"] == "2026-10-03" and doc["set_posting_time"] == 1
    assert doc["posting_time"] == "15:04:05" and doc["docstatus"] == 1 and doc["update_stock"] == 0
    assert doc[POSTING_KEY_FIELD] == f"SI:{OID}:SHIP1" and doc[ORDER_ID_FIELD] == OID
    assert doc["disable_rounded_total"] == 1 and doc["payment_schedule"] == []
    assert not [k for k in doc if k.startswith("__")] and "name" not in doc
    # the mapper's totals describe the whole Sales Order: ERPNext computes ours
    assert not {"grand_total", "outstanding_amount", "base_grand_total", "total_qty"} & set(doc)
    [line] = doc["items"]
    assert (line["qty"], line["rate"], line["so_detail"], line["sales_order"]) == (2, 25.0, "01586dccnp",
                                                                                  "SAL-ORD-2026-01413")
    taxes = [(t["account_head"], t["tax_amount"], t["charge_type"]) for t in doc["taxes"]]
    assert taxes == [(ACCOUNTS["item_tax"], 4.62, "Actual"), (ACCOUNTS["shipping"], 5.99, "Actual"),
                     (ACCOUNTS["promotion_discount"], -2.5, "Actual"), (ACCOUNTS["shipping_discount"], -5.99, "Actual")]
    assert all(t["cost_center"] == "Main - ATC" for t in doc["taxes"])  # a P&L row needs one


def test_a_line_total_that_does_not_divide_becomes_two_rates_on_the_same_so_line() -> None:
    doc = _invoice(row("Order", "ItemPrice", "Principal", "10.00", qty=3))
    assert [(i["qty"], i["rate"], i["so_detail"]) for i in doc["items"]] == [(2, 3.33, "01586dccnp"),
                                                                              (1, 3.34, "01586dccnp")]
    assert document_total(doc) == Decimal("10.00")


def test_a_partial_shipment_invoices_the_shipped_quantity() -> None:
    doc = _invoice(row("Order", "ItemPrice", "Principal", "25.00", qty=1))
    assert [(i["qty"], i["rate"]) for i in doc["items"]] == [(1, 25.0)]


def test_update_stock_follows_deliver_invoice_and_mf_tax_gets_its_row_when_booked() -> None:
    rows = [row("Order", "ItemPrice", "Principal", "50.00"), row("Order", "ItemPrice", "Tax", "4.00"),
            row("Order", "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-4.00")]
    doc = _invoice(*rows, update_stock=True, book_mf=True)
    assert doc["update_stock"] == 1 and document_total(doc) == Decimal("54.00")
    assert [t["account_head"] for t in doc["taxes"]] == [ACCOUNTS["marketplace_facilitator_tax"]]


def test_invoice_refuses_a_fully_billed_order_and_another_currency() -> None:
    billed = recording("109")  # make_sales_invoice on a fully billed order: no items
    with pytest.raises(InvoiceMappingError, match="nothing left to invoice"):
        _invoice(*order_rows(), mapped=billed)
    euro = dict(recording("103"), currency="EUR")
    with pytest.raises(InvoiceMappingError, match="in EUR, the settlement in USD"):
        _invoice(*order_rows(), mapped=euro)


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(1, 10**7), qty=st.integers(1, 40), ship=st.integers(0, 5000), promo=st.integers(0, 3000))
def test_invoice_total_is_the_settled_amount_to_the_cent(cents: int, qty: int, ship: int, promo: int) -> None:
    money = Decimal(cents).scaleb(-2)
    rows = [row("Order", "ItemPrice", "Principal", str(money), qty=qty)]
    if ship:
        rows.append(row("Order", "ItemPrice", "Shipping", str(Decimal(ship).scaleb(-2))))
    if promo:
        rows.append(row("Order", "Promotion", "Principal", str(-Decimal(promo).scaleb(-2))))
    doc = _invoice(*rows)
    assert document_total(doc) == sum((Decimal(r.amount_minor).scaleb(-2) for r in rows), Decimal(0))
    assert sum(i["qty"] for i in doc["items"]) == qty


# --- the Credit Note -----------------------------------------------------------------------------------------


def _credit_note(*rows: SettlementRow, mapped: dict[str, Any] | None = None, restock: bool = False) -> dict[str, Any] | None:
    [order] = settled_orders(settlement(*rows), default_table())
    refund = order.refunds[0]
    return credit_note_payload(mapped if mapped is not None else recording("124"), refund,
                               match_items(OID, refund.items, [SO_LINE]) if refund.items else {},
                               key=credit_note_key(OID, "ADJ9"), accounts=ACCOUNTS, update_stock=restock,
                               book_mf=False, posting_date=refund.posted or date.min)


def test_a_whole_line_refund_returns_the_invoiced_line_with_its_charges() -> None:
    doc = _credit_note(*refund_rows())
    assert doc is not None
    assert doc["is_return"] == 1 and doc["return_against"] == "ACC-SINV-2026-00001"
    assert [(i["qty"], i["rate"], i["sales_invoice_item"]) for i in doc["items"]] == [(-2.0, 25.0, "01njm88otu")]
    assert [(t["account_head"], t["tax_amount"]) for t in doc["taxes"]] == [(ACCOUNTS["item_tax"], -4.13),
                                                                            (ACCOUNTS["promotion_discount"], 2.5)]
    assert document_total(doc) == Decimal("-51.63")
    assert doc["update_stock"] == 0 and doc["update_outstanding_for_self"] == 1
    assert doc[POSTING_KEY_FIELD] == f"CN:{OID}:ADJ9" and doc["posting_date"] == "2026-10-09"
    assert _credit_note(*refund_rows(), restock=True)["update_stock"] == 1  # type: ignore[index]


def test_a_partial_refund_returns_the_refunded_quantity_negative() -> None:
    doc = _credit_note(row("Refund", "ItemPrice", "Principal", "-25.00", shipment="", adjustment="ADJ9", qty=1))
    assert doc is not None
    assert [(i["qty"], i["rate"]) for i in doc["items"]] == [(-1, 25.0)]
    assert document_total(doc) == Decimal("-25.00")


def test_refunds_no_quantity_can_carry_are_amount_only() -> None:
    kw: dict[str, Any] = dict(shipment="", adjustment="ADJ9")
    # a partial-price refund without a quantity
    assert _credit_note(row("Refund", "ItemPrice", "Principal", "-7.00", qty=None, **kw)) is None
    # a rate above the invoiced one
    assert _credit_note(row("Refund", "ItemPrice", "Principal", "-60.00", qty=2, **kw)) is None
    # more than is left to return
    assert _credit_note(row("Refund", "ItemPrice", "Principal", "-75.00", qty=3, **kw)) is None
    # goodwill
    assert _credit_note(row("Refund", "ItemPrice", "Goodwill", "-3.00", qty=None, code="", sku="", **kw)) is None
    # nothing left to return: ERPNext maps qty 0
    returned = copy.deepcopy(recording("124"))
    returned["items"][0]["qty"] = 0.0
    assert _credit_note(*refund_rows(), mapped=returned) is None


def test_journal_credit_note_credits_the_invoice_and_debits_the_refunds_account() -> None:
    invoice = InvoiceInfo("ACC-SINV-2026-00001", "Buyer - X", "Debtors - ATC", "USD", Decimal(1), "USD")
    doc = journal_credit_note(key=credit_note_key(OID, "G1"), order_id=OID, adjustment_id="G1", invoice=invoice,
                              amount=Decimal("3.00"), refund_account="Amazon Refunds - ATC", company="Amz Test Co",
                              company_currency="USD", posting_date=date(2026, 10, 9), cost_center="Main - ATC")
    assert doc["voucher_type"] == "Credit Note" and doc[POSTING_KEY_FIELD] == f"CN:{OID}:G1"
    assert doc["accounts"] == [
        {"account": "Debtors - ATC", "party_type": "Customer", "party": "Buyer - X", "reference_type": "Sales Invoice",
         "reference_name": "ACC-SINV-2026-00001", "credit_in_account_currency": 3.0},
        {"account": "Amazon Refunds - ATC", "debit_in_account_currency": 3.0, "cost_center": "Main - ATC"},
    ]
    euro = InvoiceInfo("SI-2", "C", "Debtors EUR - ATC", "EUR", Decimal("1.08"), "EUR")
    fx = journal_credit_note(key="k", order_id=OID, adjustment_id="G2", invoice=euro, amount=Decimal("10.00"),
                             refund_account="Amazon Refunds - ATC", company="Amz Test Co", company_currency="USD",
                             posting_date=date(2026, 10, 9), cost_center=None)
    assert fx["multi_currency"] == 1
    assert fx["accounts"][0]["credit_in_account_currency"] == 10.0 and fx["accounts"][0]["exchange_rate"] == 1.08
    assert fx["accounts"][1]["debit_in_account_currency"] == 10.8
    with pytest.raises(InvoiceMappingError):
        journal_credit_note(key="k", order_id=OID, adjustment_id="G3", invoice=invoice, amount=Decimal(0),
                            refund_account="R", company="C", company_currency="USD", posting_date=date(2026, 1, 1),
                            cost_center=None)


# --- the Delivery Note ---------------------------------------------------------------------------------------


def test_delivery_note_carries_the_shipped_quantity_of_stock_items_only() -> None:
    [order] = settled_orders(settlement(row("Order", "ItemPrice", "Principal", "25.00", qty=1)), default_table())
    ship = order.shipments[0]
    lines = match_items(OID, ship.items, [SO_LINE])
    doc = delivery_note_payload(recording("119"), ship, lines, {"AMZ-FIN-STOCK"}, key="DN:x", posting_date=date(2026, 10, 3))
    assert doc is not None
    assert [(i["qty"], i["against_sales_order"], i["so_detail"]) for i in doc["items"]] == [
        (1, "SAL-ORD-2026-01413", "01586dccnp")]
    assert doc["set_posting_time"] == 1 and doc["posting_date"] == "2026-10-03" and doc[POSTING_KEY_FIELD] == "DN:x"
    assert delivery_note_payload(recording("119"), ship, lines, set(), key="DN:x", posting_date=date(2026, 10, 3)) is None
