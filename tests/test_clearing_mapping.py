"""Invoice mode's pure mapping: the settlement entry's clearing line and the receipt entries that clear the
invoices and credit notes (amz2erp.settlement_mapping with invoicing=, amz2erp.clearing_mapping)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amz2erp.amazon.settlement_report import (
    Settlement,
    SettlementRow,
    SettlementSource,
    parse_settlement_report,
)
from amz2erp.clearing_mapping import ReceiptEntry, receipt_entries
from amz2erp.invoice_refs import POSTING_KEY_FIELD, ClearingRef, Invoicing, RefKind, receipt_key
from amz2erp.settlement_categories import Category, CategoryRule
from amz2erp.settlement_config import SettlementsSettings
from amz2erp.settlement_mapping import (
    Conversion,
    RateSource,
    SettlementAccounts,
    SettlementEntry,
    SettlementInvariantError,
    resolve_accounts,
    settlement_to_journal_entry,
)

FIXTURES = Path(__file__).parent / "fixtures" / "settlements"
ABBR = "ATC"
COMPANY = "Amz Test Co"
CFG = SettlementsSettings(bank_account="Amazon Payouts", cost_center="Main", mode="invoice")
DEBTORS = "Debtors - ATC"
CLEARING = "Amazon Settlement Clearing - ATC"
SUSPENSE = "Amazon Unmapped - ATC"
UTC = timezone.utc
EXAMPLE1 = FIXTURES / "us_example1_12345678901.txt"


def _accounts(**kw: Any) -> SettlementAccounts:
    return resolve_accounts(CFG, CFG.category_table(), ABBR, **kw)


def _entry(settlement: Settlement, invoicing: Invoicing | None, **kw: Any) -> SettlementEntry:
    accounts = kw.pop("accounts", None) or _accounts()
    return settlement_to_journal_entry(
        settlement, CFG.category_table(), accounts, company=COMPANY,
        company_currency=kw.pop("company_currency", settlement.currency), invoicing=invoicing, **kw,
    )


def _receipts(settlement: Settlement, entry: SettlementEntry, invoicing: Invoicing, **kw: Any) -> list[ReceiptEntry]:
    accounts = kw.pop("accounts", None) or _accounts()
    return receipt_entries(settlement, entry.summary, invoicing, accounts, company=COMPANY,
                           posting_date=settlement.deposit_date, cost_center="Main - ATC",
                           conversion=kw.pop("conversion", None), **kw)


def _ref(order: str, amount: str, kind: RefKind = RefKind.INVOICE, *, name: str = "", settled: str | None = None,
         customer: str = "", against: str = "") -> ClearingRef:
    doctype = "Journal Entry" if kind is RefKind.JOURNAL_CREDIT_NOTE else "Sales Invoice"
    default = {RefKind.INVOICE: "SI", RefKind.CREDIT_NOTE: "CN", RefKind.JOURNAL_CREDIT_NOTE: "JV"}[kind]
    return ClearingRef(order, kind, doctype, name or f"{default}-{order}", customer or f"Buyer {order}", DEBTORS,
                       Decimal(amount), Decimal(settled if settled is not None else amount), against)


def _table(payload: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(account without abbreviation, Dr, Cr, reference or remark), like the worked examples."""
    out = []
    for row in payload["accounts"]:
        dr, cr = row.get("debit_in_account_currency"), row.get("credit_in_account_currency")
        out.append((row["account"].removesuffix(f" - {ABBR}"), f"{dr:.2f}" if dr is not None else "",
                    f"{cr:.2f}" if cr is not None else "", row.get("reference_name") or row.get("user_remark", "")))
    return out


def _signed(payloads: list[dict[str, Any]], account: str) -> Decimal:
    """Σ debit − credit of ``account`` over the entries."""
    return sum((Decimal(str(r.get("debit_in_account_currency", 0))) - Decimal(str(r.get("credit_in_account_currency", 0)))
                for p in payloads for r in p["accounts"] if r["account"] == account), Decimal(0))


def _balanced(payload: dict[str, Any]) -> bool:
    rows = payload["accounts"]
    return (sum(Decimal(str(r.get("debit_in_account_currency", 0))) for r in rows)
            == sum(Decimal(str(r.get("credit_in_account_currency", 0))) for r in rows))


EXAMPLE1_INVOICING = Invoicing(refs=(
    _ref("111-0000001-0000001", "125.00"),
    _ref("111-0000002-0000002", "70.00"),
    _ref("111-0000003-0000003", "50.99"),
    _ref("111-0000004-0000004", "-40.00", RefKind.CREDIT_NOTE),
))


# --------------------------------------------------------------------------------------------- worked example


def test_worked_example_1_invoice_mode() -> None:
    """The invoice-mode variant worked out by hand: one Cr clearing 205.99 (= 250.00 + 5.99 − 10.00 − 40.00)
    replaces the order-side lines, fees/reimbursement/reserve and the bank line stay; the receipt credits
    each invoice, debits the credit note and debits the clearing account 205.99."""
    s = parse_settlement_report(EXAMPLE1)
    entry = _entry(s, EXAMPLE1_INVOICING)
    assert _table(entry.payload) == [
        ("Amazon Payouts", "139.36", "", ""),
        ("Amazon Selling Fees", "30.90", "", "commission (4 rows)"),
        ("Amazon Selling Fees", "1.20", "", "refund_fee (1 row)"),
        ("Amazon FBA Fees", "15.70", "", "fba_fees (2 rows)"),
        ("Amazon FBA Storage Fees", "12.34", "", "storage (1 row)"),
        ("Amazon Subscription Fees", "39.99", "", "subscription (1 row)"),
        ("Amazon Reimbursements", "", "18.50", "reimbursement (1 row)"),
        ("Amazon Reserve", "", "60.00", "reserve_released (1 row)"),
        ("Amazon Reserve", "45.00", "", "reserve_held (1 row)"),
        ("Amazon Settlement Clearing", "", "205.99", "invoiced (8 rows)"),
    ]
    assert _balanced(entry.payload) and entry.not_invoiced == ()
    # the summary still tells each order's money by category (the invoicing step reads it)
    assert [(o.order_id, o.charged, o.refunded) for o in entry.summary.orders][:1] == [
        ("111-0000001-0000001", Decimal("125.00"), Decimal("0.00"))]

    receipts = _receipts(s, entry, EXAMPLE1_INVOICING)
    assert [r.key for r in receipts] == [receipt_key("12345678901", 1)]
    payload = receipts[0].payload
    assert _table(payload) == [
        ("Debtors", "", "125.00", "SI-111-0000001-0000001"),
        ("Debtors", "", "70.00", "SI-111-0000002-0000002"),
        ("Debtors", "", "50.99", "SI-111-0000003-0000003"),
        ("Debtors", "40.00", "", "CN-111-0000004-0000004"),
        ("Amazon Settlement Clearing", "205.99", "", "invoiced (settlement 12345678901)"),
    ]
    assert payload[POSTING_KEY_FIELD] == "RCPT:12345678901:1"
    assert payload["voucher_type"] == "Journal Entry" and payload["posting_date"] == "2026-10-17"
    assert "amazon_settlement_id" not in payload  # that field finds the settlement's own entry
    party = [r for r in payload["accounts"] if r.get("party")]
    assert all(r["party_type"] == "Customer" and r["reference_type"] == "Sales Invoice" for r in party)
    assert party[0]["party"] == "Buyer 111-0000001-0000001"
    assert receipts[0].refs == tuple(sorted(EXAMPLE1_INVOICING.refs, key=lambda r: r.order_id))


def test_clearing_nets_to_zero_and_bank_line_is_the_deposit() -> None:
    s = parse_settlement_report(EXAMPLE1)
    entry = _entry(s, EXAMPLE1_INVOICING)
    receipts = _receipts(s, entry, EXAMPLE1_INVOICING)
    payloads = [entry.payload, *(r.payload for r in receipts)]
    assert all(_balanced(p) for p in payloads)
    assert _signed(payloads, CLEARING) == 0
    assert _signed([entry.payload], "Amazon Payouts - ATC") == s.total == Decimal("139.36")
    # every invoice is credited by what it holds, every credit note debited: outstanding 0
    assert _signed([r.payload for r in receipts], DEBTORS) == -sum(r.amount for r in EXAMPLE1_INVOICING.refs)


def test_summary_mode_is_unchanged_without_invoicing() -> None:
    s = parse_settlement_report(EXAMPLE1)
    summary_mode = settlement_to_journal_entry(s, CFG.category_table(), _accounts(), company=COMPANY,
                                               company_currency="USD")
    assert _entry(s, None).payload == summary_mode.payload
    assert summary_mode.summary.category(Category.INVOICED) is None


def test_marketplace_facilitator_tax_booked_on_the_invoices() -> None:
    """orders.marketplace_facilitator_tax = "book": the invoices hold the tax the buyer paid, the settlement
    entry clears it with them and debits the MF tax account with what Amazon withheld."""
    s = parse_settlement_report(EXAMPLE1)
    invoicing = Invoicing(refs=(
        _ref("111-0000001-0000001", "135.00"),
        _ref("111-0000002-0000002", "74.90"),
        _ref("111-0000003-0000003", "55.07"),
        _ref("111-0000004-0000004", "-40.00", RefKind.CREDIT_NOTE),
    ))
    entry = _entry(s, invoicing, book_mf_tax=True)
    lines = _table(entry.payload)
    assert ("Amazon Marketplace Facilitator Tax", "18.98", "", "mf_tax (4 rows)") in lines
    assert lines[-1] == ("Amazon Settlement Clearing", "", "224.97", "invoiced (12 rows)")
    receipts = _receipts(s, entry, invoicing)
    assert _signed([entry.payload, *(r.payload for r in receipts)], CLEARING) == 0
    # the same invoices without book_mf_tax do not match the settlement's money: refused, never half-posted
    with pytest.raises(SettlementInvariantError, match=re.escape("111-0000001-0000001: documents 135.00, rows 125.00")):
        _entry(s, invoicing)


# --------------------------------------------------------------------------------------------- unmatched & co


def test_orders_without_a_sales_order_go_to_suspense() -> None:
    s = parse_settlement_report(EXAMPLE1)
    invoicing = Invoicing(refs=EXAMPLE1_INVOICING.refs[:2] + EXAMPLE1_INVOICING.refs[3:],
                          unmatched=("111-0000003-0000003",))
    entry = _entry(s, invoicing)
    lines = _table(entry.payload)
    assert ("Amazon Unmapped", "", "50.99", "unmatched (6 rows)") in lines  # incl. its MF tax pair, net 0
    assert ("Amazon Settlement Clearing", "", "155.00", "invoiced (6 rows)") in lines
    assert ("Amazon Selling Fees", "30.90", "", "commission (4 rows)") in lines  # its fees stay fees
    assert _balanced(entry.payload)
    receipts = _receipts(s, entry, invoicing)
    assert _signed([entry.payload, *(r.payload for r in receipts)], CLEARING) == 0
    assert _signed([entry.payload], SUSPENSE) == Decimal("-50.99")


def test_orders_nothing_claims_stay_in_their_categories() -> None:
    """A refund of a sale booked before invoice mode: no invoice to return against, not unmatched either —
    booked as summary mode books it, and named."""
    s = parse_settlement_report(EXAMPLE1)
    invoicing = Invoicing(refs=EXAMPLE1_INVOICING.refs[:3])
    entry = _entry(s, invoicing)
    assert entry.not_invoiced == ("111-0000004-0000004",)
    assert ("Amazon Refunds", "40.00", "", "refund_principal (1 row)") in _table(entry.payload)
    assert ("Amazon Settlement Clearing", "", "245.99", "invoiced (5 rows)") in _table(entry.payload)


def test_documents_that_do_not_hold_the_settled_money_are_refused() -> None:
    s = parse_settlement_report(EXAMPLE1)
    wrong = Invoicing(refs=(_ref("111-0000001-0000001", "120.00"), *EXAMPLE1_INVOICING.refs[1:]))
    with pytest.raises(SettlementInvariantError, match=re.escape("documents 120.00, rows 125.00")):
        _entry(s, wrong)
    stray = Invoicing(refs=(*EXAMPLE1_INVOICING.refs, _ref("999-0000000-0000000", "1.00")))
    with pytest.raises(SettlementInvariantError, match=re.escape("999-0000000-0000000: documents 1.00, rows 0.00")):
        _entry(s, stray)
    both = Invoicing(refs=EXAMPLE1_INVOICING.refs, unmatched=("111-0000001-0000001",))
    with pytest.raises(SettlementInvariantError, match="both invoiced and without a Sales Order"):
        _entry(s, both)
    # receipts from a summary that is not the invoice-mode one: refused before anything is built
    with pytest.raises(ValueError, match="no invoiced line"):
        _receipts(s, _entry(s, None), EXAMPLE1_INVOICING)


def test_invoice_mode_categories_cannot_be_mapped_by_hand() -> None:
    with pytest.raises(ValueError, match="invoice mode assigns this category"):
        CategoryRule.parse("Order|ItemPrice|Principal", "invoiced")
    with pytest.raises(ValueError, match="invoice mode assigns this category"):
        SettlementsSettings(map={"Order|ItemPrice|Principal": "unmatched"})


def test_no_documents_no_receipts() -> None:
    s = parse_settlement_report(EXAMPLE1)
    invoicing = Invoicing(refs=(), unmatched=tuple(f"111-000000{i}-000000{i}" for i in range(1, 5)))
    entry = _entry(s, invoicing)
    assert _receipts(s, entry, invoicing) == []
    assert _signed([entry.payload], SUSPENSE) == Decimal("-205.99")


# --------------------------------------------------------------------------------------------- negative settlement


def test_negative_settlement_clears_a_refund_heavy_period() -> None:
    """Worked example 3: −106.26 (a charge). The refund outweighs the sale: the entry debits the clearing
    account 40.00 for the documents, credits it 106.26 for the charge; the receipt credits clearing 40.00."""
    s = parse_settlement_report(FIXTURES / "us_example3_negative_12345678903.txt")
    invoicing = Invoicing(refs=(_ref("111-0000009-0000009", "19.99"),
                                _ref("111-0000010-0000010", "-59.99", RefKind.CREDIT_NOTE)))
    entry = _entry(s, invoicing)
    lines = _table(entry.payload)
    assert lines[0] == ("Amazon Settlement Clearing", "", "106.26", "")
    assert lines[-1] == ("Amazon Settlement Clearing", "40.00", "", "invoiced (4 rows)")
    assert _balanced(entry.payload)
    (receipt,) = _receipts(s, entry, invoicing)
    assert _table(receipt.payload) == [
        ("Debtors", "", "19.99", "SI-111-0000009-0000009"),
        ("Debtors", "59.99", "", "CN-111-0000010-0000010"),
        ("Amazon Settlement Clearing", "", "40.00", "invoiced (settlement 12345678903)"),
    ]
    # what is left on the clearing account is the charge Amazon is owed, exactly as in summary mode
    assert _signed([entry.payload, receipt.payload], CLEARING) == Decimal("-106.26") == s.total


# --------------------------------------------------------------------------------------------- splitting


def _orders_settlement(amounts: list[int], refunds: dict[int, int] | None = None, currency: str = "USD",
                       fee: int = -100) -> Settlement:
    """Order i: Principal amounts[i] and a commission ``fee``; refunds {i: minor} add a refund of order i."""
    rows = []
    for i, minor in enumerate(amounts):
        oid = f"200-{i:07d}-0000000"
        rows.append(SettlementRow("S9", SettlementSource.FILE, "Order", "ItemPrice", "Principal", minor, currency,
                                  order_id=oid, line=len(rows) + 2))
        rows.append(SettlementRow("S9", SettlementSource.FILE, "Order", "ItemFees", "Commission", fee, currency,
                                  order_id=oid, line=len(rows) + 2))
    for i, minor in (refunds or {}).items():
        rows.append(SettlementRow("S9", SettlementSource.FILE, "Refund", "ItemPrice", "Principal", -minor, currency,
                                  order_id=f"200-{i:07d}-0000000", adjustment_id=f"A{i}", line=len(rows) + 2))
    return Settlement(
        settlement_id="S9", source=SettlementSource.FILE,
        start=datetime(2026, 10, 1, 8, tzinfo=UTC), end=datetime(2026, 10, 15, 8, tzinfo=UTC),
        deposit_at=datetime(2026, 10, 17, 8, tzinfo=UTC), total_minor=sum(r.amount_minor for r in rows),
        currency=currency, rows=tuple(rows), marketplaces=("Amazon.com",),
    )


def _money(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):.2f}"


def _orders_invoicing(amounts: list[int], refunds: dict[int, int] | None = None) -> Invoicing:
    refs = [_ref(f"200-{i:07d}-0000000", _money(m)) for i, m in enumerate(amounts)]
    refs += [_ref(f"200-{i:07d}-0000000", _money(-m), RefKind.CREDIT_NOTE) for i, m in (refunds or {}).items()]
    return Invoicing(refs=tuple(refs))


def test_receipts_split_at_100_party_rows_with_keys_in_order() -> None:
    amounts = [1000 + i for i in range(250)]
    s, invoicing = _orders_settlement(amounts), _orders_invoicing(amounts)
    entry = _entry(s, invoicing)
    receipts = _receipts(s, entry, invoicing)
    assert [r.key for r in receipts] == ["RCPT:S9:1", "RCPT:S9:2", "RCPT:S9:3"]
    assert [sum(1 for x in r.payload["accounts"] if x.get("party")) for r in receipts] == [100, 100, 50]
    assert all(_balanced(r.payload) for r in receipts)
    assert _signed([entry.payload, *(r.payload for r in receipts)], CLEARING) == 0
    assert sorted(ref.name for r in receipts for ref in r.refs) == sorted(ref.name for ref in invoicing.refs)
    # the same documents in another order give the same entries (a re-run finds them by key)
    shuffled = Invoicing(refs=tuple(reversed(invoicing.refs)))
    assert [r.payload for r in _receipts(s, entry, shuffled)] == [r.payload for r in receipts]


def test_an_orders_documents_stay_in_one_receipt() -> None:
    amounts = [500, 600, 700]
    refunds = {1: 100}
    s, invoicing = _orders_settlement(amounts, refunds), _orders_invoicing(amounts, refunds)
    entry = _entry(s, invoicing)
    receipts = _receipts(s, entry, invoicing, max_party_rows=2)
    assert [[ref.order_id[:11] for ref in r.refs] for r in receipts] == [
        ["200-0000000"], ["200-0000001", "200-0000001"], ["200-0000002"]]
    assert _signed([entry.payload, *(r.payload for r in receipts)], CLEARING) == 0
    with pytest.raises(ValueError, match="at least 1"):
        _receipts(s, entry, invoicing, max_party_rows=0)


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=500_00), min_size=1, max_size=40),
    refund_picks=st.lists(st.tuples(st.integers(min_value=0, max_value=39), st.integers(min_value=1, max_value=100)),
                          max_size=10),
    max_rows=st.integers(min_value=1, max_value=7),
)
def test_property_balanced_bank_is_deposit_clearing_nets_to_zero(
    amounts: list[int], refund_picks: list[tuple[int, int]], max_rows: int
) -> None:
    refunds = {i: max(1, amounts[i] * pct // 100) for i, pct in refund_picks if i < len(amounts)}
    s, invoicing = _orders_settlement(amounts, refunds), _orders_invoicing(amounts, refunds)
    entry = _entry(s, invoicing)
    receipts = _receipts(s, entry, invoicing, max_party_rows=max_rows)
    payloads = [entry.payload, *(r.payload for r in receipts)]
    assert all(_balanced(p) for p in payloads)
    # the bank line (a debit of the bank, or for a charge a credit of the clearing account) = the total
    assert sum(x.debit_minor - x.credit_minor for x in entry.lines if x.category is None) == s.total_minor
    # the invoiced money nets to zero; what stays on the clearing account is a charge Amazon is owed
    assert _signed(payloads, CLEARING) == min(s.total, Decimal(0))
    assert all(sum(1 for x in r.payload["accounts"] if x.get("party")) <= max_rows for r in receipts)
    assert _signed([r.payload for r in receipts], DEBTORS) == -sum(r.amount for r in invoicing.refs)


# --------------------------------------------------------------------------------------------- journal credit notes


def test_journal_credit_note_references_the_invoice_it_was_made_against() -> None:
    """ERPNext refuses a receivable debit that references a Journal Entry: the row references the invoice."""
    amounts = [5000, 3000]
    s = _orders_settlement(amounts)
    s = replace(s, rows=(*s.rows, SettlementRow("S9", SettlementSource.FILE, "Refund", "ItemPrice", "Goodwill",
                                                -700, "USD", order_id="200-0000000-0000000", adjustment_id="G1",
                                                line=99),
                         SettlementRow("S9", SettlementSource.FILE, "Refund", "ItemPrice", "Goodwill", -200, "USD",
                                       order_id="200-0000009-0000000", adjustment_id="G2", line=100)),
                total_minor=s.total_minor - 900)
    invoicing = Invoicing(refs=(
        _ref("200-0000000-0000000", "50.00"), _ref("200-0000001-0000000", "30.00"),
        # same settlement as its invoice: netted into the invoice's row (whose outstanding it lowered)
        _ref("200-0000000-0000000", "-7.00", RefKind.JOURNAL_CREDIT_NOTE),
        # an older invoice, named by the invoicing step
        _ref("200-0000009-0000000", "-2.00", RefKind.JOURNAL_CREDIT_NOTE, against="SI-OLD-9"),
    ))
    entry = _entry(s, invoicing)
    (receipt,) = _receipts(s, entry, invoicing)
    assert _table(receipt.payload) == [
        ("Debtors", "", "43.00", "SI-200-0000000-0000000"),
        ("Debtors", "", "30.00", "SI-200-0000001-0000000"),
        ("Debtors", "2.00", "", "SI-OLD-9"),
        ("Amazon Settlement Clearing", "71.00", "", "invoiced (settlement S9)"),
    ]
    assert len(receipt.refs) == 4


def test_journal_credit_note_without_its_invoice_is_a_party_row() -> None:
    s = _orders_settlement([1000])
    s = replace(s, rows=(*s.rows, SettlementRow("S9", SettlementSource.FILE, "Refund", "ItemPrice", "Goodwill",
                                                -300, "USD", order_id="200-0000005-0000000", line=50)),
                total_minor=s.total_minor - 300)
    invoicing = Invoicing(refs=(_ref("200-0000000-0000000", "10.00"),
                                _ref("200-0000005-0000000", "-3.00", RefKind.JOURNAL_CREDIT_NOTE)))
    (receipt,) = _receipts(s, _entry(s, invoicing), invoicing)
    row = next(r for r in receipt.payload["accounts"] if r.get("party") == "Buyer 200-0000005-0000000")
    assert row["debit_in_account_currency"] == 3.0 and "reference_type" not in row


# --------------------------------------------------------------------------------------------- foreign currency


def test_foreign_currency_exchange_difference_row() -> None:
    """A CAD settlement in a USD company: the invoices were booked at 0.74, the settlement converts at 0.73.
    Debtors are credited what the invoices hold in USD, the clearing rows equal the entry's clearing line,
    the difference is one row on the company's Exchange Gain/Loss account."""
    amounts = [10000, 5000]
    s = _orders_settlement(amounts, currency="CAD")
    invoicing = Invoicing(refs=(_ref("200-0000000-0000000", "74.00", settled="100.00"),
                                _ref("200-0000001-0000000", "37.00", settled="50.00")))
    conversion = Conversion(Decimal("0.73"), RateSource.CURRENCY_EXCHANGE)
    accounts = _accounts(exchange_gain_loss="Exchange Gain/Loss - ATC")
    entry = _entry(s, invoicing, company_currency="USD", conversion=conversion, accounts=accounts)
    assert entry.summary.converted is not None
    assert entry.summary.converted.categories[Category.INVOICED] == Decimal("109.50")  # 150.00 CAD × 0.73
    (receipt,) = _receipts(s, entry, invoicing, conversion=conversion, accounts=accounts)
    assert _table(receipt.payload) == [
        ("Debtors", "", "74.00", "SI-200-0000000-0000000"),
        ("Debtors", "", "37.00", "SI-200-0000001-0000000"),
        ("Amazon Settlement Clearing", "109.50", "", "invoiced (settlement S9)"),
        ("Exchange Gain/Loss", "1.50", "", "exchange difference (CAD→USD at 0.730000000)"),
    ]
    assert receipt.payload["accounts"][-1]["cost_center"] == "Main - ATC"
    assert _signed([entry.payload, receipt.payload], CLEARING) == 0
    # without the company's account, the currency difference account takes it
    (plain,) = _receipts(s, entry, invoicing, conversion=conversion)
    assert plain.payload["accounts"][-1]["account"] == "Amazon Currency Conversion - ATC"
    # the summary must be the converted one
    with pytest.raises(ValueError, match="disagree"):
        _receipts(s, entry, invoicing)


def test_foreign_currency_split_clearing_rows_add_up_to_the_entry_line() -> None:
    amounts = [333 + 7 * i for i in range(9)]
    s = _orders_settlement(amounts, currency="EUR")
    rate = Decimal("1.0837")
    refs = tuple(_ref(f"200-{i:07d}-0000000", f"{(Decimal(m) / 100 * Decimal('1.09')).quantize(Decimal('0.01'))}",
                      settled=_money(m)) for i, m in enumerate(amounts))
    invoicing = Invoicing(refs=refs)
    conversion = Conversion(rate, RateSource.AMAZON, None)
    entry = _entry(s, invoicing, company_currency="USD", conversion=conversion)
    receipts = _receipts(s, entry, invoicing, conversion=conversion, max_party_rows=4)
    assert len(receipts) == 3 and all(_balanced(r.payload) for r in receipts)
    assert _signed([entry.payload, *(r.payload for r in receipts)], CLEARING) == 0
    assert _signed([r.payload for r in receipts], DEBTORS) == -sum(r.amount for r in refs)


def test_same_currency_difference_beyond_rounding_is_refused() -> None:
    s = _orders_settlement([1000])
    ok = Invoicing(refs=(_ref("200-0000000-0000000", "10.01", settled="10.00"),))
    (receipt,) = _receipts(s, _entry(s, ok), ok)
    assert _table(receipt.payload)[-1] == ("Amazon Currency Conversion", "0.01", "", "rounding difference")
    bad = Invoicing(refs=(_ref("200-0000000-0000000", "10.50", settled="10.00"),))
    with pytest.raises(SettlementInvariantError, match=re.escape("worth 0.50 USD more than the settlement pays")):
        _receipts(s, _entry(s, bad), bad)


def test_posting_date_given_as_text() -> None:
    s = parse_settlement_report(EXAMPLE1)
    entry = _entry(s, EXAMPLE1_INVOICING)
    (receipt,) = receipt_entries(s, entry.summary, EXAMPLE1_INVOICING, _accounts(), company=COMPANY,
                                 posting_date="2026-10-18", cost_center=None, conversion=None)
    assert receipt.payload["posting_date"] == "2026-10-18"
    assert date.fromisoformat(receipt.payload["posting_date"]) > s.deposit_date


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=500_00), min_size=1, max_size=25),
    settle_rate=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.6"), places=6),
    invoice_rate=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.6"), places=6),
    max_rows=st.integers(min_value=1, max_value=6),
)
def test_property_foreign_currency_clears_to_zero(
    amounts: list[int], settle_rate: Decimal, invoice_rate: Decimal, max_rows: int
) -> None:
    """Whatever the two rates: every entry balances, debtors get what the invoices hold in USD, the clearing
    rows add up to the entry's clearing line, and the difference is all on the exchange account."""
    s = _orders_settlement(amounts, currency="EUR")
    refs = tuple(_ref(f"200-{i:07d}-0000000", f"{(Decimal(m) / 100 * invoice_rate).quantize(Decimal('0.01'))}",
                      settled=_money(m)) for i, m in enumerate(amounts))
    invoicing = Invoicing(refs=refs)
    conversion = Conversion(settle_rate, RateSource.CURRENCY_EXCHANGE)
    accounts = _accounts(exchange_gain_loss="Exchange Gain/Loss - ATC")
    entry = _entry(s, invoicing, company_currency="USD", conversion=conversion, accounts=accounts)
    receipts = _receipts(s, entry, invoicing, conversion=conversion, accounts=accounts, max_party_rows=max_rows)
    payloads = [entry.payload, *(r.payload for r in receipts)]
    assert all(_balanced(p) for p in payloads)
    charge = sum(x.debit_minor - x.credit_minor for x in entry.lines if x.category is None and x.account == CLEARING)
    assert _signed(payloads, CLEARING) == Decimal(charge).scaleb(-2)  # the invoiced money nets to zero
    assert _signed([r.payload for r in receipts], DEBTORS) == -sum(r.amount for r in refs)
    assert entry.summary.converted is not None
    exchange = _signed([r.payload for r in receipts], "Exchange Gain/Loss - ATC")
    assert exchange == sum(r.amount for r in refs) - entry.summary.converted.categories[Category.INVOICED]


def test_a_document_worth_nothing_in_the_company_currency_still_clears() -> None:
    """0.01 EUR at 0.5 is 0.00 USD on the invoice but 0.01 USD on the entry's clearing line (rounded half up):
    the receipt has no receivable row, yet clears the cent against the exchange account."""
    s = _orders_settlement([1], currency="EUR", fee=0)
    invoicing = Invoicing(refs=(_ref("200-0000000-0000000", "0.00", settled="0.01"),))
    conversion = Conversion(Decimal("0.5"), RateSource.CURRENCY_EXCHANGE)
    entry = _entry(s, invoicing, company_currency="USD", conversion=conversion)
    (receipt,) = _receipts(s, entry, invoicing, conversion=conversion)
    assert _table(receipt.payload) == [
        ("Amazon Settlement Clearing", "0.01", "", "invoiced (settlement S9)"),
        ("Amazon Currency Conversion", "", "0.01", "exchange difference (EUR→USD at 0.500000000)"),
    ]
    assert _signed([entry.payload, receipt.payload], CLEARING) == 0
