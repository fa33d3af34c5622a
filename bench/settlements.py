"""Part 4: sync-settlements — SP-API calls per settlement and per 1,000 orders settled, and Journal Entry write
time, on both simulators (Amazon's documented rate limits on a simulated clock; ERPNext with a per-request
latency).

The real CLI runs in-process (`amz2erp setup`, `sync-orders`, then `sync-settlements` twice: the second run
must post nothing). Calls are counted by the SP-API simulator (what Amazon would bill against the usage plans,
LWA token and document downloads apart); the write time is the ERPNext simulator's own time for the Journal
Entry inserts plus the wall time of the whole run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from amz2erp.clock import SimulatedClock, set_default_clock
from amz2erp_sim import datagen
from amz2erp_sim.spapi import AUTH_OPERATION, DOCUMENT_OPERATION
from bench.env import run_cli, simulators

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
NOT_CALLS = {AUTH_OPERATION, DOCUMENT_OPERATION}

#: what part 4 adds to the benchmark's config (bench/env.py): orders read by report, settlements posted
EXTRA_CONFIG = """\
[sync]
after = {after}
mode = "report"
[settlements]
bank_account = "Amazon Payouts"
"""


@dataclass
class SettlementBenchResult:
    orders: int  # orders generated (60 days)
    settlements: int  # closed settlements posted
    orders_settled: int  # distinct orders with rows in them
    rows: int
    calls: int  # SP-API calls of the first sync-settlements
    by_operation: dict[str, int] = field(default_factory=dict)
    je_write_ms: float = 0.0  # ERPNext time per Journal Entry insert (simulator side), mean
    run_seconds: float = 0.0  # wall time of the first sync-settlements
    rerun_writes: int = 0  # ERPNext writes of the second run (must be 0)
    rerun_calls: int = 0

    @property
    def calls_per_settlement(self) -> float:
        return self.calls / max(1, self.settlements)

    @property
    def calls_per_1000_orders(self) -> float:
        return self.calls * 1000.0 / max(1, self.orders_settled)


def run_settlements(orders: int, *, seed: int = 21, latency: float = 0.005) -> SettlementBenchResult:
    clock = SimulatedClock(NOW)
    listings = datagen.generate_listings(seed, 60, ("US",))
    generated = datagen.generate_orders(seed, orders, listings, NOW - timedelta(days=60), NOW - timedelta(minutes=10))
    extra = EXTRA_CONFIG.format(after=(NOW - timedelta(days=61)).date().isoformat())
    with simulators(clock, listings, generated, extra_config=extra, erp_kwargs={"latency": latency}) as (
        spapi, erp, config,
    ):
        set_default_clock(clock)
        try:

            def cli(*args: str) -> int:
                return run_cli(config, "-q", *args)[0]

            assert cli("setup") == 0
            assert cli("sync-orders") in (0, 1)
            calls_before = Counter(spapi.operation_counts())
            log_before = len(erp.request_log)
            started = time.perf_counter()
            code = cli("sync-settlements")
            seconds = time.perf_counter() - started
            if code != 0:
                raise RuntimeError(f"sync-settlements exited {code}")
            calls = Counter(spapi.operation_counts()) - calls_before
            posts = [r for r in erp.request_log[log_before:] if r.method == "POST" and r.doctype == "Journal Entry"]
            calls2_before = Counter(spapi.operation_counts())
            log2 = len(erp.request_log)
            assert cli("sync-settlements") == 0
            rerun_writes = sum(1 for r in erp.request_log[log2:] if r.method in ("POST", "PUT", "DELETE"))
            rerun_calls = sum((Counter(spapi.operation_counts()) - calls2_before).values())
            closed = [s for s in spapi.settlements if s.report_available(clock.now())]
            settled = {r.order_id for s in closed for r in s.rows if r.order_id}
            by_op = {k: v for k, v in calls.items() if k not in NOT_CALLS}
            return SettlementBenchResult(
                orders=orders, settlements=len(posts), orders_settled=len(settled),
                rows=sum(len(s.rows) for s in closed), calls=sum(by_op.values()), by_operation=dict(by_op),
                je_write_ms=1000 * sum(r.duration for r in posts) / max(1, len(posts)), run_seconds=seconds,
                rerun_writes=rerun_writes, rerun_calls=rerun_calls - sum(
                    v for k, v in (Counter(spapi.operation_counts()) - calls2_before).items() if k in NOT_CALLS),
            )
        finally:
            set_default_clock(None)
