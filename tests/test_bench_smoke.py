"""The benchmark's code paths on tiny sizes: the figures have the right shape and are sane (not fast)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.amazon_cost import run_client_mode, run_frappe_pattern
from bench.erp_throughput import run_writes
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
    (w,) = run_writes([2], latency=0.01, server_workers=2, orders=12, warmup=4)
    assert w.orders == 12 and w.requests >= 12
    assert w.ceiling_rps == pytest.approx(200.0)
    assert 0 < w.share_of_ceiling <= 1.05
    r = run_rss(200, days=40)
    assert r.exit_code in (0, 1) and r.sales_orders > 0
    assert 20 < r.baseline_rss_mb <= r.peak_rss_mb < 1000
    opts = argparse.Namespace(quick=True, days=60, report_seconds=180.0, chunk_days=7, erp_latency=0.01,
                              erp_server_workers=2)
    info = {"cpus": "2", "cpu": "x", "memory": "1G", "python": "3", "os": "linux", "date": "today"}
    text = render(list(costs.values()), [w], [r], opts, info, 1.0)  # type: ignore[arg-type]
    assert "| mode | orders | read | SP-API calls |" in text
    assert "| workers | orders/s |" in text and "peak RSS" in text
    assert "writes ≥ 80 % of the simulator's ceiling" not in text  # only reported for 4 workers


def test_settlements_part_counts_calls_per_settlement_and_a_rerun_writes_nothing() -> None:
    from bench.settlements import run_settlements

    r = run_settlements(300)
    assert r.settlements >= 2 and r.orders_settled > 0 and r.rows > r.orders_settled
    # one getReports page, one getReportDocument per settlement: the count does not grow with orders
    assert r.by_operation == {"getReports": 1, "getReportDocument": r.settlements}
    assert r.calls == r.settlements + 1
    assert r.je_write_ms > 0 and r.rerun_writes == 0 and r.rerun_calls == 1
