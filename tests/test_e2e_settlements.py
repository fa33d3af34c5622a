"""sync-settlements end to end on both simulators (issue 14): every closed settlement becomes one submitted,
balanced Journal Entry whose bank line is the deposit, exactly once, whatever the source and whatever
happens in between (re-runs, reissues, bad files, crashes, ambiguous ERPNext answers)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from amz2erp.clock import SystemClock
from amz2erp.state import Kind
from amz2erp_sim.erpnext import FaultConfig
from amz2erp_sim.erpnext.journal import account_balances
from amz2erp_sim.spapi.settlements import SimSettlement
from tests.conftest import SimEnvFactory
from tests.reliability import RequestWatch
from tests.simenv import SimEnv

FIXTURES = Path(__file__).parent / "fixtures" / "settlements"
SETTLEMENTS = '\n[settlements]\nbank_account = "Amazon Payouts"\n'
BANK, CLEARING, SUSPENSE = "Amazon Payouts - ATC", "Amazon Settlement Clearing - ATC", "Amazon Unmapped - ATC"
WRITES = ("POST", "PUT", "DELETE")


def _env(sim_env: SimEnvFactory, **kw: Any) -> SimEnv:
    return sim_env(**{"orders": 120, "days": 60, "marketplaces": ("US",), "extra_config": SETTLEMENTS, "seed": 14,
                      **kw})


@pytest.fixture
def env(sim_env: SimEnvFactory) -> SimEnv:
    e = _env(sim_env)
    e.setup_erp()
    assert e.run("-q", "sync-orders").code == 0
    return e


def entries(env: SimEnv) -> dict[str, list[dict[str, Any]]]:
    """Submitted Journal Entries by settlement id, with their lines."""
    out: dict[str, list[dict[str, Any]]] = {}
    for je in env.erp.docs("Journal Entry"):
        if je.get("docstatus") == 1:
            out.setdefault(str(je.get("amazon_settlement_id")), []).append(env.erp.get_doc("Journal Entry", je["name"]))
    return out


def closed(env: SimEnv) -> list[SimSettlement]:
    now = env.clock.now()
    return [s for s in env.spapi.settlements if s.report_available(now)]


def bank_line(je: dict[str, Any]) -> Decimal:
    """The payout the entry books: bank debit, or minus the clearing credit of a negative settlement."""
    total = Decimal(0)
    for row in je["accounts"]:
        if row["account"] == BANK:
            total += Decimal(str(row.get("debit_in_account_currency") or 0))
        elif row["account"] == CLEARING and row.get("user_remark") is None:
            total -= Decimal(str(row.get("credit_in_account_currency") or 0))
    return total


def assert_balanced(je: dict[str, Any]) -> None:
    debit = sum(Decimal(str(r.get("debit") or 0)) for r in je["accounts"])
    credit = sum(Decimal(str(r.get("credit") or 0)) for r in je["accounts"])
    assert debit == credit > 0, je["name"]


def writes_since(env: SimEnv, start: int) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in env.erp.request_log[start:] if r.method in WRITES]


# --- the two-month history ------------------------------------------------------------------------------------


def test_two_months_post_every_closed_settlement_once_and_a_rerun_writes_nothing(env: SimEnv) -> None:
    result = env.run("--json", "sync-settlements")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    want = closed(env)
    assert len(want) >= 3  # two months of 14-day periods
    posted = entries(env)
    assert sorted(posted) == sorted(s.settlement_id for s in want)
    negative = 0
    for s in want:
        [je] = posted[s.settlement_id]
        assert je["voucher_type"] == "Bank Entry"
        assert je["cheque_no"] == s.settlement_id
        assert je["posting_date"] == je["cheque_date"] == s.deposit_date.date().isoformat()
        assert bank_line(je) == s.total()  # the deposit, to the cent
        assert_balanced(je)
        assert all(r["account"] != SUSPENSE for r in je["accounts"])  # nothing unmapped
        negative += s.total() < 0
    assert negative >= 1  # the simulated history has a negative settlement: it credits the clearing account
    balances = account_balances(env.erp)
    assert balances.get(SUSPENSE, Decimal(0)) == 0
    assert balances.get(CLEARING, Decimal(0)) == sum(s.total() for s in want if s.total() < 0)
    assert balances[BANK] == sum(s.total() for s in want if s.total() > 0)
    assert all(not r["unmapped"] for r in report["settlements"])
    # the open settlement is never posted
    now = env.clock.now()
    open_ids = [s.settlement_id for s in env.spapi.settlements if s.start <= now < s.end]
    assert open_ids and not set(open_ids) & set(posted)

    log_start = len(env.erp.request_log)
    again = env.run("--json", "sync-settlements")
    assert again.code == 0, again.err
    assert writes_since(env, log_start) == []
    # not even a lookup (the ledger knows them): only the company's abbreviation and currency are read
    assert {r.doctype for r in env.erp.request_log[log_start:]} == {"Company"}
    assert entries(env) == posted


def test_dry_run_prints_every_line_and_writes_nothing(env: SimEnv) -> None:
    log_start = len(env.erp.request_log)
    result = env.run("sync-settlements", "--dry-run")
    assert result.code == 0, result.err
    assert writes_since(env, log_start) == []
    assert entries(env) == {}
    for s in closed(env):
        assert f"would post Journal Entry for settlement {s.settlement_id}" in result.out
    assert BANK in result.out and "principal (" in result.out
    as_json = json.loads(env.run("--json", "sync-settlements", "--dry-run").out)
    lines = [line for r in as_json["settlements"] for line in r["lines"]]
    assert {r["outcome"] for r in as_json["settlements"]} == {"would post"} and lines
    assert env.run("sync-settlements").code == 0  # the dry run left no ledger entry or cursor behind
    assert len(entries(env)) == len(closed(env))


# --- files ----------------------------------------------------------------------------------------------------


def test_files_post_and_a_bad_file_is_one_line(env: SimEnv, tmp_path: Path) -> None:
    bad = tmp_path / "orders.txt"
    bad.write_text("amazon-order-id\tpurchase-date\n111\t2026-01-01\n", encoding="utf-8")
    truncated = tmp_path / "truncated.txt"
    truncated.write_bytes((FIXTURES / "us_example1_12345678901.txt").read_bytes()[:700])
    files = [FIXTURES / "us_example1_12345678901.txt", bad, truncated, FIXTURES / "us_example3_negative_12345678903.txt"]
    result = env.run("sync-settlements", *(a for f in files for a in ("--file", str(f))))
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    for f in (bad, truncated):
        assert sum(str(f) in line for line in result.err.splitlines()) == 1, result.err
    posted = entries(env)
    assert sorted(posted) == ["12345678901", "12345678903"]
    assert bank_line(posted["12345678901"][0]) == Decimal("139.36")
    negative = posted["12345678903"][0]
    assert bank_line(negative) == Decimal("-106.26")
    assert [r for r in negative["accounts"] if r["account"] == CLEARING and not r.get("user_remark")]
    for [je] in posted.values():
        assert_balanced(je)
    # the same files again: nothing new
    log_start = len(env.erp.request_log)
    again = env.run("sync-settlements", "--file", str(files[0]), "--file", str(files[3]))
    assert again.code == 0, again.err
    assert writes_since(env, log_start) == []


def test_a_file_in_another_currency_is_refused_and_others_post(env: SimEnv) -> None:
    result = env.run("sync-settlements", "--file", str(FIXTURES / "de_example2_23456789012.txt"),
                     "--file", str(FIXTURES / "us_example1_12345678901.txt"))
    assert result.code == 1
    assert "in EUR" in result.err and "Traceback" not in result.err
    assert sorted(entries(env)) == ["12345678901"]


# --- never wrong quietly --------------------------------------------------------------------------------------


def test_a_reissued_settlement_is_reported_not_reposted_until_the_old_entry_is_cancelled(env: SimEnv) -> None:
    assert env.run("sync-settlements").code == 0
    first = closed(env)[0]
    [old] = entries(env)[first.settlement_id]
    extra = replace(first.rows[0], amount=Decimal("-1.50"), transaction_type="other-transaction",
                    amount_type="other-transaction", amount_description="Subscription Fee", order_id="")
    env.spapi.reissue_settlement(first.settlement_id, rows=[*first.rows, extra])
    env.clock.advance(60)
    result = env.run("sync-settlements")
    assert result.code == 1
    assert f"settlement {first.settlement_id} came back with other content" in result.err
    assert [je["name"] for je in entries(env)[first.settlement_id]] == [old["name"]]
    assert env.run("sync-settlements").code == 1  # still reported, still not reposted
    cancelled = httpx.post(f"{env.erp.url}/api/method/frappe.client.cancel",  # what the user does in ERPNext
                           json={"doctype": "Journal Entry", "name": old["name"]},
                           headers={"Authorization": env.erp.auth_header})
    assert cancelled.status_code == 200, cancelled.text
    assert env.run("sync-settlements").code == 0
    [new] = entries(env)[first.settlement_id]
    assert new["name"] != old["name"] and bank_line(new) == first.total() - Decimal("1.50")


def test_an_unbalanced_settlement_is_not_posted(env: SimEnv) -> None:
    first = closed(env)[0]
    env.spapi.reissue_settlement(first.settlement_id, stated_total=first.total() + Decimal("0.07"))
    result = env.run("sync-settlements")
    assert result.code == 1
    assert "does not balance" in result.err and "difference" in result.err and "0.07" in result.err
    assert first.settlement_id not in entries(env)
    assert len(entries(env)) == len(closed(env)) - 1


def test_since_rebuilds_history_from_finances_and_never_posts_twice(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env)
    env.setup_erp()
    start = min(s.start for s in env.spapi.settlements).date().isoformat()
    result = env.run("--json", "sync-settlements", "--since", start)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    posted = entries(env)
    # the simulated transactions carry no SETTLEMENT_ID: the key is the financial event group id
    assert sorted(posted) == sorted(s.group_id for s in closed(env))
    for s in closed(env):
        assert bank_line(posted[s.group_id][0]) == s.total()
    assert "open" in {r["outcome"] for r in report["settlements"]}
    # the reports of the same settlements are not posted again, nor the groups
    log_start = len(env.erp.request_log)
    assert env.run("sync-settlements").code == 0
    assert env.run("sync-settlements", "--since", start).code == 0
    assert writes_since(env, log_start) == []
    assert all(len(v) == 1 for v in entries(env).values()) and len(entries(env)) == len(closed(env))


def test_status_shows_posted_and_the_open_settlement_when_asked(env: SimEnv) -> None:
    assert env.run("sync-settlements").code == 0
    offline = json.loads(env.run("--json", "status").out)
    assert {s["settlement_id"] for s in offline["settlements"]} == {s.settlement_id for s in closed(env)}
    assert "open_settlements" not in offline
    asked = env.run("--json", "status", "--settlements")
    pending = json.loads(asked.out)["open_settlements"]
    now = env.clock.now()
    [open_s] = [s for s in env.spapi.settlements if s.start <= now < s.end]
    assert [Decimal(str(p["running_total"])) for p in pending] == [open_s.total(now)]


# --- crashes and ambiguous answers ----------------------------------------------------------------------------


def test_an_ambiguous_failure_after_commit_is_resolved_by_lookup(env: SimEnv) -> None:
    original = env.erp.handle
    hit = {"n": 0}

    def handle(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Any:
        if method == "POST" and "Journal%20Entry" in raw_path.replace(" ", "%20") and not hit["n"]:
            hit["n"] += 1
            env.erp.set_faults(FaultConfig(rate=1.0, kinds=("reset",), timeout_seconds=0.05))
            try:
                return original(method, raw_path, headers, body)
            finally:
                env.erp.set_faults(None)
        return original(method, raw_path, headers, body)

    env.erp.handle = handle  # type: ignore[method-assign]
    result = env.run("sync-settlements")
    assert hit["n"] == 1
    assert result.code == 0, result.err
    posted = entries(env)
    assert sorted(posted) == sorted(s.settlement_id for s in closed(env))
    assert all(len(v) == 1 for v in posted.values())


def test_sigkill_at_random_points_leaves_one_entry_per_settlement(sim_env: SimEnvFactory) -> None:
    rng = random.Random(1414)
    env = _env(sim_env, clock=SystemClock(), orders=80,  # type: ignore[arg-type]
               spapi_kwargs={"rate_limits": False}, erp_kwargs={"latency": 0.01})
    env.setup_erp()
    code = env.popen("-q", "sync-orders").wait(timeout=120)
    assert code == 0
    watch = RequestWatch(env)
    kills = mid_erpnext = 0
    for _ in range(12):
        before = watch.count
        proc = env.popen("sync-settlements")
        reached = False
        if rng.random() < 0.7:
            reached = watch.wait_for(before + rng.randint(1, 12), timeout=60,
                                     stop=lambda p=proc: p.poll() is not None)  # type: ignore[misc]
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=rng.uniform(0.05, 1.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
            mid_erpnext += reached
        proc.communicate(timeout=30)
    final = env.popen("sync-settlements")
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert kills >= 3 and mid_erpnext >= 1, (kills, mid_erpnext)
    posted = entries(env)
    want = closed(env)
    assert sorted(posted) == sorted(s.settlement_id for s in want)
    assert all(len(v) == 1 for v in posted.values()), {k: len(v) for k, v in posted.items()}
    from amz2erp.state import StateStore

    with StateStore(env.state_path) as state:  # the ledger agrees with ERPNext
        ledger = {e.key: (e.status, e.erp_name) for e in state.entries(Kind.SETTLEMENT)}
    assert ledger == {k: ("done", v[0]["name"]) for k, v in posted.items()}


# --- unmapped rows --------------------------------------------------------------------------------------------


def _with_unknown_row(env: SimEnv) -> tuple[SimSettlement, Decimal]:
    first = closed(env)[0]
    odd = replace(first.rows[0], amount=Decimal("-2.25"), transaction_type="other-transaction",
                  amount_type="other-transaction", amount_description="Mystery Fee", order_id="")
    env.spapi.reissue_settlement(first.settlement_id, rows=[*first.rows, odd])
    return first, odd.amount


def test_unmapped_rows_go_to_the_suspense_account_and_are_listed(env: SimEnv) -> None:
    first, amount = _with_unknown_row(env)
    result = env.run("--json", "sync-settlements")
    assert result.code == 0, result.err
    report = {r["settlement_id"]: r for r in json.loads(result.out)["settlements"]}
    assert [u["key"] for u in report[first.settlement_id]["unmapped"]] == [
        "other-transaction|other-transaction|Mystery Fee"]
    [je] = entries(env)[first.settlement_id]
    assert bank_line(je) == first.total() + amount
    assert account_balances(env.erp)[SUSPENSE] == -amount  # money Amazon kept: debited, visible, never dropped
    text = env.run("sync-settlements", "--dry-run", "--file", str(FIXTURES / "us_example1_12345678901.txt"))
    assert text.code == 0


def test_unmapped_error_refuses_to_post(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, extra_config=SETTLEMENTS + 'unmapped = "error"\n')
    env.setup_erp()
    first, _ = _with_unknown_row(env)
    result = env.run("sync-settlements")
    assert result.code == 1
    assert f"settlement {first.settlement_id}: 1 row(s) match no category" in result.err
    assert first.settlement_id not in entries(env)
    assert len(entries(env)) == len(closed(env)) - 1
