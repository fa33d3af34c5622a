"""setup/check for settlements: the custom field and the accounts under groups of their root type, the bank
account checked and never invented, nothing at all before [settlements] bank_account is set; and the pure
rules of the sync-settlements engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from amz2erp.amazon.settlement_report import Settlement, parse_settlement_report
from amz2erp.engine.settlements import RateFinder, SettlementPoster, _group_period, content_hash
from amz2erp.settlement_mapping import Conversion, RateSource
from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv

FIXTURES = Path(__file__).parent / "fixtures" / "settlements"


def _account(env: SimEnv, name: str) -> dict[str, object] | None:
    return env.erp.get_doc("Account", name)


def test_setup_creates_the_field_and_accounts_under_their_root_type_once(sim_env: SimEnvFactory) -> None:
    extra = '\n[settlements]\nbank_account = "Amazon Payouts"\n'
    env = sim_env(orders=0, marketplaces=("US",), extra_config=extra)
    assert env.run("setup").code == 0
    assert env.erp.get_doc("Custom Field", "Journal Entry-amazon_settlement_id") is not None
    parents = {name: (_account(env, name) or {}).get("parent_account") for name in (
        "Amazon Sales - ATC", "Amazon Selling Fees - ATC", "Amazon Reserve - ATC",
        "Amazon Settlement Clearing - ATC", "Amazon Unmapped - ATC", "Amazon Sales Tax Collected - ATC")}
    assert parents == {
        "Amazon Sales - ATC": "Direct Income - ATC",  # income under an Income group
        "Amazon Selling Fees - ATC": "Indirect Expenses - ATC",  # fees under an Expense group
        "Amazon Reserve - ATC": "Current Assets - ATC",  # reserve, clearing, suspense under an Asset group
        "Amazon Settlement Clearing - ATC": "Current Assets - ATC",
        "Amazon Unmapped - ATC": "Current Assets - ATC",
        "Amazon Sales Tax Collected - ATC": "Duties and Taxes - ATC",  # taxes under [defaults] account_group
    }
    check = env.run("check")
    assert check.code == 0, check.out
    assert "✓ settlement bank account" in check.out and "✓ settlement accounts" in check.out
    again = env.run("setup")
    assert again.code == 0 and "Nothing to do" in again.out


def test_a_missing_bank_account_is_reported_and_never_invented(sim_env: SimEnvFactory) -> None:
    extra = '\n[settlements]\nbank_account = "Amazon Bank Nope"\n'
    env = sim_env(orders=0, marketplaces=("US",), extra_config=extra)
    assert env.run("setup").code == 0
    assert _account(env, "Amazon Bank Nope - ATC") is None
    check = env.run("check")
    assert check.code == 2
    line = next(x for x in check.out.splitlines() if "settlement bank account" in x)
    assert "'Amazon Bank Nope - ATC' does not exist" in line
    assert "Amazon Payouts - ATC" in check.out  # the fix names the Bank ledgers there are


def test_nothing_is_planned_or_failed_before_a_bank_account_is_set(sim_env: SimEnvFactory) -> None:
    env = sim_env(orders=0, marketplaces=("US",))
    plan = env.run("setup", "--dry-run")
    assert "amazon_settlement_id" not in plan.out and "Amazon Settlement Clearing" not in plan.out
    env.setup_erp()
    check = env.run("check")
    assert check.code == 0
    assert "bank_account is not set" in check.out


def test_content_hash_is_the_file_sha_or_the_rows() -> None:
    s = parse_settlement_report(FIXTURES / "us_example1_12345678901.txt")
    assert content_hash(s) == s.file_sha256 and len(content_hash(s)) == 64
    rebuilt = replace(s, file_sha256=None)
    assert content_hash(rebuilt) == content_hash(replace(rebuilt, rows=tuple(reversed(rebuilt.rows))))
    assert content_hash(rebuilt) != content_hash(replace(rebuilt, rows=rebuilt.rows[1:]))


def test_a_reissue_is_another_total_or_other_bytes_from_the_same_source() -> None:
    s = parse_settlement_report(FIXTURES / "us_example1_12345678901.txt")
    sha = content_hash(s)
    info = {"total_minor": s.total_minor, "currency": s.currency, "source": s.source.value}
    assert not SettlementPoster._differs(info, sha, s, sha)
    assert SettlementPoster._differs(dict(info, total_minor=s.total_minor + 1), sha, s, sha)
    assert SettlementPoster._differs(info, "0" * 64, s, sha)  # same source, other bytes
    # the same settlement from the transactions earlier: other bytes by nature, same total: not a reissue
    assert not SettlementPoster._differs(dict(info, source="transactions"), "0" * 64, s, sha)


def test_group_period_matches_a_posted_settlement() -> None:
    start = datetime(2026, 10, 1, 8, tzinfo=timezone.utc)
    group = {"FinancialEventGroupStart": start.isoformat(), "FinancialEventGroupEnd":
             (start + timedelta(days=14)).isoformat(), "OriginalTotal": {"CurrencyCode": "USD", "CurrencyAmount": 139.36}}
    assert _group_period(group) == ("2026-10-01", "2026-10-15", 13936, "USD")
    assert _group_period({"FinancialEventGroupStart": start.isoformat()}) is None


# --- the exchange rate of a settlement in another currency (RateFinder) ---------------------------------------


class _Amazon:
    def __init__(self, groups: list[dict[str, Any]]) -> None:
        self.groups = groups
        self.calls = 0

    def list_financial_event_groups(self, started_after: datetime) -> list[dict[str, Any]]:
        self.calls += 1
        return self.groups


class _Erp:
    def __init__(self, rates: list[dict[str, Any]]) -> None:
        self.rates = rates
        self.filters: list[Any] = []

    def list(self, doctype: str, **kw: Any) -> list[dict[str, Any]]:
        assert doctype == "Currency Exchange"
        self.filters.append(kw["filters"])
        return self.rates


def _finder(groups: list[dict[str, Any]], rates: list[dict[str, Any]] | None = None,
            configured: dict[str, Decimal] | None = None) -> tuple[RateFinder, _Amazon, _Erp]:
    amazon, erp = _Amazon(groups), _Erp(rates or [])
    rt = SimpleNamespace(amazon=amazon, settings=SimpleNamespace(orders=SimpleNamespace(
        exchange_rates=configured or {})))
    return RateFinder(rt, erp, "USD"), amazon, erp  # type: ignore[arg-type]


def _cad() -> Settlement:
    return replace(parse_settlement_report(FIXTURES / "us_example1_12345678901.txt"), currency="CAD")


def _group(s: Settlement, *, converted: tuple[str, float] | None, shift: float = 0.0) -> dict[str, Any]:
    g: dict[str, Any] = {
        "FinancialEventGroupId": "G1",
        "FinancialEventGroupStart": (s.start + timedelta(seconds=shift)).isoformat(),
        "FinancialEventGroupEnd": s.end.isoformat(),
        "OriginalTotal": {"CurrencyCode": "CAD", "CurrencyAmount": float(s.total)},
    }
    if converted is not None:
        g["ConvertedTotal"] = {"CurrencyCode": converted[0], "CurrencyAmount": converted[1]}
    return g


def test_amazons_converted_payout_in_the_company_currency_comes_first() -> None:
    s = _cad()
    paid = round(float(s.total) * 0.73, 2)
    finder, amazon, erp = _finder([_group(s, converted=("USD", paid), shift=0.9)], [{"exchange_rate": 0.7}])
    conversion = finder.conversion(s)
    assert conversion is not None and conversion.source is RateSource.AMAZON
    assert conversion.converted_total == Decimal(str(paid))
    assert finder.conversion(s) == conversion and amazon.calls == 1  # one listing per run
    assert erp.filters == []  # ERPNext is not asked when Amazon converted the payout


def test_a_payout_amazon_did_not_convert_or_another_period_falls_back_to_erpnext_then_config() -> None:
    s = _cad()
    for group in (_group(s, converted=("CAD", float(s.total))),  # paid out in CAD: no company money
                  _group(s, converted=("USD", 1.0), shift=2.0)):  # two seconds off: another group
        finder, _, erp = _finder([group], [{"exchange_rate": 0.7345}])
        assert finder.conversion(s) == Conversion(Decimal("0.7345"), RateSource.CURRENCY_EXCHANGE)
        assert ["date", "<=", s.deposit_date.isoformat()] in erp.filters[0]  # the rate of the deposit date
    finder, _, _ = _finder([], configured={"CAD:USD": Decimal("0.72")})
    assert finder.conversion(s) == Conversion(Decimal("0.72"), RateSource.FALLBACK)
    finder, _, _ = _finder([])
    assert finder.conversion(s) is None  # the mapping then refuses it with one line
