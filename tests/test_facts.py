"""Amazon's facts live in one place (limits.py and the marketplace table) and the settings that depend on them
are honoured: backfill's chunk, the two-year horizon with its JP/AU/SG exemption, sync-orders' --after."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from amz2erp.amazon import limits
from amz2erp.amazon import marketplaces as mp
from amz2erp.amazon.reports import parse_orders
from amz2erp.config import SyncSettings
from amz2erp.engine.windows import chunk_size, reachable_start
from amz2erp.errors import UsageError
from amz2erp_sim import datagen
from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)

# --- the marketplace table ------------------------------------------------------------------------------


def test_every_marketplace_has_a_real_zone_and_a_distinct_sales_channel() -> None:
    table = mp.all_marketplaces()
    for m in table:
        assert ZoneInfo(m.time_zone).key == m.time_zone
        assert mp.BY_SALES_CHANNEL[m.sales_channel.lower()] is m
    assert len({m.sales_channel for m in table}) == len(table)
    assert {m.code for m in table if m.full_history} == {"JP", "AU", "SG"}


def test_the_simulator_names_marketplaces_from_the_product_table() -> None:
    for info in datagen.MARKETPLACES.values():
        product = mp.BY_ID[info.marketplace_id]
        assert info.name == product.sales_channel
        assert info.time_zone.key == product.time_zone


def test_report_sales_channel_finds_the_marketplace_in_any_case() -> None:
    header = ["amazon-order-id", "purchase-date", "last-updated-date", "order-status", "fulfillment-channel",
              "sales-channel", "sku", "quantity", "currency", "item-price"]
    row = ["249-1234567-1234567", "2026-10-01T10:00:00+00:00", "2026-10-01T11:00:00+00:00", "Shipped",
           "Amazon", "Amazon.co.jp", "SKU-1", "1", "JPY", "1200"]
    for channel in ("Amazon.co.jp", "amazon.co.jp"):
        rows = [dict(zip(header, [*row[:5], channel, *row[6:]], strict=True))]
        (order,) = list(parse_orders(iter(rows), None))
        assert order.marketplace_id == "A1VC38T7YXB528"


def test_horizon_is_per_marketplace() -> None:
    old = NOW - timedelta(days=1000)
    assert reachable_start(old, NOW, mp.BY_CODE["JP"]) == old
    assert reachable_start(old, NOW, mp.BY_CODE["AU"]) == old
    us = reachable_start(old, NOW, mp.BY_CODE["US"])
    assert NOW - limits.ORDERS_HORIZON < us <= NOW - limits.ORDERS_HORIZON + timedelta(seconds=1)
    recent = NOW - timedelta(days=10)
    assert reachable_start(recent, NOW, mp.BY_CODE["US"]) == recent
    assert limits.orders_horizon(NOW, [mp.BY_CODE["US"], mp.BY_CODE["SG"]]) is None


# --- backfill's chunk ----------------------------------------------------------------------------------


def test_chunk_defaults_to_chunk_days_and_flag_overrides() -> None:
    sync = SyncSettings(chunk_days=10)
    assert chunk_size(sync, None, None) == timedelta(days=10)
    assert chunk_size(sync, timedelta(days=3), None) == timedelta(days=3)
    assert chunk_size(SyncSettings(), None, None) == timedelta(days=7)


@pytest.mark.parametrize("mode", ["report", "auto", None])
def test_chunk_over_the_report_window_is_refused_when_read_by_report(mode: str | None) -> None:
    with pytest.raises(UsageError, match=r"--chunk 45d is longer than one orders report covers \(30 days\)"):
        chunk_size(SyncSettings(), timedelta(days=45), mode)


def test_chunk_over_the_report_window_is_fine_through_the_api() -> None:
    assert chunk_size(SyncSettings(), timedelta(days=45), "api") == timedelta(days=45)
    assert chunk_size(SyncSettings(mode="api"), timedelta(days=45), None) == timedelta(days=45)
    assert chunk_size(SyncSettings(), timedelta(days=30), "report") == timedelta(days=30)


def _variant(env: SimEnv, *replacements: tuple[str, str]) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    env.config_path.write_text(text, encoding="utf-8")


def test_backfill_chunk_45d_exits_2_before_anything_runs(tmp_path: Path) -> None:
    with SimEnv(tmp_path, listings=10, orders=20, seed=5, days=20, mode="auto") as env:
        frm = (env.clock.now() - timedelta(days=90)).date().isoformat()
        result = env.run("backfill", "--from", frm, "--chunk", "45d")
        assert result.code == 2
        assert result.err.strip().splitlines() == [
            "Error: --chunk 45d is longer than one orders report covers (30 days): use --chunk 30d or less, "
            "or --mode api"]
        assert env.spapi.request_log == [] and env.erp.request_log == []  # not even sync-products ran


def test_backfill_uses_chunk_days_from_the_config(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=10, orders=20, seed=5, days=20)
    env.setup_erp()
    _variant(env, ('mode = "api"', 'mode = "api"\nchunk_days = 10'))
    frm = (env.clock.now() - timedelta(days=39)).date().isoformat()
    result = env.run("--json", "backfill", "--from", frm, "--dry-run", "--no-products", "--marketplace", "US")
    assert result.code == 0, result.err
    assert json.loads(result.out)["chunks"] == 4  # 39 days and a half to now, in 10-day chunks


# --- the two-year horizon ------------------------------------------------------------------------------


def _old_orders(env: SimEnv, code: str) -> set[str]:
    horizon = env.clock.now() - limits.ORDERS_HORIZON
    return {o.amazon_order_id for o in env.orders  # the orders that become Sales Orders (not pending/cancelled)
            if o.marketplace_id == mp.BY_CODE[code].marketplace_id and o.purchase_date < horizon
            and o.status not in datagen.PENDING_STATUSES and o.status != "Canceled"}


@pytest.mark.parametrize("code", ["JP", "US"])
def test_backfill_horizon_honours_the_jp_exemption(sim_env: SimEnvFactory, code: str) -> None:
    env = sim_env(listings=10, orders=60, seed=8, days=900, marketplaces=(code,))
    env.setup_erp()
    _variant(env, ('"CAD:USD" = 0.72', '"CAD:USD" = 0.72\n"JPY:USD" = 0.0067'))
    old = _old_orders(env, code)
    assert old, "the generated data must hold orders beyond the horizon"
    frm = (env.clock.now() - timedelta(days=900)).date().isoformat()
    result = env.run("--json", "backfill", "--from", frm, "--chunk", "30d")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    planned = set(env.sales_orders_by_amazon_id())
    if code == "JP":
        assert data["unreachable"] == [] and "Unreachable" not in result.err
        assert old <= planned  # history beyond two years is read, not called unreachable
        assert data["chunks"] == 31  # 900 days and a half in 30-day chunks
    else:
        assert len(data["unreachable"]) == 1 and data["unreachable"][0].startswith(f"{code} {frm} → ")
        assert "two-year horizon" in data["unreachable"][0]
        assert not old & planned
        assert data["chunks"] == 25  # only the reachable 730 days


def test_sync_orders_after_beyond_the_horizon_is_told_and_makes_no_empty_reports(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=10, orders=40, seed=9, days=60, mode="report", marketplaces=("US",))
    env.setup_erp()
    frm = (env.clock.now() - timedelta(days=1000)).date()
    horizon = env.clock.now() - limits.ORDERS_HORIZON  # the run's clock moves on while reports process
    result = env.run("--json", "sync-orders", "--after", frm.isoformat(), "--dry-run")
    assert result.code == 0, result.err
    assert f"US: --after {frm} is older than Amazon's two-year horizon" in result.err
    assert json.loads(result.out)["summary"]["unreachable ranges"] == 1
    starts = [r.data_start for r in env.spapi.report_jobs() if r.data_start is not None]
    assert starts and min(starts) >= horizon  # no report for a window Amazon cannot have data for
    assert len(starts) == 25  # 730 days in 30-day reports, not 34


def test_sync_orders_after_in_the_future_exits_2(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=10, orders=20, seed=9, days=20)
    tomorrow = (env.clock.now() + timedelta(days=1)).date().isoformat()
    result = env.run("sync-orders", "--after", tomorrow)
    assert result.code == 2
    assert result.err.startswith(f"Error: --after {tomorrow} is in the future: Amazon has orders up to ")
    assert "up to date" not in result.err
    assert env.spapi.request_log == []
    assert [r for r in env.erp.request_log if r.method != "GET"] == []
