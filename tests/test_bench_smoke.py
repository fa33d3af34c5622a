"""The benchmark's code paths on tiny sizes: the figures have the right shape and are sane (not fast)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.amazon_cost import run_client_mode, run_frappe_pattern
from bench.erp_throughput import (
    EXISTING_BUYER,
    INSERT_MANY,
    NEW_BUYER,
    NEW_INSERT_MANY,
    POST_ONE,
    run_erp_bench,
)
from bench.rss import run_rss
from bench.run import render


@pytest.fixture(scope="module")
def costs() -> dict[str, object]:
    return {
        "api": run_client_mode(300, "api", days=60),
        "report": run_client_mode(300, "report", days=60),
        "frappe": run_frappe_pattern(300, days=60),
    }


def test_amazon_costs_have_the_expected_shape(costs: dict[str, object]) -> None:
    api, report, frappe = costs["api"], costs["report"], costs["frappe"]
    for c in (api, report, frappe):
        assert c.orders == 300 and c.orders_seen == 300  # type: ignore[attr-defined]
        assert c.calls == sum(c.by_operation.values()) > 0  # type: ignore[attr-defined]
        assert c.amazon_seconds >= 0 and c.throttled == 0  # type: ignore[attr-defined]
    assert set(api.by_operation) == {"searchOrders"}  # type: ignore[attr-defined]
    assert {"createReport", "getReport", "getReportDocument"} <= set(report.by_operation)  # type: ignore[attr-defined]
    assert frappe.by_operation["getOrderItems"] == 300  # type: ignore[attr-defined]
    assert frappe.by_operation["listFinancialEventsByOrderId"] == 300  # type: ignore[attr-defined]
    # the connector asks for 50 on the first page; with a NextToken Amazon keeps the first page size
    assert frappe.by_operation["getOrders"] == 6  # type: ignore[attr-defined]
    # the per-order pattern costs far more calls and Amazon time than either mode
    assert frappe.calls > 10 * max(api.calls, report.calls)  # type: ignore[attr-defined]
    assert frappe.amazon_seconds > report.amazon_seconds  # type: ignore[attr-defined]


def test_writes_rss_and_the_table(costs: dict[str, object]) -> None:
    bench = run_erp_bench([2], orders=6, ready=4, speed=0.02, warmup=20, run_warmup=4)
    paths = [(p.path, p.client_workers) for p in bench.paths]
    assert paths == [(NEW_BUYER, 2), (EXISTING_BUYER, 2), (POST_ONE, 1), (POST_ONE, 4), (INSERT_MANY, 1),
                     (INSERT_MANY, 2), (NEW_INSERT_MANY, 1), (NEW_INSERT_MANY, 2)]
    for p in bench.paths:
        assert p.failed == 0 and p.seconds > 0 and p.requests == sum(p.kinds.values())
        assert set(p.server_by_kind) == set(p.kinds)
        assert sum(p.server_by_kind.values()) == pytest.approx(p.server_seconds) and p.server_seconds > 0
    new, existing = bench.paths[0], bench.paths[1]
    assert new.orders == existing.orders == 6
    # a new buyer brings its Customer (and Address): more requests per order than a known one
    assert new.requests_per_order > existing.requests_per_order > 0
    one, many = bench.paths[2], bench.paths[4]
    assert one.orders == many.orders >= 2  # ready documents: orders whose Items exist
    assert one.kinds == {"insert Sales Order": one.orders}
    assert many.kinds == {"insert_many Sales Order": 1}  # all in one call
    assert bench.best in bench.paths[4:6] and bench.share(bench.best) == pytest.approx(1.0)  # type: ignore[arg-type]
    # new buyers' own best path: their three ready documents, one insert_many call per doctype and group
    new_many = bench.paths[6]
    assert new_many.orders >= 2
    assert new_many.kinds == {"insert_many Customer": 1, "insert_many Address": 1, "insert_many Sales Order": 1}
    assert bench.own_best(new) in bench.paths[6:] and bench.own_best(existing) is bench.best
    assert bench.own_share(existing) == bench.share(existing) > 0
    own = bench.own_best(new)
    assert own is not None and bench.own_share(new) == pytest.approx(new.orders_per_s / own.orders_per_s)
    r = run_rss(200, days=40)
    assert r.exit_code in (0, 1) and r.sales_orders > 0
    assert 20 < r.baseline_rss_mb <= r.peak_rss_mb < 1000
    opts = argparse.Namespace(quick=True, days=60, report_seconds=180.0, chunk_days=7)
    info = {"cpus": "2", "cpu": "x", "memory": "1G", "python": "3", "os": "linux", "date": "today", "load": "1.0"}
    text = render(list(costs.values()), bench, [r], opts, info, 1.0)  # type: ignore[arg-type]
    assert "| mode | orders | read | SP-API calls |" in text and "peak RSS" in text
    assert "| engine path | workers | orders/s | requests / order | requests per order by kind |" in text
    assert f"| ready Sales Orders, insert_many ×50 | 1 | {many.orders} |" in text
    assert f"| {NEW_INSERT_MANY} | 1 | {new_many.orders} |" in text
    assert "| share of own best path | share of single best path |" in text
    assert f"- {NEW_BUYER}, 2 workers: {new.server_ms_per_order:.0f} ms of server time per order (" in text
    assert f"against its best path's {own.server_ms_per_order:.0f} ms (" in text
    # the default-settings targets are only judged for the default worker count
    assert "with the default 4 workers" not in text and "model check: insert_many" in text


def test_settlements_part_counts_calls_per_settlement_and_a_rerun_writes_nothing() -> None:
    from bench.settlements import run_settlements

    r = run_settlements(300)
    assert r.settlements >= 2 and r.orders_settled > 0 and r.rows > r.orders_settled
    # one getReports page, one getReportDocument per settlement: the count does not grow with orders
    assert r.by_operation == {"getReports": 1, "getReportDocument": r.settlements}
    assert r.calls == r.settlements + 1
    assert r.je_write_ms > 0 and r.rerun_writes == 0 and r.rerun_calls == 1
