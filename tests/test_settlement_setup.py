"""setup/check for settlements: the custom field and the accounts under groups of their root type, the bank
account checked and never invented, nothing at all before [settlements] bank_account is set; and the pure
rules of the sync-settlements engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from amz2erp.amazon.settlement_report import parse_settlement_report
from amz2erp.engine.settlements import SettlementPoster, _group_period, content_hash
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
    from dataclasses import replace

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
