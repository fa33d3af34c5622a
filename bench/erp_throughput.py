"""Part 2: ERPNext writes in orders per second, per write path, on the ERPNext simulator with the cost model of a
real ERPNext v15 (amz2erp_sim/erpnext/costs.py: 2 gunicorn workers on 2 cores, every request priced by what it
does) running in real time (``speed`` 1.0).

- **Engine paths** (`OrderWriter` + `process_orders`, i.e. `Runtime.run_pool` with ``[erpnext] workers``):
  - *new-buyer orders*: the orders report's records (no PII), so every order brings its own Customer and
    Address;
  - *existing-buyer orders*: orders of buyers that an earlier order already brought (the same anonymised
    e-mail and ship-to), so Customer and Address are known.
- **The server's own paths** with ready documents (the documents the engine would write, built by a dry run),
  straight through `ErpNextClient`: one submitted Sales Order per POST from 1 and 4 client threads, and
  `insert_many` of 50 from 1 and 2 client threads; for new buyers, `insert_many` of their ready Customers,
  then Addresses, then Sales Orders (50 orders a group, 1 and 2 client threads). Each engine path's share is
  measured against its own best path (the fastest insert_many of the same documents it writes: Sales Orders
  for existing buyers, all three for new ones) and against the single best path (ready Sales Orders alone).
  The Sales Order paths also check the model against the real server's measurements (POST 7.3–8.6/s
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
NEW_INSERT_MANY = "ready Customers + Addresses + Sales Orders, insert_many ×50"
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
    #: ``server_seconds`` by request kind
    server_by_kind: dict[str, float] = field(default_factory=dict)

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

    def server_ms_by_kind(self) -> list[tuple[str, float]]:
        """Server time per order in ms by request kind, most first."""
        n = max(1, self.orders)
        return sorted(((k, 1000 * v / n) for k, v in self.server_by_kind.items()), key=lambda kv: (-kv[1], kv[0]))


@dataclass
class ErpBench:
    speed: float
    paths: list[PathResult]

    def fastest(self, path: str) -> PathResult | None:
        runs = [p for p in self.paths if p.path == path]
        return max(runs, key=lambda p: p.orders_per_s) if runs else None

    @property
    def best(self) -> PathResult | None:
        """The server's single best path: the fastest insert_many of ready Sales Orders."""
        return self.fastest(INSERT_MANY)

    def own_best(self, p: PathResult) -> PathResult | None:
        """The best path for the documents ``p`` writes: a new buyer's order is three documents (Customer,
        Address, Sales Order), so its yardstick is the insert_many of those three; any other path's is
        ``best``."""
        return self.fastest(NEW_INSERT_MANY) if p.path == NEW_BUYER else self.best

    def share(self, p: PathResult) -> float:
        """``p``'s orders/s as a share of the single best path."""
        return _ratio(p, self.best)

    def own_share(self, p: PathResult) -> float:
        """``p``'s orders/s as a share of its own best path (``own_best``)."""
        return _ratio(p, self.own_best(p))

    def find(self, path: str, client_workers: int) -> PathResult | None:
        return next((p for p in self.paths if p.path == path and p.client_workers == client_workers), None)


def _ratio(p: PathResult, best: PathResult | None) -> float:
    return p.orders_per_s / best.orders_per_s if best and best.orders_per_s else 0.0


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
    by_kind: dict[str, float] = {}
    for r in log:
        kind = r.kind or f"{r.method} {r.path}"
        by_kind[kind] = by_kind.get(kind, 0.0) + (r.cost / speed if speed > 0 else 0.0)
    return PathResult(path, workers, orders, seconds, _kinds(erp, before), failed, server, cpu, erp.costs.capacity,
                      by_kind)


def _with_workers(settings: Settings, workers: int) -> Settings:
    return settings.model_copy(update={"erpnext": settings.erpnext.model_copy(update={"workers": workers})})


def _same_buyer(order: Order, buyer: Order, n: int) -> Order:
    """``order`` bought by ``buyer``'s buyer: the same anonymised e-mail and ship-to address."""
    return order.model_copy(update={"buyer_email": f"bench-buyer-{n}@marketplace.amazon.com",
                                    "shipping_address": buyer.shipping_address})


def run_erp_bench(engine_workers: Sequence[int] = (1, 2, 4, 8), *, orders: int = 60, ready: int = 100,
                  speed: float = 1.0, warmup: int = 60, run_warmup: int = RUN_WARMUP, seed: int = 5,
                  progress: Callable[[str], None] | None = None) -> ErpBench:
    """``orders`` timed orders per engine path and worker count; ``ready`` orders' ready documents per server
    path (one per POST, insert_many in batches of 50, new buyers' three documents in groups of 50)."""
    say = progress or (lambda _msg: None)
    clock = SimulatedClock(NOW)
    listings = datagen.generate_listings(seed, 40, ("US",))
    # only orders that become Sales Orders (no pending/cancelled skips), so every timed order is a write
    weights = {"Unshipped": 0.3, "Shipped": 0.6, "PartiallyShipped": 0.05, "InvoiceUnconfirmed": 0.05}
    # POST ×1 thread, ×4 threads, insert_many ×1, ×2, and new buyers' insert_many ×1, ×2; twice that many
    # orders, as some need an Item first
    n_ready, n_new_ready = 8 * ready, 4 * ready
    total = warmup + (2 * orders + run_warmup) * len(engine_workers) + n_ready + n_new_ready
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
                    new_docs = _ready_new_buyers(rt, take(n_new_ready))
                say(f"part 2: set up, {len(ready_docs)} ready Sales Orders, {len(new_docs)} ready new buyers")
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
            paths.extend(_new_buyer_paths(erp, settings, new_docs, ready, say))
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


@dataclass(frozen=True)
class NewBuyer:
    """The three documents the engine writes for a new buyer's order, as the dry run built them: the Address
    links the Customer and the Sales Order names both by the Customer's ``customer_name`` (the names ERPNext
    answers replace it when they are written)."""

    customer: dict[str, Any]
    address: dict[str, Any]
    order: dict[str, Any]


def _ready_new_buyers(rt: Any, records: list[Order]) -> list[NewBuyer]:
    """The Customer, Address and Sales Order the engine would write for each of ``records`` (a dry run), of the
    orders that need exactly those three (their Items exist)."""
    writer = OrderWriter(rt, dry_run=True)
    out: list[NewBuyer] = []
    for record in records:
        plan = writer.process(record).plan
        docs = {p.doctype: dict(p.doc) for p in plan if p.doc is not None}
        if sorted(p.doctype for p in plan) == ["Address", "Customer", SO] and len(docs) == 3:
            out.append(NewBuyer(docs["Customer"], docs["Address"], docs[SO]))
    return out


def _write_new_buyers(client: ErpNextClient, group: Sequence[NewBuyer]) -> None:
    """One group through insert_many, in the order the links need: Customers, Addresses, Sales Orders."""
    customers = client.insert_many("Customer", [b.customer for b in group], key_field="amazon_customer_key")
    addresses = client.insert_many("Address", [
        dict(b.address, links=[{"link_doctype": "Customer", "link_name": c}])
        for b, c in zip(group, customers, strict=True)])
    client.insert_many(SO, [dict(b.order, customer=c, shipping_address_name=a)
                            for b, c, a in zip(group, customers, addresses, strict=True)],
                       key_field="amazon_order_id")


def _new_buyer_paths(erp: ErpNextSimulator, settings: Settings, buyers: list[NewBuyer], ready: int,
                     say: Callable[[str], None]) -> list[PathResult]:
    """New buyers' best path: ``ready`` orders' ready documents in groups of ``BATCH`` from 1 and 2 client
    threads (each thread writes whole groups, so its three calls keep their order)."""
    out: list[PathResult] = []
    ready = min(ready, len(buyers) // 2)
    with ErpNextClient(_with_workers(settings, 2).erpnext) as client:
        for i, threads in enumerate((1, 2)):
            chunk = buyers[i * ready:(i + 1) * ready]
            groups = [chunk[j:j + BATCH] for j in range(0, len(chunk), BATCH)]

            def run(groups: list[list[NewBuyer]] = groups, threads: int = threads) -> int:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(partial(_write_new_buyers, client), groups))
                return 0
            out.append(_timed(erp, NEW_INSERT_MANY, threads, len(chunk), run))
            say(f"part 2: {NEW_INSERT_MANY}, {threads} client threads: {out[-1].orders_per_s:.1f} orders/s")
    return out


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
