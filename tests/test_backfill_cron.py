"""backfill (reverse-chronological, resumable), cron lines and --install (issue: backfill, cron, demo)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from amz2erp.clock import SystemClock
from amz2erp.engine.windows import plan_chunks
from amz2erp.state import StateStore
from tests.conftest import SimEnvFactory, fake_crontab
from tests.simenv import SimEnv
from tests.test_e2e_orders import assert_landed_exactly_once


def test_chunks_run_newest_first_and_cover_the_range() -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = datetime(2026, 3, 31, 12, tzinfo=timezone.utc)
    chunks = plan_chunks(start, end, timedelta(days=7))
    assert chunks[0].end == end and chunks[-1].start == start
    assert all(a.start == b.end for a, b in itertools.pairwise(chunks))
    assert all(c.end - c.start <= timedelta(days=7) for c in chunks)
    assert len(chunks) == 13


def test_backfill_dry_run_and_unreachable_horizon(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=40, seed=4, days=20)
    env.setup_erp()
    two_years_ago = (env.clock.now() - timedelta(days=800)).date().isoformat()
    result = env.run("--json", "backfill", "--from", two_years_ago, "--chunk", "30d", "--dry-run",
                     "--no-products")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["unreachable"] and "two-year horizon" in data["unreachable"][0]
    assert env.erp.count("Sales Order") == 0
    with StateStore(env.state_path) as state:
        assert state.cursors() == []


def test_backfill_in_process_overlapping_sync_orders_creates_nothing_twice(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=30, orders=150, seed=12, days=40)
    env.setup_erp()
    since = (env.clock.now() - timedelta(days=10)).date().isoformat()
    assert env.run("sync-orders", "--after", since).code == 0
    with StateStore(env.state_path) as state:
        cursors_before = state.cursors()
    frm = (env.clock.now() - timedelta(days=40)).date().isoformat()
    result = env.run("--json", "backfill", "--from", frm, "--chunk", "7d")
    assert result.code == 0, result.err
    assert json.loads(result.out)["summary"]["chunks"] == 2 * 6  # two marketplaces, 40 days / 7d
    assert_landed_exactly_once(env)
    with StateStore(env.state_path) as state:
        assert state.cursors() == cursors_before
    # the same command again: every chunk is checkpointed, nothing is fetched or written
    calls = len(env.spapi.request_log)
    writes = len([r for r in env.erp.request_log if r.method != "GET"])
    again = env.run("--json", "backfill", "--from", frm, "--chunk", "7d", "--no-products")
    assert again.code == 0, again.err
    assert "already done" in again.err
    assert len(env.spapi.request_log) == calls
    assert len([r for r in env.erp.request_log if r.method != "GET"]) == writes


def test_backfill_killed_during_chunk_5_resumes_exactly_once(sim_env: SimEnvFactory) -> None:
    clock = SystemClock()
    env = sim_env(listings=30, orders=260, seed=13, days=90, clock=clock,  # type: ignore[arg-type]
                  spapi_kwargs={"rate_limits": False, "report_processing_seconds": 0.0},
                  erp_kwargs={"latency": 0.01}, workers=2)
    env.setup_erp()
    assert env.run("sync-orders", "--after", (clock.now() - timedelta(days=1)).date().isoformat()).code == 0
    with StateStore(env.state_path) as state:
        cursors_before = state.cursors()
    frm = (clock.now() - timedelta(days=90)).date().isoformat()
    args = ("-v", "backfill", "--from", frm, "--chunk", "7d", "--no-products", "--marketplace", "US")
    proc = env.popen(*args)
    assert proc.stderr is not None
    deadline = time.time() + 120
    seen = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "chunk 5/" in line or not line:
            break
    assert "chunk 5/" in seen, seen[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with StateStore(env.state_path) as state:
        done_before = sum(len(state.checkpoints(job)) for job in _jobs(state))
    assert 1 <= done_before <= 5
    result = env.run("--json", "backfill", "--from", frm, "--chunk", "7d", "--no-products",
                     "--marketplace", "US")
    assert result.code == 0, result.err
    assert f"{done_before} of 13 chunks were already done" in result.err
    assert env.run("backfill", "--from", frm, "--chunk", "7d", "--no-products", "--marketplace", "CA").code == 0
    assert_landed_exactly_once(env)
    with StateStore(env.state_path) as state:
        assert state.cursors() == cursors_before


def _jobs(state: StateStore) -> list[str]:
    rows = state._conn.execute("SELECT DISTINCT job FROM checkpoints").fetchall()
    return [r[0] for r in rows]



def test_cron_install_twice_leaves_one_set_of_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = fake_crontab(tmp_path, monkeypatch)
    store.write_text("MAILTO=me@example.com\n0 1 * * * /usr/bin/backup\n")
    with SimEnv(tmp_path, listings=5, orders=0) as env:
        first = env.run("cron", "--every", "15m", "--install")
        assert first.code == 0, first.err
        after_first = store.read_text()
        second = env.run("cron", "--every", "15m", "--install")
        assert second.code == 0
        assert "already has these lines" in second.err
        assert store.read_text() == after_first
    lines = after_first.splitlines()
    assert lines[:2] == ["MAILTO=me@example.com", "0 1 * * * /usr/bin/backup"]
    orders = [line for line in lines if "sync-orders" in line]
    assert len(orders) == 1 and orders[0].startswith("*/15 * * * * ")
    assert f"--config {env.config_path.resolve()}" in orders[0]
    assert ">> " in orders[0] and "2>&1" in orders[0]
    assert len([line for line in lines if "sync-products" in line]) == 1
    exe = orders[0].split()[5]
    assert os.path.isabs(exe)


def test_cron_rejects_unschedulable_period(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=0)
    result = env.run("cron", "--every", "7m")
    assert result.code == 2
    assert "divisor of an hour" in result.err
