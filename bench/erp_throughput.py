"""Part 2: ERPNext write throughput of the engine with 1, 2, 4 and 8 workers against the ERPNext simulator
with a per-request latency, next to the simulator's own ceiling (``workers / latency`` requests per second).

The orders come from the SP-API simulator through the real access layer (a report read on the simulated
clock, so no Amazon wait) and are written with the engine's own path (`OrderWriter` + `process_orders`, i.e.
`Runtime.run_pool` with ``[erpnext] workers``). A warm-up batch first creates the Items and masters; the timed
batch then measures the steady state: wall-clock orders/s and ERPNext requests/s. Every setting gets a fresh
ERPNext database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from amz2erp.amazon.client import AmazonClient
from amz2erp.clock import SimulatedClock, set_default_clock
from amz2erp.config import load_settings
from amz2erp.engine.orders import OrderWriter, process_orders
from amz2erp.engine.runtime import open_runtime
from amz2erp.models import Order, UnparsableOrder
from amz2erp.ui import Reporter
from amz2erp_sim import datagen
from bench.env import run_cli, simulators

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
US = "ATVPDKIKX0DER"


@dataclass
class WriteResult:
    workers: int
    orders: int
    seconds: float
    requests: int
    ceiling_rps: float  # the simulator's ceiling, requests per second

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def requests_per_order(self) -> float:
        return self.requests / max(1, self.orders)

    @property
    def ceiling_orders_per_s(self) -> float:
        return self.ceiling_rps / self.requests_per_order

    @property
    def share_of_ceiling(self) -> float:
        return self.requests_per_s / self.ceiling_rps


def run_writes(workers: list[int], *, latency: float = 0.05, server_workers: int = 4, orders: int = 200,
               warmup: int = 60, seed: int = 5) -> list[WriteResult]:
    clock = SimulatedClock(NOW)
    listings = datagen.generate_listings(seed, 40, ("US",))
    # only orders that become Sales Orders (no pending/cancelled skips), so every timed order is a write
    weights = {"Unshipped": 0.3, "Shipped": 0.6, "PartiallyShipped": 0.05, "InvoiceUnconfirmed": 0.05}
    data = datagen.generate_orders(seed, warmup + orders, listings, NOW - timedelta(days=20),
                                   NOW - timedelta(minutes=10), status_weights=weights)
    results: list[WriteResult] = []
    set_default_clock(clock)
    try:
        records: list[Order | UnparsableOrder] | None = None
        for w in workers:
            with simulators(clock, listings, data, workers=w, spapi_kwargs={"strict": False},
                            erp_kwargs={"latency": latency, "workers": server_workers}) as (_spapi, erp, cfg):
                code, err = run_cli(cfg, "-q", "setup")
                if code != 0:
                    raise RuntimeError(f"setup failed ({code}): {err[-500:]}")
                settings, _ = load_settings(cfg)
                with AmazonClient(settings.amazon, clock) as amazon:
                    if records is None:
                        records = list(amazon.fetch_orders_report([US], NOW - timedelta(days=21),
                                                                  NOW - timedelta(minutes=5)))
                        records.sort(key=lambda r: r.amazon_order_id)
                    with open_runtime(settings, Reporter(quiet=True), "bench", clock=clock, amazon=amazon) as rt:
                        writer = OrderWriter(rt)
                        process_orders(rt, writer, records[:warmup])
                        before = len(erp.request_log)
                        began = time.monotonic()
                        res = process_orders(rt, writer, records[warmup:])
                        seconds = time.monotonic() - began
                        requests = len(erp.request_log) - before
                results.append(WriteResult(w, res.processed, seconds, requests, erp.ceiling()))
    finally:
        set_default_clock(None)
    return results
