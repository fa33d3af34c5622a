"""Crash test (issue 8): sync-products, sync-orders and backfill run as real processes and are SIGKILLed at
random points — mid-write in ERPNext, mid-fetch from Amazon, at start-up — at least ``--kills`` times (50 by
default; ``pytest --kills 500`` for the long version). Between kills Amazon keeps changing (new orders,
shipments, cancellations, price changes) so there is always something being written when the kill lands.
Then each command is re-run to completion and ERPNext must hold every Amazon order and listing exactly
once with Amazon's content, and the state ledger must agree with ERPNext."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from amz2erp.clock import SystemClock
from amz2erp.sim import datagen
from tests.reliability import (
    FIGURES,
    TIMINGS,
    ITEM_INTENT,
    RequestWatch,
    assert_products_landed_exactly_once,
    duplicates,
    ledger_disagreements,
    lost_orders,
    unresolved_item_intents,
)
from tests.simenv import SimEnv
from tests.test_e2e_orders import assert_landed_exactly_once

SEED = 8008
DAYS = 20
WRITES = ("POST", "PUT", "DELETE")


def _amazon_moves_on(env: SimEnv, rng: random.Random, batch: int) -> None:
    """New orders, shipments, cancellations and price changes, stamped 3 minutes in the past so that
    sync-orders (which reads up to now − 2 min) sees them at once."""
    when = env.clock.now() - timedelta(minutes=3)
    new = datagen.generate_orders(SEED + batch, 8, env.listings, when - timedelta(days=DAYS - 2),
                                  when - timedelta(minutes=1))
    known = {o.amazon_order_id for o in env.spapi.orders}
    env.spapi.add_orders([o for o in new if o.amazon_order_id not in known])
    sim = env.spapi
    with sim._lock:
        unshipped = sorted(oid for oid, o in sim._orders.items() if o.status == "Unshipped")
        for oid in rng.sample(unshipped, min(2, len(unshipped))):
            datagen.ship_order(sim._orders[oid], when)
        unshipped = sorted(oid for oid, o in sim._orders.items() if o.status == "Unshipped")
        for oid in rng.sample(unshipped, min(2, len(unshipped))):
            datagen.cancel_order(sim._orders[oid], when)
        active = sorted(k for k, lst in sim._listings.items() if lst.status == "Active")
        for key in rng.sample(active, min(2, len(active))):
            listing = sim._listings[key]
            datagen.set_listing_price(listing, listing.price + Decimal("1.25"), when)


def _commands(env: SimEnv) -> list[tuple[str, ...]]:
    frm = (env.clock.now() - timedelta(days=DAYS + 1)).date().isoformat()
    return [
        ("sync-products",),
        ("sync-orders",),
        ("sync-orders", "--after", frm),
        ("backfill", "--from", frm, "--chunk", "7d"),
        ("backfill", "--from", frm, "--chunk", "5d", "--no-products"),
    ]


def _finish(env: SimEnv, args: tuple[str, ...]) -> tuple[int, str]:
    proc = env.popen(*args)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path,
                                                               pytestconfig: pytest.Config) -> None:
    wanted_kills = int(pytestconfig.getoption("--kills"))
    rng = random.Random(SEED)
    clock = SystemClock()
    started = time.monotonic()
    with SimEnv(tmp_path, listings=30, orders=90, seed=SEED, days=DAYS, clock=clock,  # type: ignore[arg-type]
                spapi_kwargs={"rate_limits": False, "report_processing_seconds": 0.0},
                erp_kwargs={"latency": 0.004}, workers=3) as env:
        env.setup_erp()
        watch = RequestWatch(env)
        commands = _commands(env)
        kills = completed = batch = 0
        kill_points: list[str] = []
        while kills < wanted_kills:
            args = rng.choice(commands)
            before = watch.count
            proc = env.popen(*args)
            if rng.random() < 0.7:
                # mid-ERPNext: right after the k-th further request was answered
                k = rng.randint(1, 60)
                watch.wait_for(before + k, timeout=60, stop=lambda: proc.poll() is not None)
                point = f"{args[0]} after {k} ERPNext requests"
            else:
                # anywhere: start-up, Amazon fetch, ledger writes
                delay = rng.uniform(0.05, 1.2)
                try:
                    proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    pass
                point = f"{args[0]} after {delay:.2f}s"
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.communicate(timeout=30)
                assert proc.returncode == -signal.SIGKILL
                kills += 1
                kill_points.append(point)
                if kills % 10 == 0:
                    batch += 1
                    _amazon_moves_on(env, rng, batch)
            else:
                _, err = proc.communicate(timeout=30)
                if proc.returncode != 0:
                    pytest.fail(f"{args} exited {proc.returncode} after {kills} kills:\n{err}")
                assert "Traceback" not in err
                completed += 1

        # re-run to completion, every command, as real processes
        for args in commands:
            code, err = _finish(env, args)
            assert code == 0, (args, code, err[-3000:])
        # a last incremental run has nothing left to write
        writes_before = len([r for r in env.erp.request_log if r.method in WRITES])
        code, err = _finish(env, ("sync-orders",))
        assert code == 0, err
        assert len([r for r in env.erp.request_log if r.method in WRITES]) == writes_before

        assert duplicates(env) == []
        assert lost_orders(env) == []
        assert_landed_exactly_once(env)
        assert_products_landed_exactly_once(env)
        problems = ledger_disagreements(env)
        stale = unresolved_item_intents(env, problems)  # bug B1: see test_item_intent_is_resolved_after_a_crash
        assert [p for p in problems if not ((m := ITEM_INTENT.match(p)) and m.group(1) in stale)] == []

        FIGURES["kills survived"] += kills
        FIGURES["crash runs completed between kills"] += completed
        FIGURES["crash orders checked"] += len(env.spapi.orders)
        FIGURES["crash ERPNext requests"] += len(env.erp.request_log)
        FIGURES["crash: stale item intents (bug B1)"] += len(stale)
        FIGURES["duplicates found"] += len(duplicates(env))
        FIGURES["orders lost"] += len(lost_orders(env))
    assert kills >= wanted_kills
    assert len(kill_points) == kills
    TIMINGS["test_crash"] = time.monotonic() - started


@pytest.mark.xfail(strict=True, reason="BUG B1: an Item intent left 'writing' by a crash between the insert and "
                                       "mark_done is never resolved: the next sync finds the Item in ERPNext "
                                       "and never updates the ledger (products._write_item, "
                                       "orders.resolve_items)")
def test_item_intent_is_resolved_after_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amz2erp.state import StateStore

    with SimEnv(tmp_path, listings=6, orders=0, seed=5, marketplaces=("US",)) as env:
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
