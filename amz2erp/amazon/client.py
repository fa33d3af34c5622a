"""The `AmazonClient` facade: the Amazon operations the sync engine needs, one method each.

It owns one of each part of the layer and delegates; nothing Amazon-specific is decided here:

* `transport` — python-amazon-sp-api construction with explicit credentials, the LWA token store and the
  response check (`amz2erp.amazon.transport`);
* `caller` — THE retry and pagination place with its classification table (`amz2erp.amazon.calls`) and the
  client-side token buckets (`amz2erp.amazon.ratelimit`);
* `settlements` — settlement reports, Finances event groups and transactions (`amz2erp.amazon.settlements`);
* `orders` — the Orders v0 and 2026-01-01 fetchers and the buyer-data policy (`amz2erp.amazon.orders`);
* `reports` — report jobs, plans, reuse, streamed download and flat-file parsing (`amz2erp.amazon.reports`),
  paced by one `ReportTuning`; listings and catalog items (`listings`, `catalog`); the pure payload
  parsers are in `amz2erp.amazon.parse`, the Amazon facts in `limits` and `marketplaces`.

Public API (the sync engine's contract)::

    AmazonClient(settings: AmazonSettings, clock: Clock | None = None, *, tuning=ReportTuning(),
                 backoff_base=1.0, rate_limits=None, rng=None)
    .fetch_orders(marketplace_ids, updated_after, updated_before) -> Iterator[Order | UnparsableOrder]
    .fetch_order(amazon_order_id) -> Order | None
    .fetch_orders_by_ids(marketplace_id, order_ids, updated_after) -> Iterator[Order | UnparsableOrder]  (v0)
    .fetch_orders_report(marketplace_ids, updated_after, updated_before) -> Iterator[Order | UnparsableOrder]
    .plan_orders_reports(marketplace_ids, start, end) -> None   (backfill announces its newest-first walk)
    .fetch_listings(marketplace_id) -> Iterator[Listing]
    .fetch_catalog_items(asins, marketplace_id) -> dict[str, CatalogItem]
    .marketplace_participations() -> list[dict]
    .list_settlement_reports(created_since, marketplace_ids) -> list[SettlementReportRef]
    .fetch_settlement(document_id) -> Settlement
    .list_financial_event_groups(started_after, started_before=None) -> list[dict]
    .list_group_transactions(group_id) -> list[dict]
    .calls / .retries / .throttles (Counter per operation), .limiter, .stats(), .close()
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from amz2erp.amazon import catalog, listings
from amz2erp.amazon.calls import Caller
from amz2erp.amazon.orders import OrderFetcher
from amz2erp.amazon.ratelimit import RateLimiter
from amz2erp.amazon.reports import ReportPipeline, ReportTuning
from amz2erp.amazon.settlement_report import Settlement
from amz2erp.amazon.settlements import SettlementFetcher, SettlementReportRef
from amz2erp.amazon.transport import Transport
from amz2erp.clock import Clock, SystemClock
from amz2erp.config import AmazonSettings
from amz2erp.log import SecretMasker
from amz2erp.models import CatalogItem, Listing, Order, UnparsableOrder

# The layer logs under one name (the package), whichever module of it speaks: users filter on it.
log = logging.getLogger("amz2erp.amazon")


class AmazonClient:
    """Typed access to the SP-API operations amz2erp needs. Use as a context manager, or call `close`.

    Counters for benchmarks: ``calls`` (HTTP attempts per operation, retries included), ``retries`` and
    ``throttles`` (429s seen) per operation, and ``limiter.waited`` (seconds slept on rate limits).
    """

    def __init__(
        self,
        settings: AmazonSettings,
        clock: Clock | None = None,
        *,
        tuning: ReportTuning | None = None,
        backoff_base: float = 1.0,
        rate_limits: dict[str, tuple[float, int]] | None = None,
        rng: random.Random | None = None,
        masker: SecretMasker | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.limiter = RateLimiter(self.clock, rate_limits)
        self.transport = Transport(settings, self.clock, lambda: self.caller.count("lwaToken"), masker)
        self.caller = Caller(settings, self.clock, self.limiter, self.transport, backoff_base=backoff_base, rng=rng)
        # the benchmarks' counters: the retry place's own
        self.calls, self.retries, self.throttles = self.caller.calls, self.caller.retries, self.caller.throttles
        self.orders = OrderFetcher(settings, self.clock, self.caller, self.transport)
        self.reports = ReportPipeline(settings, self.clock, self.caller, self.transport, tuning or ReportTuning())
        self.settlements = SettlementFetcher(self.clock, self.caller, self.transport, self.reports)
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> AmazonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.reports.close()
        self.transport.close()

    # --- marketplaces ---------------------------------------------------------------------------------

    def marketplace_participations(self) -> list[dict[str, Any]]:
        """getMarketplaceParticipations: [{marketplace_id, country_code, name, participating, ...}]."""
        sellers = self.transport.api("sellers")
        res = self.caller.call(
            "getMarketplaceParticipations",
            lambda: sellers.get_marketplace_participation(),
            lambda r: isinstance(r.payload, list) or (isinstance(r.payload, dict) and "payload" in r.payload),
        )
        out: list[dict[str, Any]] = []
        for entry in res.payload if isinstance(res.payload, list) else []:
            m = entry.get("marketplace") or {}
            p = entry.get("participation") or {}
            out.append({
                "marketplace_id": m.get("id"),
                "country_code": m.get("countryCode"),
                "name": m.get("name"),
                "currency": m.get("defaultCurrencyCode"),
                "participating": bool(p.get("isParticipating")),
                "has_suspended_listings": bool(p.get("hasSuspendedListings")),
                "store_name": entry.get("storeName"),
            })
        return out

    # --- orders (amz2erp.amazon.orders) -----------------------------------------------------------------

    def fetch_orders(
        self, marketplace_ids: list[str], updated_after: datetime, updated_before: datetime
    ) -> Iterator[Order | UnparsableOrder]:
        """Orders last updated in [updated_after, updated_before] (``updated_before`` clamped to now − 2 min),
        each once, with their items; through Orders 2026-01-01 searchOrders or v0 getOrders+getOrderItems per
        ``settings.orders_api``. One payload that does not parse yields `UnparsableOrder`."""
        return self.orders.fetch_orders(marketplace_ids, updated_after, updated_before)

    def fetch_order(self, amazon_order_id: str) -> Order | None:
        """One order with its items, or None when Amazon does not know it (404)."""
        return self.orders.fetch_order(amazon_order_id)

    def fetch_orders_by_ids(self, marketplace_id: str, order_ids: list[str],
                            updated_after: datetime) -> Iterator[Order | UnparsableOrder]:
        """Orders v0 only: these orders (last updated at or after ``updated_after``), with their items, by
        getOrders filtered on AmazonOrderIds, 50 a call (Orders 2026-01-01 searchOrders has no such filter)."""
        return self.orders.fetch_orders_by_ids(marketplace_id, order_ids, updated_after)

    # --- reports (amz2erp.amazon.reports, listings) ---------------------------------------------------

    def plan_orders_reports(self, marketplace_ids: list[str], start: datetime, end: datetime) -> None:
        """Announce a newest-first walk over [start, end] (backfill does, before its first chunk): the reports
        of its ≤ 30-day windows are then asked for ahead of the reads and each document serves every read that
        falls into its window, whatever the read's size."""
        self.reports.plan_orders_reports(marketplace_ids, start, end)

    def fetch_orders_report(
        self, marketplace_ids: list[str], updated_after: datetime, updated_before: datetime, *,
        by_order_date: bool = False,
    ) -> Iterator[Order | UnparsableOrder]:
        """Orders last updated in [updated_after, updated_before] from
        GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL, in windows of ≤ 30 days, each order once
        (``source="report"``); ``by_order_date``: orders placed in the range (…_BY_ORDER_DATE_GENERAL)."""
        return self.reports.fetch_orders_report(marketplace_ids, updated_after, updated_before,
                                                by_order_date=by_order_date)

    def fetch_listings(self, marketplace_id: str) -> Iterator[Listing]:
        """Every listing of one marketplace from GET_MERCHANT_LISTINGS_ALL_DATA (a fresh snapshot)."""
        return listings.fetch_listings(self.reports, marketplace_id)

    # --- catalog (amz2erp.amazon.catalog) ---------------------------------------------------------------

    def fetch_catalog_items(self, asins: list[str], marketplace_id: str) -> dict[str, CatalogItem]:
        """Catalog Items 2022-04-01 searchCatalogItems, 20 ASINs per call. ASINs Amazon does not know are
        simply absent from the result."""
        return catalog.fetch_catalog_items(self.caller, self.transport, asins, marketplace_id)

    # --- settlements (amz2erp.amazon.settlements) ------------------------------------------------------

    def list_settlement_reports(self, created_since: datetime | None,
                                marketplace_ids: Iterable[str]) -> list[SettlementReportRef]:
        """Closed settlement reports of these marketplaces Amazon still serves, created since
        ``max(created_since − 2 days, now − 89 days)``, oldest first, one per report document."""
        return self.settlements.list_settlement_reports(created_since, marketplace_ids)

    def fetch_settlement(self, document_id: str) -> Settlement:
        """One settlement report document, downloaded and parsed (the parser's errors for a bad one)."""
        return self.settlements.fetch_settlement(document_id)

    def list_financial_event_groups(self, started_after: datetime,
                                    started_before: datetime | None = None) -> list[dict[str, Any]]:
        """Finances v0 financial event groups started in [after, before), oldest first, open ones included."""
        return self.settlements.list_financial_event_groups(started_after, started_before)

    def list_group_transactions(self, group_id: str) -> list[dict[str, Any]]:
        """Every Finances 2024-06-19 transaction of one financial event group."""
        return self.settlements.list_group_transactions(group_id)

    # --- introspection --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "retries": dict(self.retries),
            "throttles": dict(self.throttles),
            "rate_limit_wait_s": round(self.limiter.waited, 3),
        }


__all__ = ["AmazonClient", "ReportTuning", "SettlementReportRef"]
