"""sync-settlements end to end with settlements in another currency than the company's: a USD company selling
in the US and in Canada. Every closed US and CAD settlement of a two-month history posts once, each entry is
balanced in USD, and the bank line is the deposit — Amazon's converted payout when Amazon converted it, else
the CAD deposit at ERPNext's Currency Exchange or the configured rate; with a CAD bank account the bank row
holds the CAD deposit itself. Without any rate the settlement is not posted, with one line that says so."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from amz2erp_sim.spapi.settlements import SimSettlement
from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv
from tests.test_e2e_settlements import SETTLEMENTS, assert_balanced, entries

CAD_BANK = "Amazon CAD Payouts - ATC"
USD_BANK = "Amazon Payouts - ATC"
CONFIGURED = Decimal("0.72")  # the [orders.exchange_rates] "CAD:USD" of the test config
ERPNEXT_RATE = Decimal("0.7345")
AMAZON_RATE = Decimal("0.7311")


def _env(sim_env: SimEnvFactory, *, marketplaces: tuple[str, ...] = ("US", "CA"), extra: str = SETTLEMENTS,
         **kw: Any) -> SimEnv:
    return sim_env(orders=160, days=60, marketplaces=marketplaces, extra_config=extra, seed=14, **kw)


def _closed(env: SimEnv) -> list[SimSettlement]:
    now = env.clock.now()
    return [s for s in env.spapi.settlements if s.report_available(now)]


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _bank_row(je: dict[str, Any], bank: str) -> dict[str, Any] | None:
    return next((r for r in je["accounts"] if r["account"] == bank), None)


@pytest.mark.parametrize("source", ["amazon", "currency_exchange", "fallback"])
def test_us_and_cad_settlements_all_post_balanced_in_usd(sim_env: SimEnvFactory, source: str) -> None:
    spapi = {"payout_conversions": {"CAD": ("USD", AMAZON_RATE)}} if source == "amazon" else {}
    env = _env(sim_env, spapi_kwargs=spapi)
    env.setup_erp()
    if source == "currency_exchange":
        env.erp.insert_doc("Currency Exchange", {"date": "2026-01-01", "from_currency": "CAD", "to_currency": "USD",
                                                 "exchange_rate": float(ERPNEXT_RATE), "for_selling": 1})
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("--json", "sync-settlements")
    assert result.code == 0, result.err
    report = {r["settlement_id"]: r for r in json.loads(result.out)["settlements"]}
    want = _closed(env)
    assert {s.currency for s in want} == {"USD", "CAD"}
    posted = entries(env)
    assert sorted(posted) == sorted(s.settlement_id for s in want)
    rate = {"amazon": AMAZON_RATE, "currency_exchange": ERPNEXT_RATE, "fallback": CONFIGURED}[source]
    for s in want:
        [je] = posted[s.settlement_id]
        assert_balanced(je)  # in the company currency, as ERPNext computes debit and credit
        assert je["posting_date"] == s.deposit_date.date().isoformat()
        row = _bank_row(je, USD_BANK)
        if s.currency == "USD":
            assert report[s.settlement_id]["conversion"] is None
            expected = s.total()  # the deposit
        else:
            conversion = report[s.settlement_id]["conversion"]
            assert conversion["source"] == source and conversion["company_currency"] == "USD"
            # Amazon's converted payout is what the bank received; otherwise the deposit at the rate
            expected = _cents(s.total() * rate)
            assert Decimal(conversion["company_total"]) == expected
        if s.total() > 0:
            assert row is not None and Decimal(str(row["debit_in_account_currency"])) == expected
            assert Decimal(report[s.settlement_id]["bank_line"]) == expected
        else:
            assert row is None  # a charge credits the clearing account
    assert env.run("sync-settlements").code == 0
    assert entries(env) == posted  # a re-run posts nothing


def test_a_cad_bank_account_holds_the_cad_deposit(sim_env: SimEnvFactory) -> None:
    extra = '\n[settlements]\nbank_account = "Amazon CAD Payouts"\n'
    env = _env(sim_env, marketplaces=("CA",), extra=extra)
    env.setup_erp()
    env.erp.insert_doc("Account", {"account_name": "Amazon CAD Payouts", "parent_account": "Bank Accounts - ATC",
                                   "company": "Amz Test Co", "account_type": "Bank", "account_currency": "CAD"},
                       validate=True)
    assert env.run("setup").code == 0
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("--json", "sync-settlements")
    assert result.code == 0, result.err
    want = _closed(env)
    posted = entries(env)
    assert sorted(posted) == sorted(s.settlement_id for s in want) and want
    for s in want:
        [je] = posted[s.settlement_id]
        assert_balanced(je)
        row = _bank_row(je, CAD_BANK)
        if s.total() > 0:
            assert row is not None and row["account_currency"] == "CAD"
            assert Decimal(str(row["debit_in_account_currency"])) == s.total()  # the CAD deposit itself
            assert je["multi_currency"] == 1
        else:
            assert row is None


def test_a_cad_settlement_without_any_rate_is_one_line_and_not_posted(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env)
    env.setup_erp()
    env.config_path.write_text(env.config_path.read_text().replace('"CAD:USD" = 0.72', ""))
    result = env.run("sync-settlements")
    assert result.code == 1
    cad = [s for s in _closed(env) if s.currency == "CAD"]
    usd = [s for s in _closed(env) if s.currency == "USD"]
    assert cad and usd
    posted = entries(env)
    assert sorted(posted) == sorted(s.settlement_id for s in usd)  # the others still post
    for s in cad:
        lines = [x for x in result.err.splitlines() if s.settlement_id in x and "no exchange rate CAD→USD" in x]
        assert len(lines) == 1, result.err
