"""Recovery after failures (issue 18): failed orders come back in bulk, one cause is told once with a count,
an order that fails writes no masters, retry refuses unknown ids and can forget, backfill resumes a range
that ends today."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from amz2erp.engine import backfill as backfill_mod
from amz2erp.engine.orders import failure_shape, group_failures
from amz2erp.engine.retry import FailedOrder, plan_refetch
from amz2erp.state import StateStore, Status
from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv

CA = "A2EUQ1WTGCTBG2"
US = "ATVPDKIKX0DER"
T0 = datetime(2026, 10, 3, 12, 0, tzinfo=timezone.utc)
SO_READS = ("searchOrders", "getOrder2026", "getOrder", "getOrders", "getOrderItems")


def _rate_error(order_id: str, day: str) -> str:
    return (f"order {order_id}: no exchange rate CAD→USD on or before {day}: add a Currency Exchange record in "
            "ERPNext or [orders.exchange_rates] \"CAD:USD\"")


# --- pure rules ---------------------------------------------------------------------------------------------


def test_one_cause_is_one_line_with_a_count_and_its_days() -> None:
    failures = [(f"702-{i:07d}-1234567", _rate_error(f"702-{i:07d}-1234567", f"2026-10-{3 + i % 5:02d}"))
                for i in range(782)]
    failures.append(("111-0000001-0000001", "order 111-0000001-0000001: SKU 'A-1' has no Item in ERPNext"))
    causes = group_failures(failures)
    assert [c.count for c in causes] == [782, 1]
    assert causes[0].line() == (
        "782 orders failed: no exchange rate CAD→USD on or before 2026-10-03 … 2026-10-07: add a Currency "
        "Exchange record in ERPNext or [orders.exchange_rates] \"CAD:USD\" (e.g. 702-0000000-1234567)")
    assert causes[1].line().startswith("1 order failed: SKU 'A-1' has no Item in ERPNext")
    # different SKUs are different causes; the same SKU in two orders is one
    assert failure_shape("order 1: SKU 'A' x") != failure_shape("order 2: SKU 'B' x")
    assert failure_shape("order 111-0000001-0000001: SKU 'A' x") == failure_shape("order 222-0000002-0000002: "
                                                                                  "SKU 'A' x")


def test_plan_refetch_window_ranges_and_singles() -> None:
    def f(oid: str, mp: str | None, minutes: float | None) -> FailedOrder:
        return FailedOrder(oid, mp, None if minutes is None else T0 + timedelta(minutes=minutes))

    failed = [
        f("in-window", US, 60),
        f("ca-1", CA, 0), f("ca-2", CA, 30), f("ca-3", CA, 5 * 60),  # one range (gaps ≤ 6 h)
        f("ca-lonely", CA, 30 * 24 * 60),  # alone: one getOrder is cheaper than a search
        f("undated", CA, None), f("no-marketplace", None, 10),
        f("us-old-1", US, -3000), f("us-old-2", US, -2990),  # before the US window: a range of their own
    ]
    plan = plan_refetch(failed, {US: (T0, T0 + timedelta(days=1))})
    assert plan.covered == {"in-window"}
    assert [(r.marketplace, r.start, r.end, sorted(r.ids)) for r in plan.ranges] == [
        (CA, T0, T0 + timedelta(hours=5, seconds=1), ["ca-1", "ca-2", "ca-3"]),
        (US, T0 - timedelta(minutes=3000), T0 - timedelta(minutes=2990) + timedelta(seconds=1),
         ["us-old-1", "us-old-2"]),
    ]
    assert sorted(plan.singles) == ["ca-lonely", "no-marketplace", "undated"]
    assert plan.outside == 8
    # Orders v0: by ids, 50 a call, each batch from its earliest last update on (the window still covers)
    many = [f(f"us-{i:03d}", US, -10 * i) for i in range(1, 61)]
    v0 = plan_refetch(failed + many, {US: (T0, T0 + timedelta(days=1))}, by_ids=True)
    assert v0.covered == {"in-window"}
    assert sorted(v0.singles) == ["no-marketplace", "undated"]
    assert [(r.marketplace, r.start, len(r.ids), r.by_ids) for r in v0.ranges] == [
        (CA, T0, 4, True),
        (US, T0 - timedelta(minutes=3000), 50, True),
        (US, T0 - timedelta(minutes=120), 12, True),  # us-012 … us-001
    ]


def test_failed_record_keeps_its_amazon_date_and_forget_removes_only_failed(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as state:
        state.mark_failed("order", "A", "boom", marketplace=US, last_update=T0)
        state.mark_done("order", "B", "SAL-1", "h")
        state.mark_failed("order", "A", "boom again")  # a later failure without a date keeps the date
        assert state.get("order", "A").info["last_update"] == T0.isoformat()  # type: ignore[union-attr]
        removed = state.forget_failed("order", ["A", "B", "C"])
        assert [e.key for e in removed] == ["A"]
        assert state.get("order", "A") is None
        assert state.get("order", "B") is not None  # done records are never forgotten
        assert state.forget_failed("order", []) == []


# --- end to end ---------------------------------------------------------------------------------------------


def _without_cad_rate(env: SimEnv) -> None:
    text = env.config_path.read_text(encoding="utf-8").replace('"CAD:USD" = 0.72\n', "")
    env.config_path.write_text(text, encoding="utf-8")


def _reads(env: SimEnv, before: Counter[str]) -> dict[str, int]:
    now = env.spapi.operation_counts()
    return {op: now[op] - before[op] for op in SO_READS if now[op] - before[op]}


def _customer_links(env: SimEnv) -> set[str]:
    return {str(so["customer"]) for so in env.sales_orders()}


def test_mass_failure_writes_no_masters_is_told_once_and_comes_back_with_the_window(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=240, seed=41, days=20)
    env.setup_erp()
    assert env.run("sync-products").code == 0
    _without_cad_rate(env)
    ca_ids = {o.amazon_order_id for o in env.spapi.orders if o.marketplace_id == CA}
    first = env.run("--json", "sync-orders")
    assert first.code == 1
    failed = json.loads(env.run("--json", "status", "--limit", "1000").out)
    failed_ids = {f["key"] for f in failed["failed"]}
    assert len(failed_ids) > 20 and failed_ids <= ca_ids
    # one cause, one line with the count, in the run summary and in status
    causes = json.loads(first.out)["failure_causes"]
    assert len(causes) == 1 and causes[0].startswith(f"{len(failed_ids)} orders failed: no exchange rate CAD→USD")
    assert first.err.count("no exchange rate CAD→USD") == 2  # the first order's warning + the summary line
    [cause] = failed["failure_causes"]
    assert cause["orders"] == len(failed_ids) and cause["example"] in failed_ids
    assert cause["cause"].startswith("no exchange rate CAD→USD on or before 20")
    # nothing was written for the orders that failed: every Customer and Address belongs to a Sales Order
    assert {c["name"] for c in env.erp.docs("Customer")} == _customer_links(env)
    addresses = {so.get("shipping_address_name") for so in env.sales_orders()}
    assert {a["name"] for a in env.erp.docs("Address")} <= addresses
    assert not any(so["amazon_order_id"] in failed_ids for so in env.sales_orders())

    # the rate is fixed; the window pinned at the earliest failure brings every failed order back
    env.write_config()
    env.clock.advance(120)
    before = env.spapi.operation_counts()
    again = env.run("--json", "sync-orders")
    assert again.code == 0, again.err
    reads = _reads(env, before)
    assert "getOrder2026" not in reads, reads  # not one call per failed order
    assert reads["searchOrders"] <= 2 + len(env.spapi.orders) // 100
    assert json.loads(env.run("--json", "status").out)["failed"] == []
    landed = {so["amazon_order_id"] for so in env.sales_orders()}
    assert failed_ids <= landed


@pytest.mark.parametrize("orders_api", ["2026-01-01", "v0"])
def test_retry_brings_failures_outside_the_window_back_in_bulk_with_progress(sim_env: SimEnvFactory, orders_api: str) -> None:
    env = sim_env(listings=30, orders=240, seed=42, days=20, orders_api=orders_api)
    env.setup_erp()
    assert env.run("sync-products").code == 0
    _without_cad_rate(env)
    start = (env.clock.now() - timedelta(days=21)).date().isoformat()
    assert env.run("backfill", "--no-products", "--from", start, "--chunk", "7d").code == 1
    failed_ids = {f["key"] for f in json.loads(env.run("--json", "status", "--limit", "1000").out)["failed"]}
    assert len(failed_ids) > 20
    env.write_config()
    before = env.spapi.operation_counts()
    retried = env.run("-v", "retry")
    assert retried.code == 0, retried.err
    reads = _reads(env, before)
    # a few searches by time range (2026-01-01) or by ids (v0), and getOrder only for an order alone in its
    # range: not one call per order (v0 still needs getOrderItems per order, as every v0 read does)
    headers = sum(n for op, n in reads.items() if op != "getOrderItems")
    assert 0 < headers < len(failed_ids) // 3, reads
    if orders_api == "v0":
        assert "getOrder" not in reads, reads  # getOrders by ids (2 here: one per marketplace)
    # the progress of the same Reporter as sync-orders (a plain log line without a terminal)
    assert f"retrying {len(failed_ids)} failed orders" in retried.err
    assert json.loads(env.run("--json", "status").out)["failed"] == []
    assert failed_ids <= {so["amazon_order_id"] for so in env.sales_orders()}


def test_retry_refuses_unknown_ids_writes_nothing_and_forget_removes_a_record(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=30, seed=43, days=10)
    env.setup_erp()
    unknown = env.run("retry", "111-1234567-1234567")
    assert unknown.code == 2
    assert unknown.err.strip().splitlines()[-1] == (
        "Error: order 111-1234567-1234567: Amazon does not know this order id (nothing was written)")
    assert "Traceback" not in unknown.err
    malformed = env.run("retry", "not-an-id")
    assert malformed.code == 2 and "is not an Amazon order id" in malformed.err
    with StateStore(env.state_path) as state:
        assert state.entries("order") == []
    # one known and one unknown id: refused as a whole, nothing imported
    known = env.spapi.orders[0].amazon_order_id
    assert env.run("retry", known, "111-1234567-1234567").code == 2
    assert env.sales_orders() == []

    with StateStore(env.state_path) as state:
        state.mark_failed("order", "111-7654321-7654321", "Amazon no longer returns this order")
    assert env.run("retry", "--forget").code == 2  # names required: never "forget everything"
    not_failed = env.run("retry", "--forget", "111-0000000-0000000")
    assert not_failed.code == 2 and "not a failed order in the ledger: 111-0000000-0000000" in not_failed.err
    forgot = env.run("retry", "--forget", "111-7654321-7654321")
    assert forgot.code == 0, forgot.err
    assert "forgot failed order 111-7654321-7654321 (1 attempt): Amazon no longer returns this order" in forgot.out
    with StateStore(env.state_path) as state:
        assert state.entries("order", Status.FAILED) == []


@pytest.mark.parametrize("to_today", [True, False], ids=["to-today", "open"])
def test_interrupted_backfill_ending_today_resumes(sim_env: SimEnvFactory, monkeypatch: pytest.MonkeyPatch,
                                                  to_today: bool) -> None:
    env = sim_env(listings=20, orders=120, seed=44, days=40)
    env.setup_erp()
    today = env.clock.now().date()
    args = ["backfill", "--no-products", "--marketplace", "US", "--from", str(today - timedelta(days=41)),
            "--chunk", "7d"] + (["--to", str(today)] if to_today else [])
    real = backfill_mod.process_orders
    calls = {"n": 0}

    def interrupted(*a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(backfill_mod, "process_orders", interrupted)
    assert env.run(*args).code == 130
    monkeypatch.setattr(backfill_mod, "process_orders", real)
    env.clock.advance(900)  # "now" has moved on: the range's end with it
    resumed = env.run("--json", *args)
    assert resumed.code == 0, resumed.err
    # The three chunks finished before the interrupt are not read again. Ending today, the newest of them
    # was cut at the first run's "now": it is read on from there (the open range keeps its first end).
    done_before = 2 if to_today else 3
    total = int(resumed.err.split(" of ")[1].split()[0])
    assert f"{done_before} of {total} chunks were already done" in resumed.err, resumed.err
    assert json.loads(resumed.out)["summary"]["chunks"] == total - done_before
    again = env.run(*args)
    assert f"{total} of {total} chunks were already done" in again.err
