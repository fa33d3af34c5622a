"""Crash test (issue 8): sync-products, sync-orders and backfill run as real processes and are SIGKILLed at
random points — mid-write in ERPNext, mid-fetch from Amazon, at start-up — at least ``--kills`` times (50 by
default; ``pytest --kills 500`` for the long version). Between kills Amazon keeps changing (new orders,
shipments, cancellations, price changes) so there is always something being written when the kill lands.
Then each command is re-run to completion and ERPNext must hold every Amazon order and listing exactly
once with Amazon's content, and the state ledger must agree with ERPNext."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from amz2erp.clock import SystemClock
from amz2erp_sim import datagen
from tests.conftest import SimEnvFactory
from tests.reliability import (
    FIGURES,
    TIMINGS,
    RequestWatch,
    assert_products_landed_exactly_once,
    duplicates,
    ledger_disagreements,
    lost_orders,
)
from tests.simenv import SimEnv
from tests.test_e2e_orders import assert_landed_exactly_once

SEED = 8008
DAYS = 20
WRITES = ("POST", "PUT", "DELETE")
#: After every KILLS_PER_COMPLETED_RUN-th kill the next round runs its command to completion instead of
#: killing it, so both kinds of round happen however fast or loaded the machine is: kills that land mid-run,
#: and complete runs between kills (each starts from a killed run's ledger and must leave a clean one).
KILLS_PER_COMPLETED_RUN = 5


def _amazon_moves_on(env: SimEnv, rng: random.Random, batch: int) -> None:
    """New orders, shipments, cancellations and price changes, stamped 3 minutes in the past so that
    sync-orders (which reads up to now − 2 min) sees them at once."""
    when = env.clock.now() - timedelta(minutes=3)
    new = datagen.generate_orders(SEED + batch, 8, env.listings, when - timedelta(days=DAYS - 2),
                                  when - timedelta(minutes=1))
    known = {o.amazon_order_id for o in env.spapi.orders}
    env.spapi.add_orders([o for o in new if o.amazon_order_id not in known])
    sim = env.spapi
    unshipped = sim.order_ids("Unshipped")
    for oid in rng.sample(unshipped, min(2, len(unshipped))):
        sim.ship_order(oid, when)
    unshipped = sim.order_ids("Unshipped")
    for oid in rng.sample(unshipped, min(2, len(unshipped))):
        sim.cancel_order(oid, when)
    listings = {(lst.sku, lst.marketplace_id): lst for lst in sim.listings}
    active = sorted(k for k, lst in listings.items() if lst.status == "Active")
    for key in rng.sample(active, min(2, len(active))):
        sim.set_listing_price(*key, listings[key].price + Decimal("1.25"), when)


def _commands(env: SimEnv) -> list[tuple[str, ...]]:
    """The commands and how often each is drawn."""
    frm = (env.clock.now() - timedelta(days=DAYS + 1)).date().isoformat()
    api_backfill = ("backfill", "--from", frm, "--chunk", "7d", "--no-products", "--mode", "api")
    return [
        ("sync-products",),
        ("backfill", "--from", frm, "--chunk", "30d", "--no-products", "--mode", "report", "--marketplace", "US"),
        *[("sync-orders",)] * 5,
        *[("sync-orders", "--after", frm)] * 4,
        *[api_backfill] * 5,
    ]


def _finish(env: SimEnv, args: tuple[str, ...]) -> tuple[int, str]:
    proc = env.popen(*args)
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path,
                                                               pytestconfig: pytest.Config) -> None:
    wanted_kills = int(pytestconfig.getoption("--kills"))
    rng = random.Random(SEED)
    clock = SystemClock()
    started = time.monotonic()
    with SimEnv(tmp_path, listings=30, orders=90, seed=SEED, days=DAYS, clock=clock,  # type: ignore[arg-type]
                spapi_kwargs={"rate_limits": False, "report_processing_seconds": 0.0}, report_poll_initial=0.05,
                erp_kwargs={"latency": 0.004}, workers=3) as env:
        env.setup_erp()
        watch = RequestWatch(env)
        commands = _commands(env)
        kills = completed = scheduled_completions = mid_erpnext_kills = batch = 0
        complete_next = False
        kill_points: list[str] = []
        while kills < wanted_kills or complete_next or scheduled_completions == 0:
            args = rng.choice(commands)
            t0 = time.monotonic()
            before = watch.count
            proc = env.popen(*args)
            if complete_next:
                _, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, (args, kills, err[-3000:])
                assert "Traceback" not in err
                complete_next = False
                scheduled_completions += 1
                completed += 1
                continue
            mid_erpnext = False
            if rng.random() < 0.7:
                # mid-ERPNext: right after the k-th further request was answered
                k = rng.randint(1, 60)
                mid_erpnext = watch.wait_for(before + k, timeout=60,
                                             stop=lambda p=proc: p.poll() is not None)  # type: ignore[misc]
                point = f"{args[0]} after {k} ERPNext requests"
            else:
                # anywhere: start-up, Amazon fetch, ledger writes
                delay = rng.uniform(0.05, 1.2)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=delay)
                point = f"{args[0]} after {delay:.2f}s"
            if os.environ.get("CRASH_DEBUG"):
                print(f"{time.monotonic() - t0:.1f}s {point} alive={proc.poll() is None}", file=sys.stderr)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.communicate(timeout=30)
                assert proc.returncode == -signal.SIGKILL
                kills += 1
                mid_erpnext_kills += mid_erpnext
                kill_points.append(point)
                complete_next = kills % KILLS_PER_COMPLETED_RUN == 0
                if kills % 10 == 0:
                    batch += 1
                    _amazon_moves_on(env, rng, batch)
            else:
                _, err = proc.communicate(timeout=30)
                if proc.returncode != 0:
                    pytest.fail(f"{args} exited {proc.returncode} after {kills} kills:\n{err}")
                assert "Traceback" not in err
                completed += 1  # it finished before its kill point

        # re-run to completion, every command, as real processes
        for args in dict.fromkeys(commands):
            code, err = _finish(env, args)
            assert code == 0, (args, code, err[-3000:])
        # one full API pass (report and API reads of an InvoiceUnconfirmed order disagree on its status: bug B5),
        # then a last incremental run has nothing left to write
        code, err = _finish(env, ("sync-orders", "--after", commands[-1][2]))
        assert code == 0, err
        log_before = len(env.erp.request_log)
        before = {so["name"]: env.erp.get_doc("Sales Order", so["name"]) for so in env.sales_orders()}
        code, err = _finish(env, ("-v", "sync-orders"))
        assert code == 0, err
        writes = [(r.method, r.path) for r in env.erp.request_log[log_before:] if r.method in WRITES]
        if writes:
            changed = {}
            for _, path in writes:
                name = path.rsplit("/", 1)[-1]
                old, new = before.get(name) or {}, env.erp.get_doc("Sales Order", name) or {}
                changed[name] = {k: (old.get(k), new.get(k)) for k in set(old) | set(new)
                                 if old.get(k) != new.get(k) and k not in ("modified",)}
            pytest.fail(f"the run after completion still wrote {writes}: {changed}\n{err[-1500:]}")

        assert duplicates(env) == []
        assert lost_orders(env) == []
        assert_landed_exactly_once(env)
        assert_products_landed_exactly_once(env)
        assert ledger_disagreements(env) == []

        FIGURES["kills survived"] += kills
        FIGURES["crash runs completed between kills"] += completed
        FIGURES["crash kills after k ERPNext requests"] += mid_erpnext_kills
        FIGURES["crash orders checked"] += len(env.spapi.orders)
        FIGURES["crash ERPNext requests"] += len(env.erp.request_log)
        FIGURES["duplicates found"] += len(duplicates(env))
        FIGURES["orders lost"] += len(lost_orders(env))
    # both kinds of round happened: kills mid-run (some right after an ERPNext request), and complete runs
    assert kills >= wanted_kills and mid_erpnext_kills >= 1, (kills, mid_erpnext_kills)
    assert completed >= scheduled_completions == kills // KILLS_PER_COMPLETED_RUN >= 1
    assert len(kill_points) == kills
    TIMINGS["test_crash"] = time.monotonic() - started


def test_item_intent_is_resolved_after_a_crash(sim_env: SimEnvFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression for bug B1 (found by the crash test, fixed in 735bf87): an Item intent left ``writing`` by a
    crash between the insert and the ledger update is resolved by the next run."""
    from amz2erp.state import StateStore

    env = sim_env(listings=6, orders=0, seed=5, marketplaces=("US",))
    env.setup_erp()
    real_mark_done = StateStore.mark_done

    def crash_after_item_insert(self: StateStore, kind: str, key: str, *args: object, **kw: object) -> None:
        if kind == "item":
            raise KeyboardInterrupt  # the process dies here: the Item is in ERPNext, the ledger says writing
        real_mark_done(self, kind, key, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(StateStore, "mark_done", crash_after_item_insert)
    assert env.run("sync-products").code == 130
    monkeypatch.setattr(StateStore, "mark_done", real_mark_done)
    assert env.run("sync-products").code == 0
    assert_products_landed_exactly_once(env)
    with StateStore(env.state_path) as state:
        assert state.entries("item", "writing") == []


def test_report_then_api_reads_rewrite_nothing(sim_env: SimEnvFactory) -> None:
    """B5: InvoiceUnconfirmed (v0, report) and Shipped (2026-01-01) are the same state: no rewrite."""
    env = sim_env(listings=30, orders=90, seed=SEED, days=DAYS, marketplaces=("US",))
    env.setup_erp()
    assert env.run("sync-products").code == 0
    assert any(o.status == "InvoiceUnconfirmed" for o in env.spapi.orders)
    frm = (env.clock.now() - timedelta(days=DAYS + 1)).date().isoformat()
    assert env.run("backfill", "--from", frm, "--chunk", "30d", "--no-products", "--mode", "report").code == 0
    env.clock.advance(300)
    before = len(env.erp.request_log)
    assert env.run("sync-orders", "--after", frm, "--mode", "api").code == 0
    assert [(r.method, r.path) for r in env.erp.request_log[before:] if r.method in WRITES] == []
