"""Part 2: ERPNext writes in orders per second, per write path, on the ERPNext simulator with the cost model of a
real ERPNext v15 (amz2erp_sim/erpnext/costs.py: 2 gunicorn workers on 2 cores, every request priced by what it
does) running in real time (``speed`` 1.0).

- **Engine paths** (`OrderWriter` + `process_orders`, i.e. `Runtime.run_pool` with ``[erpnext] workers``):
  - *new-buyer orders*: the orders report's records (no PII), so every order brings its own Customer and
    Address;
  - *existing-buyer orders*: orders of buyers that an earlier order already brought (the same anonymised
    e-mail and ship-to), so Customer and Address are known.
- **The server's own paths** with ready documents (Sales Orders the engine would write, built by a dry run),
  straight through `ErpNextClient`: one submitted Sales Order per POST from 1 and 4 client threads, and
  `insert_many` of 50 from 1 and 2 client threads. The fastest of these is the *best path* the engine's share
  is measured against. They also check the model against the real server's measurements (POST 7.3–8.6/s
  sequential, insert_many 16–19/s).

Requests are counted by kind in the simulator (lookup / get / insert / update_status / insert_many … per
doctype). Setup and a warm-up (Items, the existing buyers) run with the costs off; only the timed parts cost.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from amz2erp.amazon.client import AmazonClient
from amz2erp.clock import SimulatedClock, set_default_clock
from amz2erp.config import ErpNextSettings, Settings, load_settings
from amz2erp.engine.orders import OrderWriter, process_orders
from amz2erp.engine.runtime import open_runtime
from amz2erp.erpnext.client import ErpNextClient
from amz2erp.models import Order, UnparsableOrder
from amz2erp.ui import Reporter
from amz2erp_sim import datagen
from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.erpnext.costs import CostModel
from bench.env import run_cli, simulators

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
US = "ATVPDKIKX0DER"
SO = "Sales Order"
NEW_BUYER = "new-buyer orders"
EXISTING_BUYER = "existing-buyer orders"
POST_ONE = "ready Sales Orders, one per POST"
INSERT_MANY = "ready Sales Orders, insert_many ×50"
BATCH = 50
#: untimed orders at the start of each engine run
RUN_WARMUP = 30
#: the engine's default ``[erpnext] workers``
DEFAULT_WORKERS = ErpNextSettings.model_fields["workers"].default


@dataclass
class PathResult:
    path: str
    client_workers: int
    orders: int
    seconds: float
    kinds: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    #: the server time the cost model charged for these orders, in a real server's seconds, and its CPU part
    server_seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: how many workers' worth of CPU the simulated server has when busy
    capacity: float = 1.0

    @property
    def engine(self) -> bool:
        return self.path in (NEW_BUYER, EXISTING_BUYER)

    @property
    def requests(self) -> int:
        return sum(self.kinds.values())

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds if self.seconds > 0 else 0.0

    @property
    def requests_per_order(self) -> float:
        return self.requests / max(1, self.orders)

    @property
    def server_ms_per_order(self) -> float:
        return 1000 * self.server_seconds / max(1, self.orders)

    @property
    def ceiling(self) -> float:
        """Orders/s of this path when the server's CPU is the only limit (its busy capacity over the CPU time
        per order)."""
        return self.capacity * self.orders / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    def per_order(self) -> list[tuple[str, float]]:
        """Requests per order by kind, most first."""
        n = max(1, self.orders)
        return sorted(((k, v / n) for k, v in self.kinds.items()), key=lambda kv: (-kv[1], kv[0]))


@dataclass
class ErpBench:
    speed: float
    paths: list[PathResult]

    @property
    def best(self) -> PathResult | None:
        """The server's best path: the fastest insert_many of ready documents."""
        many = [p for p in self.paths if p.path == INSERT_MANY]
        return max(many, key=lambda p: p.orders_per_s) if many else None

    def share(self, p: PathResult) -> float:
        best = self.best
        return p.orders_per_s / best.orders_per_s if best and best.orders_per_s else 0.0

    def find(self, path: str, client_workers: int) -> PathResult | None:
        return next((p for p in self.paths if p.path == path and p.client_workers == client_workers), None)


def _kinds(erp: ErpNextSimulator, since: int) -> dict[str, int]:
    return dict(Counter(r.kind or f"{r.method} {r.path}" for r in erp.request_log[since:]))


def _timed(erp: ErpNextSimulator, path: str, workers: int, orders: int, fn: Callable[[], int]) -> PathResult:
    before = len(erp.request_log)
    began = time.monotonic()
    failed = fn()
    seconds = time.monotonic() - began
    log, speed = erp.request_log[before:], erp.costs.speed
    server = sum(r.cost for r in log) / speed if speed > 0 else 0.0
    cpu = sum(r.cpu for r in log) / speed if speed > 0 else 0.0
    return PathResult(path, workers, orders, seconds, _kinds(erp, before), failed, server, cpu, erp.costs.capacity)


def _with_workers(settings: Settings, workers: int) -> Settings:
    return settings.model_copy(update={"erpnext": settings.erpnext.model_copy(update={"workers": workers})})


def _same_buyer(order: Order, buyer: Order, n: int) -> Order:
    """``order`` bought by ``buyer``'s buyer: the same anonymised e-mail and ship-to address."""
    return order.model_copy(update={"buyer_email": f"bench-buyer-{n}@marketplace.amazon.com",
                                    "shipping_address": buyer.shipping_address})


def run_erp_bench(engine_workers: Sequence[int] = (1, 2, 4, 8), *, orders: int = 60, ready: int = 100,
                  speed: float = 1.0, warmup: int = 60, run_warmup: int = RUN_WARMUP, seed: int = 5,
                  progress: Callable[[str], None] | None = None) -> ErpBench:
    """``orders`` timed orders per engine path and worker count; ``ready`` ready documents per server path
    (one per POST, and insert_many in batches of 50)."""
    say = progress or (lambda _msg: None)
    clock = SimulatedClock(NOW)
    listings = datagen.generate_listings(seed, 40, ("US",))
    # only orders that become Sales Orders (no pending/cancelled skips), so every timed order is a write
    weights = {"Unshipped": 0.3, "Shipped": 0.6, "PartiallyShipped": 0.05, "InvoiceUnconfirmed": 0.05}
    # POST ×1 thread, ×4 threads, insert_many ×1, ×2; twice that many orders, as some need an Item first
    n_ready = 8 * ready
    total = warmup + (2 * orders + run_warmup) * len(engine_workers) + n_ready
    data = datagen.generate_orders(seed, total + total // 10, listings, NOW - timedelta(days=20),
                                   NOW - timedelta(minutes=10), status_weights=weights)
    off, on = CostModel(speed=0.0), CostModel(speed=speed)
    paths: list[PathResult] = []
    set_default_clock(clock)
    try:
        with simulators(clock, listings, data, workers=DEFAULT_WORKERS, spapi_kwargs={"strict": False},
                        erp_kwargs={"costs": off}) as (_spapi, erp, cfg):
            code, err = run_cli(cfg, "-q", "setup")
            if code != 0:
                raise RuntimeError(f"setup failed ({code}): {err[-500:]}")
            settings, _ = load_settings(cfg)
            with AmazonClient(settings.amazon, clock) as amazon:
                records: list[Order] = sorted(
                    (r for r in amazon.fetch_orders_report([US], NOW - timedelta(days=21), NOW - timedelta(minutes=5))
                     if not isinstance(r, UnparsableOrder)), key=lambda r: r.amazon_order_id)
                if len(records) < total:
                    raise RuntimeError(f"the report has {len(records)} orders, the bench needs {total}")
                # the warm-up orders are the existing buyers' first orders; they also bring every Item
                warm = [_same_buyer(o, o, i) for i, o in enumerate(records[:warmup])]
                rest = iter(records[warmup:total])

                def take(n: int) -> list[Order]:
                    return [next(rest) for _ in range(n)]

                def repeat(batch: list[Order]) -> list[Order]:
                    return [_same_buyer(o, warm[i % warmup], i % warmup) for i, o in enumerate(batch)]

                with open_runtime(settings, Reporter(quiet=True), "bench", clock=clock, amazon=amazon) as rt:
                    process_orders(rt, OrderWriter(rt), warm)
                    ready_docs = _ready_documents(rt, repeat(take(n_ready)))
                say(f"part 2: set up, {len(ready_docs)} ready Sales Orders")
                for w in engine_workers:
                    first, new, existing = take(run_warmup), take(orders), repeat(take(orders))
                    with open_runtime(_with_workers(settings, w), Reporter(quiet=True), "bench", clock=clock,
                                      amazon=amazon) as rt:
                        writer = OrderWriter(rt)
                        # untimed first: the run's start-up lookups (each Item once per run) stay out, as they
                        # do in a long run
                        process_orders(rt, writer, first)
                        for path, batch in ((NEW_BUYER, new), (EXISTING_BUYER, existing)):
                            erp.costs = on
                            paths.append(_timed(erp, path, w, len(batch), partial(_failed, rt, writer, batch)))
                            erp.costs = off
                            say(f"part 2: {path}, {w} workers: {paths[-1].orders_per_s:.1f} orders/s")
            erp.costs = on
            paths.extend(_server_paths(erp, settings, ready_docs, ready, say))
            erp.costs = off
    finally:
        set_default_clock(None)
    return ErpBench(speed, paths)


def _failed(rt: Any, writer: OrderWriter, batch: list[Order]) -> int:
    return process_orders(rt, writer, batch).failed


def _ready_documents(rt: Any, records: list[Order]) -> list[dict[str, Any]]:
    """The Sales Orders the engine would write for ``records`` (a dry run: nothing is written), of the orders
    that need nothing else written first (their Items, Customer and Address exist)."""
    writer = OrderWriter(rt, dry_run=True)
    docs: list[dict[str, Any]] = []
    for record in records:
        plan = writer.process(record).plan
        if all(p.doctype == SO for p in plan):
            docs.extend(dict(p.doc) for p in plan if p.doc is not None)
    return docs


def _server_paths(erp: ErpNextSimulator, settings: Settings, docs: list[dict[str, Any]], ready: int,
                  say: Callable[[str], None]) -> list[PathResult]:
    out: list[PathResult] = []
    ready = min(ready, len(docs) // 4)
    chunks = [docs[i * ready:(i + 1) * ready] for i in range(4)]
    with ErpNextClient(_with_workers(settings, 4).erpnext) as client:

        def post_all(batch: list[dict[str, Any]], threads: int) -> Callable[[], int]:
            def one(doc: dict[str, Any]) -> None:
                client.insert(SO, doc, key={"amazon_order_id": str(doc["amazon_order_id"])})

            def run() -> int:
                if threads == 1:
                    for doc in batch:
                        one(doc)
                else:
                    with ThreadPoolExecutor(threads) as pool:
                        list(pool.map(one, batch))
                return 0
            return run

        def many_all(batch: list[dict[str, Any]], threads: int) -> Callable[[], int]:
            parts = [batch[i:i + BATCH] for i in range(0, len(batch), BATCH)]

            def one(part: list[dict[str, Any]]) -> None:
                client.insert_many(SO, part, key_field="amazon_order_id")

            def run() -> int:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(one, parts))
                return 0
            return run

        for (path, threads, make), batch in zip(((POST_ONE, 1, post_all), (POST_ONE, 4, post_all),
                                                 (INSERT_MANY, 1, many_all), (INSERT_MANY, 2, many_all)),
                                                chunks, strict=True):
            out.append(_timed(erp, path, threads, len(batch), make(batch, threads)))
            say(f"part 2: {path}, {threads} client threads: {out[-1].orders_per_s:.1f} orders/s")
    return out
