"""Settlements in another currency than the company's: the Conversion input and the two entry shapes.

(a) bank account in the company currency: every line converted and rounded, the bank line = Amazon's converted
    payout (or the total at the rate), the rounding left over on "Amazon Currency Conversion";
(b) bank account in the settlement currency: multi-currency entry whose bank row keeps the settlement amount
    and the rate, and balances once ERPNext recomputes debit = debit_in_account_currency × exchange_rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from amz2erp.amazon.settlement_report import Settlement, parse_settlement_report
from amz2erp.settlement_categories import Category, RootType
from amz2erp.settlement_config import SettlementsSettings
from amz2erp.settlement_mapping import (
    CategoryTotal,
    Conversion,
    NothingToPostError,
    RateSource,
    SettlementCurrencyError,
    SettlementEntry,
    resolve_accounts,
    settlement_to_journal_entry,
    summarise,
)
from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.erpnext import journal as erpnext_journal
from tests.test_settlement_mapping import _KEYS, _row, _settlement, _table

FIXTURES = Path(__file__).parent / "fixtures" / "settlements"
ABBR = "ATC"
COMPANY = "Amz Test Co"
SETTINGS = SettlementsSettings(bank_account="Amazon Payouts", cost_center="Main")
CAD_BANK = SettlementsSettings(bank_account="Amazon CAD Payouts")


def _entry(settlement: Settlement, company_currency: str, conversion: Conversion | None,
           bank_currency: str | None = None, cfg: SettlementsSettings = SETTINGS) -> SettlementEntry:
    table = cfg.category_table()
    return settlement_to_journal_entry(
        settlement, table, resolve_accounts(cfg, table, ABBR), company=COMPANY, company_currency=company_currency,
        conversion=conversion, bank_account_currency=bank_currency,
    )


def _cad(rows: list[tuple[str, int]]) -> Settlement:
    return _settlement([_row(k, a, "702-1" if k.startswith(("Order", "Refund")) else "") for k, a in rows],
                       currency="CAD")


CAD_ROWS = [
    ("Order|ItemPrice|Principal", 4999), ("Order|ItemPrice|Shipping", 333), ("Order|ItemFees|Commission", -750),
    ("Order|ItemFees|FBAPerUnitFulfillmentFee", -517), ("other-transaction|other-transaction|Storage Fee", -101),
]  # total CAD 39.64


def _frappe_legacy_round(num: float, precision: int) -> float:
    """Frappe's "Banker's Rounding (legacy)" (frappe.utils.data._bankers_rounding_legacy): ties to even
    after rounding the scaled value to 8 decimals — the other way a real site may round."""
    multiplier = 10**precision
    scaled = round(num * multiplier, 8)
    floor = math.floor(scaled)
    part = scaled - floor
    rounded = floor + (1 if floor % 2 else 0) if part == 0.5 else round(scaled)  # a tie goes to the even
    return rounded / multiplier


def _erpnext_totals(payload: dict[str, Any], foreign: set[str], rounding: str = "simulator") -> tuple[float, float]:
    """Σ debit and Σ credit in the company currency as ERPNext recomputes them (as the simulator's
    erpnext_journal.validate does): amounts in account currency rounded to 2, × the row's exchange_rate
    (1 for a company-currency account), rounded to 2."""
    rnd = (lambda v: round(v, 2)) if rounding == "simulator" else (lambda v: _frappe_legacy_round(v, 2))
    debit = credit = 0.0
    for row in payload["accounts"]:
        rate = float(row["exchange_rate"]) if row["account"] in foreign else 1.0
        debit += rnd(rnd(float(row.get("debit_in_account_currency") or 0)) * rate)
        credit += rnd(rnd(float(row.get("credit_in_account_currency") or 0)) * rate)
    return debit, credit


def _balanced(payload: dict[str, Any], foreign: set[str]) -> bool:
    return all(round(d - c, 2) == 0 for d, c in (_erpnext_totals(payload, foreign, r) for r in ("simulator", "legacy")))


# --------------------------------------------------------------------------------------------- worked example


def test_worked_example_2_gbp_company_amazon_converted_the_payout() -> None:
    """Example 2 (Amazon.de, EUR 118.65) for a GBP company: Amazon paid GBP 101.20 (ACCS)."""
    settlement = parse_settlement_report(FIXTURES / "de_example2_23456789012.txt")
    conversion = Conversion.from_amazon(Decimal("118.65"), Decimal("101.20"))
    assert (conversion.rate, conversion.source) == (Decimal("0.852928782"), RateSource.AMAZON)
    entry = _entry(settlement, "GBP", conversion)
    assert _table(entry) == [
        ("Amazon Payouts", "101.20", "", "total-amount"),
        ("Amazon Sales", "", "162.06", "principal (3 rows)"),
        ("Amazon Sales Tax Collected", "", "30.79", "tax (3 rows)"),
        ("Amazon Refunds", "21.32", "", "refund_principal (1 row)"),
        ("Amazon Sales Tax Collected", "4.05", "", "refund_tax (1 row)"),
        ("Amazon Selling Fees", "25.13", "", "commission (4 rows)"),
        ("Amazon Selling Fees", "0.76", "", "refund_fee (1 row)"),
        ("Amazon FBA Fees", "13.18", "", "fba_fees (3 rows)"),
        ("Amazon FBA Storage Fees", "3.58", "", "storage (1 row)"),
        ("Amazon Subscription Fees", "33.26", "", "subscription (1 row)"),
        ("Amazon Reimbursements", "", "9.64", "reimbursement (1 row)"),
        ("Amazon Currency Conversion", "0.01", "", "currency_difference (EUR→GBP at 0.852928782, amazon)"),
    ]
    p = entry.payload
    assert p["multi_currency"] == 0 and all("exchange_rate" not in r for r in p["accounts"])
    assert p["user_remark"] == ("Amazon settlement 23456789012, 2026-10-01–2026-10-15, Amazon.de, EUR "
                                "at 0.852928782 GBP/EUR (amazon)")
    dr = sum(Decimal(str(r.get("debit_in_account_currency", 0))) for r in p["accounts"])
    cr = sum(Decimal(str(r.get("credit_in_account_currency", 0))) for r in p["accounts"])
    assert dr == cr == Decimal("202.49")
    # the summary keeps the settlement's EUR and adds the GBP it was booked as
    s = entry.summary
    assert (s.currency, s.total) == ("EUR", Decimal("118.65"))
    principal = s.category(Category.PRINCIPAL)
    assert principal is not None and principal.amount == Decimal("190.00")
    assert s.converted is not None
    assert (s.converted.currency, s.converted.total, s.converted.difference) == ("GBP", Decimal("101.20"),
                                                                                 Decimal("-0.01"))
    assert s.converted.categories[Category.PRINCIPAL] == Decimal("162.06")
    assert s.converted.categories[Category.COMMISSION] == Decimal("-25.13")
    # the rate as the research rounded it (6 decimals) books the same lines
    six = _entry(settlement, "GBP", Conversion(Decimal("0.852929"), RateSource.AMAZON, Decimal("101.20")))
    assert _table(six)[:-1] == _table(entry)[:-1] and _table(six)[-1][1] == "0.01"


def test_currency_difference_is_an_expense_category_with_a_default_account() -> None:
    assert Category.CURRENCY_DIFFERENCE.root_type is RootType.EXPENSE
    assert SETTINGS.category_table().account_name(Category.CURRENCY_DIFFERENCE) == "Amazon Currency Conversion"
    cfg = SettlementsSettings(bank_account="B", accounts={"currency_difference": "Exchange Gain/Loss"})
    acc = resolve_accounts(cfg, cfg.category_table(), ABBR)
    assert acc.for_category(Category.CURRENCY_DIFFERENCE) == "Exchange Gain/Loss - ATC"


# --------------------------------------------------------------------------------------------- CAD in a USD company


def test_cad_settlement_usd_bank_account_books_everything_in_usd() -> None:
    entry = _entry(_cad(CAD_ROWS), "USD", Conversion(Decimal("0.7123"), RateSource.CURRENCY_EXCHANGE))
    # 39.64 × 0.7123 = 28.235572 → 28.24; 49.99 → 35.608... → 35.61; 3.33 → 2.37; 7.50 → 5.34; 5.17 → 3.68;
    # 1.01 → 0.72: debits 28.24 + 5.34 + 3.68 + 0.72 = 37.98, credits 35.61 + 2.37 = 37.98: nothing left over
    assert _table(entry) == [
        ("Amazon Payouts", "28.24", "", "total-amount"),
        ("Amazon Sales", "", "35.61", "principal (1 row)"),
        ("Amazon Shipping Income", "", "2.37", "shipping (1 row)"),
        ("Amazon Selling Fees", "5.34", "", "commission (1 row)"),
        ("Amazon FBA Fees", "3.68", "", "fba_fees (1 row)"),
        ("Amazon FBA Storage Fees", "0.72", "", "storage (1 row)"),
    ]
    assert entry.payload["multi_currency"] == 0
    assert entry.summary.converted is not None and entry.summary.converted.difference == 0
    # a rate that leaves a cent: the cent is credited to the conversion account
    entry = _entry(_cad(CAD_ROWS), "USD", Conversion(Decimal("0.7"), RateSource.FALLBACK))
    # 27.748 → 27.75; 34.993 → 34.99; 2.331 → 2.33; 5.25; 3.619 → 3.62; 0.707 → 0.71
    assert _table(entry)[0] == ("Amazon Payouts", "27.75", "", "total-amount")
    assert _table(entry)[-1] == ("Amazon Currency Conversion", "", "0.01",
                                 "currency_difference (CAD→USD at 0.700000000, fallback)")


def test_cad_settlement_cad_bank_account_is_a_multi_currency_entry() -> None:
    entry = _entry(_cad(CAD_ROWS), "USD", Conversion(Decimal("0.7123"), RateSource.CURRENCY_EXCHANGE), "CAD",
                   CAD_BANK)
    rows = entry.payload["accounts"]
    assert entry.payload["multi_currency"] == 1
    assert rows[0] == {"account": "Amazon CAD Payouts - ATC", "exchange_rate": 0.7123, "debit_in_account_currency": 39.64}
    assert rows[1] == {"account": "Amazon Sales - ATC", "exchange_rate": 1.0, "credit_in_account_currency": 35.61,
                       "user_remark": "principal (1 row)"}
    assert [r.get("debit_in_account_currency") or r.get("credit_in_account_currency") for r in rows[1:]] == [
        35.61, 2.37, 5.34, 3.68, 0.72
    ]
    assert entry.lines[0].debit_minor == 2824 and entry.lines[0].amount_in_account_currency_minor == 3964
    assert _balanced(entry.payload, {"Amazon CAD Payouts - ATC"})
    assert entry.summary.converted is not None and entry.summary.converted.bank_in_settlement_currency


def test_a_half_cent_bank_amount_gets_a_rate_every_erpnext_rounds_alike() -> None:
    # 0.01 CAD × 0.5 = 0.005 USD: banker's rounding says 0.00, commercial 0.01 — the rate moves by 1e-9 steps
    rows = [("Order|ItemPrice|Principal", 101), ("Order|ItemFees|Commission", -100)]  # total 0.01
    entry = _entry(_cad(rows), "USD", Conversion(Decimal("0.5"), RateSource.FALLBACK), "CAD", CAD_BANK)
    rate = Decimal(str(entry.payload["accounts"][0]["exchange_rate"]))
    assert rate != Decimal("0.5") and abs(rate - Decimal("0.5")) <= Decimal("0.000001")
    assert abs(Decimal("0.01") * rate * 100 % 1 - Decimal("0.5")) >= Decimal("1e-7")
    assert _balanced(entry.payload, {"Amazon CAD Payouts - ATC"})
    # a rate of exactly 1 on a foreign row would make ERPNext look a Currency Exchange up instead
    at_par = _entry(_cad(CAD_ROWS), "USD", Conversion(Decimal("1"), RateSource.FALLBACK), "CAD", CAD_BANK)
    assert at_par.payload["accounts"][0]["exchange_rate"] != 1.0


def test_negative_cad_settlement_credits_the_usd_clearing_account() -> None:
    rows = [("Order|ItemPrice|Principal", 1000), ("other-transaction|other-transaction|Subscription Fee", -3999)]
    entry = _entry(_cad(rows), "USD", Conversion(Decimal("0.7123"), RateSource.CURRENCY_EXCHANGE), "CAD", CAD_BANK)
    assert entry.payload["multi_currency"] == 0  # the clearing account is a USD account
    # −29.99 × 0.7123 = −21.362 → 21.36; 10.00 → 7.123 → 7.12; 39.99 → 28.485 → 28.48: 28.48 = 21.36 + 7.12
    assert _table(entry) == [
        ("Amazon Settlement Clearing", "", "21.36", "total-amount"),
        ("Amazon Sales", "", "7.12", "principal (1 row)"),
        ("Amazon Subscription Fees", "28.48", "", "subscription (1 row)"),
    ]


# --------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("conversion", "bank", "match"),
    [
        (None, None, r"^settlement S1 is in CAD, Amz Test Co books in USD: no exchange rate CAD→USD \(Amazon's "
                     r"converted payout, an ERPNext Currency Exchange record or a configured rate\); not posted$"),
        (Conversion(Decimal("0.7"), RateSource.FALLBACK), "EUR", "the bank account is in EUR: a bank account in "
                                                                 "CAD or USD is required"),
        (Conversion(Decimal("0.7"), RateSource.AMAZON, Decimal("27.75")), "CAD",
         "Amazon paid it out converted to 27.75 USD, but the bank account is in CAD"),
        (Conversion(Decimal("0.7"), RateSource.AMAZON, Decimal("27.80")), None,
         "Amazon's converted payout 27.80 USD is not 39.64 CAD at the rate 0.700000000"),
    ],
)
def test_refusals_name_what_is_missing(conversion: Conversion | None, bank: str | None, match: str) -> None:
    with pytest.raises(SettlementCurrencyError, match=match) as info:
        _entry(_cad(CAD_ROWS), "USD", conversion, bank)
    assert "\n" not in str(info.value)


def test_same_currency_refuses_a_rate_and_a_foreign_bank_account() -> None:
    usd = _settlement([_row("Order|ItemPrice|Principal", 1000)])
    with pytest.raises(SettlementCurrencyError, match=r"yet an exchange rate 0\.9 was given"):
        _entry(usd, "USD", Conversion(Decimal("0.9"), RateSource.FALLBACK))
    with pytest.raises(SettlementCurrencyError, match="but the bank account is in CAD"):
        _entry(usd, "USD", None, "CAD")
    assert _entry(usd, "USD", Conversion(Decimal("1"), RateSource.FALLBACK)).summary.converted is None


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((Decimal("0"), RateSource.FALLBACK), "a positive Decimal"),
        ((Decimal("-1"), RateSource.FALLBACK), "a positive Decimal"),
        ((Decimal("NaN"), RateSource.FALLBACK), "a positive Decimal"),
        ((0.7, RateSource.FALLBACK), "a positive Decimal"),
        ((Decimal("1e-12"), RateSource.FALLBACK), "below ERPNext's 9 decimals"),
        ((Decimal("0.7"), RateSource.CURRENCY_EXCHANGE, Decimal("1")), "only with RateSource.AMAZON"),
    ],
)
def test_conversion_validates_its_input(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Conversion(*args)


def test_conversion_from_amazon_needs_two_totals_of_one_sign() -> None:
    assert Conversion.from_amazon(Decimal("-106.26"), Decimal("-77.10")).rate == Decimal("0.725578769")
    for original, converted in ((Decimal(0), Decimal(1)), (Decimal(1), Decimal(0)), (Decimal(1), Decimal(-1))):
        with pytest.raises(ValueError, match="gives no exchange rate"):
            Conversion.from_amazon(original, converted)


# --------------------------------------------------------------------------------------------- property

_SHAPES = st.sampled_from(["usd_bank", "cad_bank", "amazon"])
_RATES = st.one_of(
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("250"), places=6),
    st.sampled_from([Decimal("0.5"), Decimal("1"), Decimal("2"), Decimal("0.125"), Decimal("1.5")]),
)
_ROWS = st.lists(st.tuples(st.sampled_from(_KEYS), st.integers(-10**7, 10**7), st.sampled_from(["", "1", "2"])),
                 min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(_ROWS, _RATES, _SHAPES)
def test_any_settlement_and_rate_balance_in_the_company_currency(
    spec: list[tuple[str, int, str]], rate: Decimal, shape: str
) -> None:
    s = _settlement([_row(k, a, o, line=i) for i, (k, a, o) in enumerate(spec, start=3)], currency="CAD")
    converted: Decimal | None = None
    if shape == "amazon":
        converted = (s.total * rate).quantize(Decimal("0.01"))
        assume(s.total != 0 and converted != 0)
        conversion = Conversion.from_amazon(s.total, converted)
    else:
        conversion = Conversion(rate, RateSource.CURRENCY_EXCHANGE)
    bank = "CAD" if shape == "cad_bank" else None
    try:
        entry = _entry(s, "USD", conversion, bank, CAD_BANK if bank else SETTINGS)
    except NothingToPostError:  # every line, the total included, is less than half a cent at the rate
        assert all(abs(c.amount_minor) * rate < Decimal("0.5") for c in _summary_of(s))
        return
    except SettlementCurrencyError as exc:  # a CAD payout worth less than half a cent
        assert bank and "a bank row ERPNext cannot post" in str(exc) and s.total_minor * rate < Decimal("0.5")
        return
    foreign = {"Amazon CAD Payouts - ATC"} if bank else set()
    assert _balanced(entry.payload, foreign)  # after ERPNext's recomputation, whichever rounding the site uses
    assert sum(line.debit_minor for line in entry.lines) == sum(line.credit_minor for line in entry.lines)
    assert all((line.debit_minor > 0) != (line.credit_minor > 0) for line in entry.lines)
    bank_lines = [line for line in entry.lines if line.category is None]
    if converted is not None:
        assert sum(b.debit_minor - b.credit_minor for b in bank_lines) == int(converted * 100)
    if bank and s.total_minor > 0:
        assert entry.payload["multi_currency"] == 1
        assert bank_lines[0].amount_in_account_currency_minor == s.total_minor
        assert Decimal(str(entry.payload["accounts"][0]["exchange_rate"])) - rate.quantize(Decimal("1e-9")) < Decimal("1e-6")
    diff = [line for line in entry.lines if line.category is Category.CURRENCY_DIFFERENCE]
    # ≤ half a cent per converted amount: each line, counting those that rounded to nothing and the bank line
    n = sum(1 for c in entry.summary.categories if c.amount_minor) + (1 if s.total_minor else 0)
    assert len(diff) <= 1 and all(2 * (d.debit_minor + d.credit_minor) <= n for d in diff)
    assert entry.summary.total == s.total and entry.summary.converted is not None


def _summary_of(s: Settlement) -> tuple[CategoryTotal, ...]:
    return summarise(s, SETTINGS.category_table()).categories


# --------------------------------------------------------------------------------------------- ERPNext simulator


@pytest.fixture
def erp() -> Iterator[ErpNextSimulator]:
    sim = ErpNextSimulator().start()
    yield sim
    sim.stop()


def test_cad_entry_posts_into_the_erpnext_simulator_and_balances(erp: ErpNextSimulator) -> None:
    """USD company, CAD bank account, a Currency Exchange CAD→USD: the multi-currency entry is accepted,
    submitted and leaves the CAD bank account holding the CAD payout at the rate."""
    entry = _entry(_cad(CAD_ROWS), "USD", Conversion(Decimal("0.7123"), RateSource.CURRENCY_EXCHANGE), "CAD",
                   CAD_BANK)
    erp.insert_doc("Currency Exchange", {"date": "2026-10-01", "from_currency": "CAD", "to_currency": "USD",
                                         "exchange_rate": 0.7, "for_selling": 1})  # a different rate on purpose
    erp.insert_doc("Account", {"account_name": "Amazon CAD Payouts", "parent_account": "Bank Accounts - ATC",
                               "company": COMPANY, "account_type": "Bank", "account_currency": "CAD"}, validate=True)
    for row in entry.payload["accounts"][1:]:
        erp.insert_doc("Account", {"account_name": row["account"].removesuffix(" - ATC"),
                                   "parent_account": "Current Assets - ATC", "company": COMPANY}, validate=True)
    r = requests.post(f"{erp.url}/api/resource/Journal Entry", json=dict(entry.payload, docstatus=1),
                      headers={"Authorization": erp.auth_header}, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["accounts"][0]["exchange_rate"] == 0.7123  # the given rate is kept, not the Currency Exchange
    assert (data["total_debit"], data["total_credit"], data["difference"]) == (37.98, 37.98, 0.0)
    gl = [e for e in erp.docs("GL Entry") if e["voucher_no"] == data["name"]]
    bank = next(e for e in gl if e["account"] == "Amazon CAD Payouts - ATC")
    assert (bank["debit"], bank["debit_in_account_currency"], bank["account_currency"]) == (28.24, 39.64, "CAD")
    assert sum(erpnext_journal.account_balances(erp).values()) == 0
