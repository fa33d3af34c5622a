"""Settlement categories, the [settlements] settings and the settlement → Journal Entry mapping (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from amz2erp.amazon.settlement_report import (
    Settlement,
    SettlementImbalanceError,
    SettlementRow,
    SettlementSource,
    parse_settlement_report,
)
from amz2erp.errors import ConfigError
from amz2erp.settlement_categories import (
    CLEARING_CATEGORIES,
    SUSPENSE_CATEGORIES,
    Category,
    CategoryTable,
    RootType,
    default_table,
    load_table,
)
from amz2erp.settlement_config import SettlementsSettings
from amz2erp.settlement_mapping import (
    NothingToPostError,
    SettlementCurrencyError,
    SettlementEntry,
    UnmappedRowsError,
    resolve_accounts,
    settlement_to_journal_entry,
)

FIXTURES = Path(__file__).parent / "fixtures" / "settlements"
ABBR = "ATC"
COMPANY = "Amz Test Co"
SETTINGS = SettlementsSettings(bank_account="Amazon Payouts", cost_center="Main")
UTC = timezone.utc


def _entry(settlement: Settlement, cfg: SettlementsSettings = SETTINGS, **kw: str) -> SettlementEntry:
    table = cfg.category_table()
    accounts = resolve_accounts(cfg, table, ABBR)
    return settlement_to_journal_entry(
        settlement, table, accounts, company=COMPANY, company_currency=kw.pop("company_currency", settlement.currency),
        unmapped=cfg.unmapped, **kw,
    )


def _table(entry: SettlementEntry) -> list[tuple[str, str, str, str]]:
    """The payload's lines as (account without abbreviation, Dr, Cr, remark), like the worked examples."""
    out = []
    for row in entry.payload["accounts"]:
        dr = row.get("debit_in_account_currency")
        cr = row.get("credit_in_account_currency")
        out.append((
            row["account"].removesuffix(f" - {ABBR}"),
            f"{dr:.2f}" if dr is not None else "",
            f"{cr:.2f}" if cr is not None else "",
            row.get("user_remark", "total-amount"),
        ))
    return out


def _totals(entry: SettlementEntry) -> tuple[Decimal, Decimal]:
    rows = entry.payload["accounts"]
    dr = sum(Decimal(str(r.get("debit_in_account_currency", 0))) for r in rows)
    cr = sum(Decimal(str(r.get("credit_in_account_currency", 0))) for r in rows)
    return dr, cr


def _row(key: str, amount_minor: int, order_id: str = "", adjustment_id: str = "", line: int = 0) -> SettlementRow:
    tt, at, ad = key.split("|")
    return SettlementRow("S1", SettlementSource.FILE, tt, at, ad, amount_minor, "USD", order_id=order_id,
                         adjustment_id=adjustment_id, line=line)


def _settlement(rows: list[SettlementRow], total: int | None = None, currency: str = "USD") -> Settlement:
    return Settlement(
        settlement_id="S1", source=SettlementSource.FILE,
        start=datetime(2026, 10, 1, 8, tzinfo=UTC), end=datetime(2026, 10, 15, 8, tzinfo=UTC),
        deposit_at=datetime(2026, 10, 17, 8, tzinfo=UTC),
        total_minor=sum(r.amount_minor for r in rows) if total is None else total,
        currency=currency, rows=tuple(replace(r, currency=currency) for r in rows), marketplaces=("Amazon.com",),
    )


# --------------------------------------------------------------------------------------------- worked examples


# The three settlements of the worked examples, as V2 files, give exactly the Journal Entries worked out by
# hand for them: same accounts, amounts, sides and line order.


def test_worked_example_1_us_reserve_refund_fba() -> None:
    entry = _entry(parse_settlement_report(FIXTURES / "us_example1_12345678901.txt"))
    assert _table(entry) == [
        ("Amazon Payouts", "139.36", "", "total-amount"),
        ("Amazon Sales", "", "250.00", "principal (3 rows)"),
        ("Amazon Shipping Income", "", "5.99", "shipping (1 row)"),
        ("Amazon Promotions", "10.00", "", "promotion (1 row)"),
        ("Amazon Refunds", "40.00", "", "refund_principal (1 row)"),
        ("Amazon Selling Fees", "30.90", "", "commission (4 rows)"),
        ("Amazon Selling Fees", "1.20", "", "refund_fee (1 row)"),
        ("Amazon FBA Fees", "15.70", "", "fba_fees (2 rows)"),
        ("Amazon FBA Storage Fees", "12.34", "", "storage (1 row)"),
        ("Amazon Subscription Fees", "39.99", "", "subscription (1 row)"),
        ("Amazon Reimbursements", "", "18.50", "reimbursement (1 row)"),
        ("Amazon Reserve", "", "60.00", "reserve_released (1 row)"),
        ("Amazon Reserve", "45.00", "", "reserve_held (1 row)"),
    ]
    assert _totals(entry) == (Decimal("334.49"), Decimal("334.49"))
    p = entry.payload
    assert {k: v for k, v in p.items() if k != "accounts"} == {
        "doctype": "Journal Entry",
        "voucher_type": "Bank Entry",
        "company": COMPANY,
        "posting_date": "2026-10-17",
        "cheque_no": "12345678901",
        "cheque_date": "2026-10-17",
        "user_remark": "Amazon settlement 12345678901, 2026-10-01–2026-10-15, Amazon.com, USD",
        "amazon_settlement_id": "12345678901",
        "multi_currency": 0,
    }
    assert p["accounts"][0] == {"account": "Amazon Payouts - ATC", "debit_in_account_currency": 139.36}
    assert p["accounts"][1] == {"account": "Amazon Sales - ATC", "credit_in_account_currency": 250.0,
                                "cost_center": "Main - ATC", "user_remark": "principal (3 rows)"}
    # US marketplace-facilitator tax (16.18) and its withholding net to zero: no tax line at all
    mf = entry.summary.category(Category.MF_TAX)
    assert mf is not None and (mf.amount, mf.rows) == (Decimal("0.00"), 10)
    assert entry.summary.category(Category.TAX) is None
    assert entry.summary.unmapped == ()


def test_worked_example_1_orders_settled_match_the_sales_order_totals() -> None:
    summary = _entry(parse_settlement_report(FIXTURES / "us_example1_12345678901.txt")).summary
    got = {o.order_id: (o.charged, o.mf_tax, o.refunded, o.fees, o.rows) for o in summary.orders}
    assert got == {
        # Sales Orders of 125.00, 70.00 and 50.99 (MF tax excluded, as amz2erp books them by default)
        "111-0000001-0000001": (Decimal("125.00"), Decimal("10.00"), Decimal("0.00"), Decimal("-24.85"), 5),
        "111-0000002-0000002": (Decimal("70.00"), Decimal("4.90"), Decimal("0.00"), Decimal("-20.10"), 6),
        "111-0000003-0000003": (Decimal("50.99"), Decimal("4.08"), Decimal("0.00"), Decimal("-7.65"), 7),
        "111-0000004-0000004": (Decimal("0.00"), Decimal("0.00"), Decimal("-40.00"), Decimal("4.80"), 5),
    }
    assert {o.marketplace_name for o in summary.orders} == {"Amazon.com"}


def test_worked_example_2_de_vat() -> None:
    entry = _entry(parse_settlement_report(FIXTURES / "de_example2_23456789012.txt"))
    assert _table(entry) == [
        ("Amazon Payouts", "118.65", "", "total-amount"),
        ("Amazon Sales", "", "190.00", "principal (3 rows)"),
        ("Amazon Sales Tax Collected", "", "36.10", "tax (3 rows)"),
        ("Amazon Refunds", "25.00", "", "refund_principal (1 row)"),
        ("Amazon Sales Tax Collected", "4.75", "", "refund_tax (1 row)"),
        ("Amazon Selling Fees", "29.46", "", "commission (4 rows)"),
        ("Amazon Selling Fees", "0.89", "", "refund_fee (1 row)"),
        ("Amazon FBA Fees", "15.45", "", "fba_fees (3 rows)"),
        ("Amazon FBA Storage Fees", "4.20", "", "storage (1 row)"),
        ("Amazon Subscription Fees", "39.00", "", "subscription (1 row)"),
        ("Amazon Reimbursements", "", "11.30", "reimbursement (1 row)"),
    ]
    assert _totals(entry) == (Decimal("237.40"), Decimal("237.40"))
    assert entry.payload["posting_date"] == "2026-10-17"
    assert entry.payload["user_remark"] == "Amazon settlement 23456789012, 2026-10-01–2026-10-15, Amazon.de, EUR"
    orders = {o.order_id: o for o in entry.summary.orders}
    assert orders["302-0000005-0000005"].charged == Decimal("59.50")  # VAT the seller collected is order money


def test_worked_example_3_negative_settlement_credits_clearing() -> None:
    entry = _entry(parse_settlement_report(FIXTURES / "us_example3_negative_12345678903.txt"))
    assert _table(entry) == [
        ("Amazon Settlement Clearing", "", "106.26", "total-amount"),
        ("Amazon Sales", "", "19.99", "principal (1 row)"),
        ("Amazon Refunds", "59.99", "", "refund_principal (1 row)"),
        ("Amazon Selling Fees", "", "6.00", "commission (2 rows)"),
        ("Amazon Selling Fees", "1.80", "", "refund_fee (1 row)"),
        ("Amazon FBA Fees", "4.25", "", "fba_fees (1 row)"),
        ("Amazon Advertising", "48.35", "", "advertising (1 row)"),
        ("Amazon FBA Storage Fees", "7.87", "", "storage (1 row)"),
        ("Amazon FBA Storage Fees", "15.00", "", "long_term_storage (1 row)"),
        ("Amazon Subscription Fees", "39.99", "", "subscription (1 row)"),
        ("Amazon Reserve", "", "45.00", "reserve_released (1 row)"),
    ]
    assert _totals(entry) == (Decimal("177.25"), Decimal("177.25"))
    assert entry.payload["posting_date"] == entry.payload["cheque_date"] == "2026-10-31"
    # a charge needs no bank account
    no_bank = _entry(parse_settlement_report(FIXTURES / "us_example3_negative_12345678903.txt"),
                     SettlementsSettings())
    assert no_bank.payload["accounts"][0] == {
        "account": "Amazon Settlement Clearing - ATC", "credit_in_account_currency": 106.26
    }


# --------------------------------------------------------------------------------------------- rules


def test_payout_without_bank_account_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[settlements\] bank_account is not set"):
        _entry(_settlement([_row("Order|ItemPrice|Principal", 1000)]), SettlementsSettings())


def test_unbalanced_settlement_is_never_mapped() -> None:
    with pytest.raises(SettlementImbalanceError, match="does not balance"):
        _entry(_settlement([_row("Order|ItemPrice|Principal", 1000)], total=999))


def test_settlement_in_another_currency_is_refused() -> None:
    with pytest.raises(SettlementCurrencyError, match="is in EUR, Amz Test Co books in GBP: no exchange rate EUR→GBP"):
        _entry(_settlement([_row("Order|ItemPrice|Principal", 1000)], currency="EUR"), company_currency="gbp")


def test_all_zero_settlement_has_nothing_to_post() -> None:
    rows = [_row("Order|ItemPrice|Tax", 500, "1"), _row("Order|ItemWithheldTax|MarketplaceFacilitatorTax-Principal", -500, "1")]
    with pytest.raises(NothingToPostError, match="total and every category are zero"):
        _entry(_settlement(rows))


def test_zero_total_settlement_posts_without_a_bank_line() -> None:
    rows = [_row("Order|ItemPrice|Principal", 2000, "1"), _row("Order|ItemFees|Commission", -2000, "1")]
    entry = _entry(_settlement(rows))
    assert _table(entry) == [
        ("Amazon Sales", "", "20.00", "principal (1 row)"),
        ("Amazon Selling Fees", "20.00", "", "commission (1 row)"),
    ]


def test_unmapped_rows_go_to_suspense_and_are_listed() -> None:
    rows = [
        _row("Order|ItemPrice|Principal", 5000, "1", line=3),
        _row("other-transaction|other-transaction|Inbound Placement Service Fee", -700, line=4),
        _row("other-transaction|other-transaction|Mystery Credit", 200, line=5),
    ]
    entry = _entry(_settlement(rows))
    assert _table(entry)[-1] == ("Amazon Unmapped", "5.00", "", "unmapped (2 rows)")
    assert [(u.line, u.key, u.amount) for u in entry.summary.unmapped] == [
        (4, "other-transaction|other-transaction|Inbound Placement Service Fee", Decimal("-7.00")),
        (5, "other-transaction|other-transaction|Mystery Credit", Decimal("2.00")),
    ]
    with pytest.raises(UnmappedRowsError, match=r"2 row\(s\) match no category .*'other-transaction\|other-transaction\|Inbound"):
        _entry(_settlement(rows), SettlementsSettings(bank_account="Amazon Payouts", unmapped="error"))


def test_unknown_rows_are_never_guessed_from_the_sign() -> None:
    table = default_table()
    assert table.categorize("other-transaction", "other-transaction", "Brand New Fee") is Category.UNMAPPED
    rows = [_row("x|y|z", 700), _row("x|y|z", -300)]
    entry = _entry(_settlement(rows))
    cat = entry.summary.category(Category.UNMAPPED)
    assert cat is not None and (cat.amount, cat.rows) == (Decimal("4.00"), 2)


def test_map_and_account_overrides() -> None:
    cfg = SettlementsSettings(
        bank_account="Amazon Payouts - ATC",  # already complete: not suffixed twice
        map={"other-transaction|other-transaction|Inbound Placement Service Fee": "fba_other",
             "Order|ItemFees|Commission": "fba_fees"},  # overrides win over the defaults
        accounts={"fba_other": "Inbound Fees", "debt": "Amazon Debt"},
    )
    rows = [
        _row("Order|ItemPrice|Principal", 5000, "1"),
        _row("Order|ItemFees|Commission", -750, "1"),
        _row("other-transaction|other-transaction|inbound placement  service fee", -700),
        _row("other-transaction|other-transaction|Payable to Amazon", -100),
    ]
    entry = _entry(_settlement(rows), cfg)
    assert _table(entry) == [
        ("Amazon Payouts", "34.50", "", "total-amount"),
        ("Amazon Sales", "", "50.00", "principal (1 row)"),
        ("Amazon FBA Fees", "7.50", "", "fba_fees (1 row)"),
        ("Inbound Fees", "7.00", "", "fba_other (1 row)"),
        ("Amazon Debt", "1.00", "", "debt (1 row)"),
    ]
    assert "cost_center" not in entry.payload["accounts"][1]  # empty: ERPNext uses the company's


def test_marketplace_facilitator_tax_that_does_not_cancel_stays_visible() -> None:
    rows = [
        _row("Order|ItemPrice|Principal", 10000, "1"),
        _row("Order|ItemPrice|Tax", 800, "1"),
        _row("Order|ItemWithheldTax|MarketplaceFacilitatorTax-Principal", -600, "1"),
    ]
    entry = _entry(_settlement(rows))
    assert _table(entry)[1:] == [
        ("Amazon Sales", "", "100.00", "principal (1 row)"),
        ("Amazon Sales Tax Collected", "", "8.00", "tax (1 row)"),
        ("Amazon Marketplace Facilitator Tax", "6.00", "", "mf_tax (1 row)"),
    ]


def test_mf_tax_account_follows_the_orders_account_unless_overridden() -> None:
    table = SETTINGS.category_table()
    acc = resolve_accounts(SETTINGS, table, ABBR, marketplace_facilitator_tax="US Sales Tax Remitted")
    assert acc.for_category(Category.MF_TAX) == "US Sales Tax Remitted - ATC"
    cfg = SettlementsSettings(accounts={"mf_tax": "MF"})
    acc = resolve_accounts(cfg, cfg.category_table(), ABBR, marketplace_facilitator_tax="US Sales Tax Remitted")
    assert acc.for_category(Category.MF_TAX) == "MF - ATC"
    assert acc.for_category(Category.UNMAPPED) == "Amazon Unmapped - ATC"
    assert acc.for_category(Category.CARD_CHARGE) == acc.clearing == "Amazon Settlement Clearing - ATC"
    assert acc.bank is None and acc.cost_center is None


def test_settlement_rebuilt_from_transactions_maps_like_a_file() -> None:
    rows = [
        _row("Shipment|ProductCharges|OurPricePrincipal", 10000, "111-1"),
        _row("Shipment|Tax|OurPriceTax", 800, "111-1"),
        _row("Shipment|AmazonFees|Commission/Base", -1500, "111-1"),
        _row("Shipment|AmazonFees|FBAPerUnitFulfillmentFee/Base", -936, "111-1"),
        _row("Shipment|AmazonFees|FBAPerUnitFulfillmentFee/Tax", -234, "111-1"),
        _row("ServiceFee|AmazonFees|FBAStorageFee", -2000),
    ]
    entry = _entry(_settlement(rows))
    assert _table(entry) == [
        ("Amazon Payouts", "61.30", "", "total-amount"),
        ("Amazon Sales", "", "100.00", "principal (1 row)"),
        ("Amazon Sales Tax Collected", "", "8.00", "tax (1 row)"),
        ("Amazon Selling Fees", "15.00", "", "commission (1 row)"),
        ("Amazon FBA Fees", "9.36", "", "fba_fees (1 row)"),
        ("Amazon FBA Storage Fees", "20.00", "", "storage (1 row)"),
        ("Amazon Fee VAT", "2.34", "", "fee_tax (1 row)"),
    ]
    (order,) = entry.summary.orders
    assert (order.charged, order.fees) == (Decimal("108.00"), Decimal("-24.36"))  # fees without their VAT


def test_trace_id_in_the_remark() -> None:
    s = replace(_settlement([_row("Order|ItemPrice|Principal", 1000)]), trace_id="0001234")
    assert _entry(s).payload["user_remark"].endswith("; trace 0001234")


# --------------------------------------------------------------------------------------------- property

_KEYS = [
    "Order|ItemPrice|Principal", "Order|ItemPrice|Tax", "Order|ItemWithheldTax|MarketplaceFacilitatorTax-Principal",
    "Order|Promotion|Principal", "Order|ItemFees|Commission", "Order|ItemFees|FBAPerUnitFulfillmentFee",
    "Refund|ItemPrice|Principal", "Refund|ItemPrice|Tax", "Refund|ItemFees|RefundCommission",
    "other-transaction|other-transaction|Storage Fee", "other-transaction|other-transaction|Current Reserve Amount",
    "other-transaction|other-transaction|Previous Reserve Amount Balance", "ServiceFee|Cost of Advertising|x",
    "other-transaction|FBA Inventory Reimbursement|WAREHOUSE_LOST", "Something|New|Entirely",
]
_ROWS = st.lists(
    st.tuples(st.sampled_from(_KEYS), st.integers(-10**7, 10**7), st.sampled_from(["", "111-1", "111-2"])),
    min_size=1, max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_ROWS)
def test_any_settlement_balances_and_the_bank_line_is_the_total(spec: list[tuple[str, int, str]]) -> None:
    rows = [_row(k, a, o, line=i) for i, (k, a, o) in enumerate(spec, start=3)]
    s = _settlement(rows)
    try:
        entry = _entry(s)
    except NothingToPostError:
        assert s.total_minor == 0
        return
    debit = sum(line.debit_minor for line in entry.lines)
    credit = sum(line.credit_minor for line in entry.lines)
    assert debit == credit
    assert all((line.debit_minor > 0) != (line.credit_minor > 0) for line in entry.lines)
    bank = [line for line in entry.lines if line.category is None]
    assert sum(b.debit_minor - b.credit_minor for b in bank) == s.total_minor
    assert len(bank) == (0 if s.total_minor == 0 else 1)
    assert sum(c.amount_minor for c in entry.summary.categories) == s.total_minor
    assert sum(c.rows for c in entry.summary.categories) == len(rows)  # every row counted exactly once
    payload_dr, payload_cr = _totals(entry)
    assert payload_dr == payload_cr == Decimal(debit) / 100  # the floats sent carry the exact cents
    assert len({line.category for line in entry.lines}) == len(entry.lines)  # one line per category


# --------------------------------------------------------------------------------------------- table & settings


def test_default_table_covers_every_category() -> None:
    table = default_table()
    for category in Category:
        assert isinstance(category.root_type, RootType)
        if category in CLEARING_CATEGORIES or category in SUSPENSE_CATEGORIES:
            assert table.account_name(category) is None
        else:
            assert table.account_name(category)
    assert Category.PRINCIPAL.root_type is RootType.INCOME
    assert Category.COMMISSION.root_type is RootType.EXPENSE
    assert Category.RESERVE_HELD.root_type is RootType.ASSET
    assert Category.TAX.root_type is RootType.LIABILITY


@pytest.mark.parametrize(
    ("key", "category"),
    [
        ("Order|ItemPrice|Principal", Category.PRINCIPAL),
        ("A-to-z Guarantee Refund|ItemPrice|Principal", Category.REFUND_PRINCIPAL),
        ("Chargeback Refund|ItemPrice|ShippingTax", Category.REFUND_TAX),
        ("Refund|ItemFees|Commission", Category.COMMISSION),
        ("Refund|ItemFees|RefundCommission", Category.REFUND_FEE),
        ("Order|ItemWithheldTax|MarketplaceFacilitatorVAT-Principal", Category.MF_TAX),
        ("Order|ItemWithheldTax|TCS-IGST", Category.WITHHELD_TAX),
        ("FBAFees|Inbound Defect Fee|Tax on fee", Category.FEE_TAX),
        ("FBAFees|Inbound Defect Fee|Base fee", Category.FBA_OTHER),
        ("other-transaction|other-transaction|Shipping label purchase for return", Category.SHIPPING_LABELS),
        ("other-transaction|other-transaction|Successful charge", Category.CARD_CHARGE),
        ("Shipment|ProductCharges|OurPricePrincipal", Category.PRINCIPAL),
        ("Shipment|Product Charges|Principle", Category.PRINCIPAL),
        ("Refund|ProductCharges|OurPricePrincipal", Category.REFUND_PRINCIPAL),
        ("Shipment|AmazonFees|FBAPerUnitFulfillmentFee/Tax", Category.FEE_TAX),
        ("Shipment|AmazonFees|Commission/Base", Category.COMMISSION),
        ("ServiceFee|AmazonFees|FBAStorageFee", Category.STORAGE),
        ("ServiceFee|AmazonFees|FBAInboundTransportationFee/Base", Category.FBA_OTHER),
        ("Shipment|AmazonFees|FBAWeightBasedFee/Base", Category.FBA_FEES),
        ("Order|ItemPrice|SomethingNew", Category.UNMAPPED),
    ],
)
def test_default_table(key: str, category: Category) -> None:
    assert default_table().categorize(*key.split("|")) is category


def test_first_matching_rule_wins_and_overrides_come_first() -> None:
    table = load_table(
        '[accounts]\n' + "\n".join(f'{c.value} = "A {c.value}"' for c in Category
                                   if c not in CLEARING_CATEGORIES | SUSPENSE_CATEGORIES)
        + '\n[map]\n"*|Fee|Special*" = "advertising"\n"*|Fee|*" = "commission"\n'
    )
    assert table.categorize("T", "Fee", "Special one") is Category.ADVERTISING
    assert table.categorize("T", "Fee", "Other") is Category.COMMISSION
    assert table.match("T", "Fee", "Other") == (Category.COMMISSION, "*|Fee|*")
    over = table.with_overrides({"t|fee|SPECIAL O?E": "storage"})
    assert over.categorize("T", "Fee", "Special one") is Category.STORAGE
    assert over.categorize("T", "Fee", "Special two") is Category.ADVERTISING
    assert isinstance(over, CategoryTable) and table.categorize("T", "Fee", "Special one") is Category.ADVERTISING


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[map]\n"a|b" = "principal"', "write \"transaction-type|amount-type|amount-description\""),
        ('[map]\n"a|b|c" = "sales"', "unknown category"),
        ('[accounts]\nprincipal = "X"', "no default account for shipping"),
        ('[maps]\n', "unknown table"),
        ('[map\n', "invalid TOML"),
    ],
)
def test_bad_tables(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_table(text, source="t.toml")


def test_settings_validation() -> None:
    with pytest.raises(ValidationError, match="unknown category"):
        SettlementsSettings(accounts={"sales": "X"})
    with pytest.raises(ValidationError, match="unknown category"):
        SettlementsSettings(map={"a|b|c": "nonsense"})
    with pytest.raises(ValidationError, match="transaction-type"):
        SettlementsSettings(map={"a|b": "principal"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SettlementsSettings.model_validate({"bank_acount": "x"})
    with pytest.raises(ValidationError, match="'suspense' or 'error'"):
        SettlementsSettings.model_validate({"unmapped": "drop"})
    cfg = SettlementsSettings.model_validate({"bank_account": " Amazon Payouts ", "unmapped": "error"})
    assert (cfg.bank_account, cfg.unmapped, cfg.clearing_account, cfg.suspense_account, cfg.cost_center) == (
        "Amazon Payouts", "error", "Amazon Settlement Clearing", "Amazon Unmapped", ""
    )
    with pytest.raises(ValidationError, match="frozen"):
        cfg.bank_account = "x"  # type: ignore[misc]
