"""Part 1: SP-API calls and simulated Amazon time of a backfill, per access mode, on the SP-API simulator with
Amazon's documented rate limits on a simulated clock.

* ``api``/``report``: the real `AmazonClient`, driven window by window exactly as `amz2erp backfill` drives it
  (the same `plan_chunks`, chunk size and two-year clamp), records consumed, nothing written to ERPNext
  (ERPNext time is part 2; on the simulated clock it costs no Amazon time anyway).
* ``report+hint``: kept for the results table; since backfill announces its range
  (`AmazonClient.plan_orders_reports`) and the access layer no longer guesses a walk, it equals ``report``.
* ``frappe``: the Frappe connector's call pattern replayed on the same simulator: getOrders pages (it asks
  for 50 per page; with a NextToken Amazon keeps the first page's size), and per order getOrderItems +
  listFinancialEventsByOrderId. The connector does not
  throttle (a 429 aborts its run); here it is paced perfectly by token buckets at Amazon's documented rates,
  i.e. its best case. Requests go to the simulator in-process (`SpApiSimulator.handle`), not over a socket,
  to keep 200k requests within the benchmark's time budget; the simulator and its rate limits are the same.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from amz2erp.amazon import limits
from amz2erp.amazon.client import AmazonClient
from amz2erp.amazon.ratelimit import DEFAULT_LIMITS, RateLimiter
from amz2erp.clock import SimulatedClock
from amz2erp.config import AmazonSettings
from amz2erp.engine.windows import newest_readable, plan_chunks
from amz2erp_sim import datagen
from amz2erp_sim.spapi import AUTH_OPERATION, DOCUMENT_OPERATION, SpApiOptions, SpApiSimulator

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
US = "ATVPDKIKX0DER"
NOT_CALLS = {AUTH_OPERATION, DOCUMENT_OPERATION}  # LWA token and the S3 download are not SP-API operations


@dataclass
class CostResult:
    mode: str
    orders: int
    orders_seen: int
    calls: int
    amazon_seconds: float
    real_seconds: float
    by_operation: dict[str, int] = field(default_factory=dict)
    throttled: int = 0

    @property
    def calls_per_1000(self) -> float:
        return self.calls * 1000.0 / max(1, self.orders)


class _Dataset:
    """Listings and ``n`` orders spread over the two years before NOW (cached per size and seed)."""

    _cache: ClassVar[dict[tuple[int, int, int], tuple[list[datagen.SimListing], list[datagen.SimOrder]]]] = {}

    @classmethod
    def get(cls, n: int, days: int, seed: int = 7) -> tuple[list[datagen.SimListing], list[datagen.SimOrder]]:
        key = (n, days, seed)
        if key not in cls._cache:
            listings = datagen.generate_listings(seed, 40, ("US",))
            orders = datagen.generate_orders(seed, n, listings, NOW - timedelta(days=days) + timedelta(hours=1),
                                             NOW - timedelta(minutes=10))
            cls._cache.clear()  # one size at a time (memory)
            cls._cache[key] = (listings, orders)
        return cls._cache[key]


def _settings(sim: SpApiSimulator) -> AmazonSettings:
    creds = sim.credentials
    return AmazonSettings(refresh_token=creds["refresh_token"], lwa_app_id=creds["lwa_app_id"],
                          lwa_client_secret=creds["lwa_client_secret"], marketplaces=["US"], endpoint=sim.url,
                          lwa_endpoint=sim.lwa_url, max_retries=10)


def _count(sim: SpApiSimulator) -> tuple[Counter[str], int]:
    ops: Counter[str] = Counter()
    throttled = 0
    for e in sim.request_log:
        if e["operation"] in NOT_CALLS:
            continue
        ops[e["operation"]] += 1
        if e["status"] == 429:
            throttled += 1
    return ops, throttled


def backfill_windows(clock: SimulatedClock, days: int, chunk: timedelta, report: bool) -> list[tuple[datetime, datetime]]:
    """The windows `amz2erp backfill --from <days ago> --chunk <chunk>` reads, newest first."""
    now = clock.now()
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = newest_readable(now)
    start = max(start, (now - limits.ORDERS_HORIZON).replace(microsecond=0))
    size = min(chunk, limits.REPORT_WINDOW) if report else chunk
    return [(c.start, c.end) for c in plan_chunks(start, end, size)]


def run_client_mode(n: int, mode: str, *, days: int = 730, chunk: timedelta = timedelta(days=7),
                    report_seconds: float = 180.0) -> CostResult:
    listings, orders = _Dataset.get(n, days)
    clock = SimulatedClock(NOW)
    began = time.monotonic()
    seen: set[str] = set()
    report = mode in ("report", "report+hint")
    with SpApiSimulator(SpApiOptions(report_processing_seconds=report_seconds, strict=False),
                        clock=clock, listings=listings, orders=orders) as sim:
        t0 = clock.monotonic()
        with AmazonClient(_settings(sim), clock) as client:
            windows = backfill_windows(clock, days, chunk, report)
            if report:  # backfill announces its walk before its first chunk; the access layer guesses nothing
                client.plan_orders_reports([US], windows[-1][0], windows[0][1])
            for start, end in windows:
                source = (client.fetch_orders_report([US], start, end) if report
                          else client.fetch_orders([US], start, end))
                for record in source:
                    seen.add(record.amazon_order_id)
        ops, throttled = _count(sim)
        amazon = clock.monotonic() - t0
    return CostResult(mode, n, len(seen), sum(ops.values()), amazon, time.monotonic() - began, dict(ops), throttled)


def run_frappe_pattern(n: int, *, days: int = 730) -> CostResult:
    """The Frappe connector's calls for a backfill of every order since ``days`` ago (one getOrders walk)."""
    listings, orders = _Dataset.get(n, days)
    clock = SimulatedClock(NOW)
    began = time.monotonic()
    limits = dict(DEFAULT_LIMITS)
    limits.setdefault("listFinancialEventsByOrderId", (0.5, 30))  # Finances v0 usage plan
    limiter = RateLimiter(clock, limits)
    ops: Counter[str] = Counter()
    throttled = 0
    seen = 0
    with SpApiSimulator(SpApiOptions(strict=False), clock=clock, listings=listings, orders=orders) as sim:
        t0 = clock.monotonic()
        form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": sim.lwa_refresh_token,
                                       "client_id": sim.lwa_client_id, "client_secret": sim.lwa_client_secret})
        tok = sim.handle("POST", "/auth/o2/token", {"content-type": "application/x-www-form-urlencoded"},
                         form.encode())
        headers = {"x-amz-access-token": json.loads(tok.body)["access_token"]}

        def call(operation: str, path: str, query: dict[str, Any]) -> dict[str, Any]:
            nonlocal throttled
            while True:
                limiter.acquire(operation)
                resp = sim.handle("GET", path + "?" + urllib.parse.urlencode(query), headers, b"")
                ops[operation] += 1
                if resp.status == 429:  # never with perfect pacing; counted if it happens
                    throttled += 1
                    limiter.throttled(operation)
                    continue
                if resp.status != 200:
                    raise RuntimeError(f"{operation}: HTTP {resp.status} {resp.body[:200]!r}")
                body: dict[str, Any] = json.loads(resp.body)
                return body

        after = (clock.now() - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        query: dict[str, Any] = {"MarketplaceIds": US, "CreatedAfter": after, "MaxResultsPerPage": 50}
        while True:
            page = call("getOrders", "/orders/v0/orders", query)["payload"]
            for order in page["Orders"]:
                oid = order["AmazonOrderId"]
                token: str | None = None
                while True:  # get_order_items (+ NextToken)
                    items = call("getOrderItems", f"/orders/v0/orders/{oid}/orderItems",
                                 {"NextToken": token} if token else {})["payload"]
                    token = items.get("NextToken")
                    if not token:
                        break
                call("listFinancialEventsByOrderId", f"/finances/v0/orders/{oid}/financialEvents",
                     {"MaxResultsPerPage": 100})
                seen += 1
            sim.request_log.clear()  # the replay counts itself; keep the simulator's log small
            if not page.get("NextToken"):
                break
            query = {"MarketplaceIds": US, "NextToken": page["NextToken"]}
        amazon = clock.monotonic() - t0
    return CostResult("frappe", n, seen, sum(ops.values()), amazon, time.monotonic() - began, dict(ops), throttled)
