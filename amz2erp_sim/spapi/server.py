"""A faithful local Selling Partner API simulator (LWA + SP-API + "S3" report documents) on 127.0.0.1.

Usage::

    from amz2erp_sim.spapi import SpApiSimulator
    with SpApiSimulator(clock=clock, listings=listings, orders=orders) as sim:
        client.endpoint = sim.url          # python-amazon-sp-api, see sp-api-technical.md §2
        ...

or from a shell: ``python -m amz2erp_sim.spapi --port 0 --listings 50 --orders 200 --seed 1``.

What it serves (paths exactly as in Amazon's models):

* ``POST /auth/o2/token`` (LWA refresh-token grant) and ``GET /documents/<id>`` (pre-signed report URL);
* Orders v0: getOrders, getOrder, getOrderItems, getOrderAddress, getOrderBuyerInfo, getOrderItemsBuyerInfo;
* Orders 2026-01-01: searchOrders, getOrder (operation name ``getOrder2026``);
* Tokens 2021-03-01: createRestrictedDataToken;
* Reports 2021-06-30: createReport, getReports, getReport, cancelReport, getReportDocument
  (GET_MERCHANT_LISTINGS_ALL_DATA, GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL,
  GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL);
* Catalog Items 2022-04-01: searchCatalogItems, getCatalogItem;
* Sellers v1: getMarketplaceParticipations; Finances v0: listFinancialEventsByOrderId.
* Settlements (``amz2erp_sim.spapi.settlements``): GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2 reports listed by
  getReports once published (createReport refuses the type, as Amazon does), Finances v0
  listFinancialEventGroups and Finances 2024-06-19 listTransactions. Reports of any type older than 90 days
  are neither listed nor downloadable. ``settlement_listed_per_eu_marketplace = True`` lists an EU settlement
  once per EU marketplace of the seller (same document), as unified EU accounts see it.

Time ("now", rate-limit buckets, report processing) comes from the ``clock`` (``amz2erp.clock``), so a
benchmark can run Amazon's real limits on simulated time. Faults (429, 500, HTML 503, timeout, connection
reset, truncated body) are injected deterministically from ``FaultConfig.seed`` or on demand
(``fail_next``). With ``strict=True`` and ``models_dir`` (a folder of Amazon's official model files) requests
are checked against the models and violations answered 400 ``InvalidInput`` and recorded in
``contract_violations``; without ``models_dir`` nothing is checked against them.

Fidelity notes (choices where Amazon's behaviour is not pinned down by the models):

* Access tokens never expire unless ``access_token_ttl`` is set (the library caches tokens on *real* time,
  which would break simulated-time runs). RDTs expire after 3600 s of clock time.
* v0 PII: without an RDT covering the path, ``BuyerInfo`` is ``{}`` and ``ShippingAddress`` has only City,
  StateOrRegion, PostalCode, CountryCode; item ``BuyerInfo`` (gift wrap price/tax) appears only with an RDT
  granting ``buyerInfo``. ``OrderTotal`` is omitted for Pending/PendingAvailability/Canceled orders.
* 2026-01-01: ``fulfillment`` (status), ``proceeds``, ``promotion``, ``tax`` appear only when requested in
  ``includedData``; ``buyer``/``recipient`` only when requested *and* ``pii_allowed`` (silently omitted
  otherwise). Proceeds ``DISCOUNT`` amounts are negative so breakdowns sum to ``proceedsTotal``; the TAX
  breakdown's ``DISCOUNT`` subtype carries −(promotion + shipping discount tax).
* Flat-file orders report: ``item-tax``/``shipping-tax`` are net of the discount taxes (the report has no
  discount-tax columns), so a row's columns still add up to the API's order total; ``order-status`` uses the
  v0 spelling; prices are empty for pending orders; extra columns ``tax-collection-model`` and
  ``tax-collection-responsible-party`` as seen in the field, or Amazon's documented columns only with
  ``report_tax_columns=False``. Documents are gzip'd Cp1252 (unencodable characters become ``?``).
* Pagination tokens snapshot the matching ids at the first page; later pages render current data.
* Random faults are drawn per request in arrival order, so they are deterministic for sequential clients.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import random
import re
import secrets
import socket
import struct
import threading
import time
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from amz2erp import limits
from amz2erp.clock import Clock, SystemClock
from amz2erp.marketplaces import BY_ID as PRODUCT_MARKETPLACES
from amz2erp_sim import datagen, serve_until_interrupted
from amz2erp_sim.datagen import (
    MARKETPLACES_BY_ID,
    PENDING_STATUSES,
    STATUS_2026,
    V0_STATUSES,
    SimListing,
    SimOrder,
    SimOrderItem,
    marketplace,
)
from amz2erp_sim.spapi import models as spapi_models
from amz2erp_sim.spapi import settlements as sim_settlements

# --------------------------------------------------------------------------- configuration

#: default usage plans (rate per second, burst), from the models' "Usage Plan" tables
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "getOrders": (0.0167, 20),
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getOrderAddress": (0.5, 30),
    "getOrderBuyerInfo": (0.5, 30),
    "getOrderItemsBuyerInfo": (0.5, 30),
    "searchOrders": (0.0056, 20),
    "getOrder2026": (0.5, 30),
    "createRestrictedDataToken": (1.0, 10),
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReports": (0.0222, 10),
    "cancelReport": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
    "searchCatalogItems": (2.0, 2),
    "getCatalogItem": (2.0, 2),
    "getMarketplaceParticipations": (0.016, 15),
    "getAccount": (0.016, 15),
    "listFinancialEventsByOrderId": (0.5, 30),
    "listFinancialEventGroups": (0.5, 30),
    "listTransactions": (0.5, 10),
}

FAULT_KINDS = ("429", "500", "html503", "timeout", "reset", "truncated")
#: operations that are not SP-API calls (never rate limited; faults only with include_auth / explicitly)
AUTH_OPERATION = "lwaToken"
DOCUMENT_OPERATION = "downloadReportDocument"

REPORT_TYPES = (
    "GET_MERCHANT_LISTINGS_ALL_DATA",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
)
LISTINGS_COLUMNS = (
    "item-name", "item-description", "listing-id", "seller-sku", "price", "quantity", "open-date", "image-url",
    "item-is-marketplace", "product-id-type", "zshop-shipping-fee", "item-note", "item-condition",
    "zshop-category1", "zshop-browse-path", "zshop-storefront-feature", "asin1", "asin2", "asin3",
    "will-ship-internationally", "expedited-shipping", "zshop-boldface", "product-id",
    "bid-for-featured-placement", "add-delete", "pending-quantity", "fulfillment-channel",
    "merchant-shipping-group", "status",
)  # fmt: skip
ORDERS_COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "ship-service-level", "product-name", "sku", "asin",
    "item-status", "quantity", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax",
    "gift-wrap-price", "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order",
    "purchase-order-number", "price-designation", "tax-collection-model", "tax-collection-responsible-party",
)  # fmt: skip
#: the orders report's columns as Amazon documents them: no tax-collection columns
DOCUMENTED_ORDERS_COLUMNS = tuple(c for c in ORDERS_COLUMNS if not c.startswith("tax-collection-"))


@dataclass
class FaultConfig:
    """Random fault injection. ``rate`` is the probability per SP-API request; ``kinds`` are drawn
    uniformly. ``operations`` restricts faults to those operation names (None = all SP-API operations
    and report document downloads). ``include_auth`` also hits ``POST /auth/o2/token``."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    timeout_seconds: float = 1.0
    include_auth: bool = False
    operations: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; known: {FAULT_KINDS}")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # timeout / reset: handled by the HTTP layer


@dataclass
class _Report:
    report_id: str
    report_type: str
    marketplace_ids: list[str]
    data_start: datetime | None
    data_end: datetime | None
    created: datetime
    outcome: str  # DONE | CANCELLED | FATAL
    document_id: str | None
    cancelled: bool = False


class _Bucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = now

    def take(self, now: float) -> bool:
        if now > self.last:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


# --------------------------------------------------------------------------- helpers


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_offset(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def parse_datetime(value: str) -> datetime:
    """ISO 8601 (``Z``, offsets, fractional seconds; a space instead of ``T`` is tolerated). Naive → UTC."""
    v = value.strip()
    if v.endswith("Z") or v.endswith("z"):
        v = v[:-1] + "+00:00"
    if len(v) >= 11 and v[10] == " ":
        v = v[:10] + "T" + v[11:]
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": str(amount)}


def _money26(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(amount), "currencyCode": currency}


def _currency_fin(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"CurrencyCode": currency, "CurrencyAmount": float(amount)}


def _err_body(code: str, message: str, details: str = "") -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "details": details}]}).encode()


def _tsv_cell(value: Any) -> str:
    s = "" if value is None else str(value)
    return s.replace("\t", " ").replace("\r", " ").replace("\n", " ")


class _Ctx:
    def __init__(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.raw_body = body
        self.params: dict[str, str] = {}
        self.operation = ""
        self.token: str | None = None

    def first(self, name: str) -> str | None:
        vals = self.query.get(name)
        if not vals:
            return None
        return vals[-1]

    def list(self, name: str) -> list[str]:
        out: list[str] = []
        for v in self.query.get(name, []):
            out.extend(x.strip() for x in v.split(",") if x.strip())
        return out

    def json(self) -> Any:
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "InvalidInput", "The request body is not valid JSON.") from exc


def _bad(message: str) -> ApiError:
    return ApiError(400, "InvalidInput", message)


# --------------------------------------------------------------------------- simulator


class SpApiSimulator:
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        listings: Iterable[SimListing] = (),
        orders: Iterable[SimOrder] = (),
        rate_limits: bool | dict[str, tuple[float, int]] = True,
        faults: FaultConfig | None = None,
        pii_allowed: bool = True,
        report_processing_seconds: float = 30.0,
        lwa_refresh_token: str = "sim-refresh-token",
        lwa_client_id: str = "sim-client-id",
        lwa_client_secret: str = "sim-client-secret",
        strict: bool = True,
        seller_marketplaces: Iterable[str] | None = None,
        order_items_page_size: int = 30,
        access_token_ttl: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seller_id: str = "A2SIMSELLER01X",
        models_dir: str | Path | None = None,
        report_tax_columns: bool = True,
        settlement_list: Iterable[sim_settlements.SimSettlement] | None = None,
        settlement_seed: int = 1,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._listings: dict[tuple[str, str], SimListing] = {}
        self._orders: dict[str, SimOrder] = {}
        self.add_listings(listings)
        self.add_orders(orders)
        self.rate_limits_enabled = bool(rate_limits)
        self._limits = dict(RATE_LIMITS)
        if isinstance(rate_limits, dict):
            self._limits.update(rate_limits)
        self._buckets: dict[str, _Bucket] = {}
        self.faults = faults or FaultConfig()
        self._fault_rng = random.Random(self.faults.seed)
        self._forced_faults: list[tuple[str, str | None]] = []
        self.pii_allowed = pii_allowed
        self.report_processing_seconds = report_processing_seconds
        self.lwa_refresh_token = lwa_refresh_token
        self.lwa_client_id = lwa_client_id
        self.lwa_client_secret = lwa_client_secret
        self.strict = strict
        self.models = spapi_models.load_models(models_dir) if strict and models_dir is not None else None
        self._seller_marketplaces = list(seller_marketplaces) if seller_marketplaces is not None else None
        self.order_items_page_size = order_items_page_size
        self.access_token_ttl = access_token_ttl
        self.seller_id = seller_id
        #: the orders report with the tax-collection columns seen in the field (True) or as documented (False)
        self.report_tax_columns = report_tax_columns
        self._host = host
        self._port = port
        self._access_tokens: dict[str, datetime] = {}
        self._rdts: dict[str, dict[str, Any]] = {}
        self._page_tokens: dict[str, dict[str, Any]] = {}
        self._reports: dict[str, _Report] = {}
        self._documents: dict[str, bytes] = {}
        self._report_seq = 50000
        self._doc_seq = 0
        self._fail_reports = 0
        self._request_seq = 0
        self.request_log: list[dict[str, Any]] = []
        self.contract_violations: list[dict[str, Any]] = []
        self.server_errors: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()
        self.settlement_seed = settlement_seed
        self._settlements: list[sim_settlements.SimSettlement] | None = (
            list(settlement_list) if settlement_list is not None else None
        )
        self._published: dict[str, int] = {}  # settlement-id -> how many reports were published for it
        self._plain_documents: set[str] = set()
        self.transactions_page_size = 500
        #: list each EU settlement report again under the seller's other EU marketplaces (issues #1557, #969)
        self.settlement_listed_per_eu_marketplace = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SpApiSimulator:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"sim": self})
        server = ThreadingHTTPServer((self._host, self._port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="spapi-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SpApiSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def lwa_url(self) -> str:
        return f"{self.url}/auth/o2/token"

    @property
    def credentials(self) -> dict[str, str]:
        """The credentials dict python-amazon-sp-api expects (``credentials=``)."""
        return {
            "refresh_token": self.lwa_refresh_token,
            "lwa_app_id": self.lwa_client_id,
            "lwa_client_secret": self.lwa_client_secret,
        }

    # ------------------------------------------------------------------ data & mutations

    def add_listings(self, listings: Iterable[SimListing]) -> None:
        with self._lock:
            for lst in listings:
                self._listings[(lst.sku, lst.marketplace_id)] = lst

    def add_orders(self, orders: Iterable[SimOrder]) -> None:
        with self._lock:
            for o in orders:
                self._orders[o.amazon_order_id] = o

    @property
    def orders(self) -> list[SimOrder]:
        """Deep copies of the current orders (the truth an importer should reproduce)."""
        with self._lock:
            return [datagen.copy_order(o) for o in self._orders.values()]

    @property
    def listings(self) -> list[SimListing]:
        with self._lock:
            return [datagen.copy_listing(x) for x in self._listings.values()]

    def order(self, order_id: str) -> SimOrder:
        with self._lock:
            return datagen.copy_order(self._orders[order_id])

    def _now(self) -> datetime:
        return self.clock.now().astimezone(timezone.utc).replace(microsecond=0)

    def ship_order(self, order_id: str) -> None:
        with self._lock:
            datagen.ship_order(self._orders[order_id], self._now())

    def cancel_order(self, order_id: str) -> None:
        with self._lock:
            datagen.cancel_order(self._orders[order_id], self._now())

    def partially_cancel(self, order_id: str, order_item_id: str, qty: int) -> None:
        """Cancel ``qty`` units of one order line."""
        with self._lock:
            datagen.partially_cancel(self._orders[order_id], order_item_id, qty, self._now())

    def set_listing_price(self, sku: str, marketplace_id: str, price: Decimal | str | float) -> None:
        with self._lock:
            datagen.set_listing_price(self._listings[(sku, marketplace_id)], price, self._now())

    def set_listing_title(self, sku: str, marketplace_id: str, title: str) -> None:
        with self._lock:
            datagen.set_listing_title(self._listings[(sku, marketplace_id)], title, self._now())

    # ------------------------------------------------------------------ faults, limits, stats

    def set_faults(self, faults: FaultConfig | None = None, **kwargs: Any) -> None:
        with self._lock:
            self.faults = faults if faults is not None else FaultConfig(**kwargs)
            self._fault_rng = random.Random(self.faults.seed)

    def fail_next(self, kind: str, count: int = 1, operation: str | None = None) -> None:
        """Force the next ``count`` matching requests to fail with ``kind`` (one of FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(kind)
        with self._lock:
            self._forced_faults.extend([(kind, operation)] * count)

    def fail_next_reports(self, n: int = 1) -> None:
        """The next ``n`` created reports end FATAL."""
        with self._lock:
            self._fail_reports += n

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._buckets.clear()

    def switch_clock(
        self, clock: Clock, *, report_processing_seconds: float | None = None, min_rate: float | None = None,
        min_burst: int | None = None,
    ) -> None:
        """Continue on another clock (`demo --keep`: from the demo's simulated time onto the real one, which
        commands typed by hand use). Rate-limit buckets start full again: their times were on the old clock.
        ``min_rate``/``min_burst`` raise every usage plan to at least that, so a person can run commands by
        hand (Amazon's real plans allow one getMarketplaceParticipations a minute)."""
        with self._lock:
            self.clock = clock
            self._buckets.clear()
            if report_processing_seconds is not None:
                self.report_processing_seconds = report_processing_seconds
            if min_rate is not None or min_burst is not None:
                self._limits = {
                    op: (max(rate, min_rate or 0.0), max(burst, min_burst or 0))
                    for op, (rate, burst) in self._limits.items()
                }

    def operation_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(e["operation"] for e in self.request_log)

    # ------------------------------------------------------------------ dispatch

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], str, Callable[[_Ctx], Response]]]:
        seg = r"(?P<{}>[^/]+)"
        table: list[tuple[str, str, str, Callable[[_Ctx], Response]]] = [
            ("POST", "/auth/o2/token", AUTH_OPERATION, self._op_lwa),
            ("GET", "/documents/" + seg.format("documentId"), DOCUMENT_OPERATION, self._op_download),
            ("GET", "/orders/v0/orders", "getOrders", self._op_get_orders),
            ("GET", "/orders/v0/orders/" + seg.format("orderId"), "getOrder", self._op_get_order),
            ("GET", "/orders/v0/orders/" + seg.format("orderId") + "/orderItems", "getOrderItems", self._op_get_order_items),
            ("GET", "/orders/v0/orders/" + seg.format("orderId") + "/orderItems/buyerInfo", "getOrderItemsBuyerInfo",
             self._op_get_order_items_buyer_info),
            ("GET", "/orders/v0/orders/" + seg.format("orderId") + "/address", "getOrderAddress", self._op_get_order_address),
            ("GET", "/orders/v0/orders/" + seg.format("orderId") + "/buyerInfo", "getOrderBuyerInfo", self._op_get_order_buyer_info),
            ("GET", "/orders/2026-01-01/orders", "searchOrders", self._op_search_orders),
            ("GET", "/orders/2026-01-01/orders/" + seg.format("orderId"), "getOrder2026", self._op_get_order_2026),
            ("POST", "/tokens/2021-03-01/restrictedDataToken", "createRestrictedDataToken", self._op_rdt),
            ("POST", "/reports/2021-06-30/reports", "createReport", self._op_create_report),
            ("GET", "/reports/2021-06-30/reports", "getReports", self._op_get_reports),
            ("GET", "/reports/2021-06-30/reports/" + seg.format("reportId"), "getReport", self._op_get_report),
            ("DELETE", "/reports/2021-06-30/reports/" + seg.format("reportId"), "cancelReport", self._op_cancel_report),
            ("GET", "/reports/2021-06-30/documents/" + seg.format("reportDocumentId"), "getReportDocument",
             self._op_get_report_document),
            ("GET", "/catalog/2022-04-01/items", "searchCatalogItems", self._op_search_catalog),
            ("GET", "/catalog/2022-04-01/items/" + seg.format("asin"), "getCatalogItem", self._op_get_catalog_item),
            ("GET", "/sellers/v1/marketplaceParticipations", "getMarketplaceParticipations", self._op_participations),
            ("GET", "/sellers/v1/account", "getAccount", self._op_account),
            ("GET", "/finances/v0/orders/" + seg.format("orderId") + "/financialEvents", "listFinancialEventsByOrderId",
             self._op_financial_events),
            ("GET", "/finances/v0/financialEventGroups", "listFinancialEventGroups", self._op_list_event_groups),
            ("GET", "/finances/2024-06-19/transactions", "listTransactions", self._op_list_transactions),
        ]  # fmt: skip
        return [(m, re.compile("^" + p + "$"), op, fn) for m, p, op, fn in table]

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str], Callable[[_Ctx], Response]] | None:
        path_known = False
        for m, rx, op, fn in self._routes:
            mt = rx.match(path)
            if mt:
                path_known = True
                if m == method:
                    params = {k: urllib.parse.unquote(v) for k, v in mt.groupdict().items()}
                    return op, params, fn
        if path_known:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
        return None

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(
            status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json", headers or {}
        )

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        """Process one HTTP request (thread-safe). Used by the HTTP handler; also callable directly."""
        split = urllib.parse.urlsplit(raw_path)
        path = split.path
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        ctx = _Ctx(method, path, query, {k.lower(): v for k, v in headers.items()}, body)
        with self._lock:
            self._request_seq += 1
            request_id = f"sim-{self._request_seq:08d}-{secrets.token_hex(4)}"
            try:
                resp = self._dispatch(ctx)
            except ApiError as exc:
                resp = Response(exc.status, _err_body(exc.code, exc.message, exc.details))
            except Exception:  # a simulator bug: answer like Amazon's 500 and keep the trace
                self.server_errors.append(traceback.format_exc())
                resp = Response(500, _err_body("InternalFailure", "We encountered an internal error."))
            resp.headers.setdefault("x-amzn-RequestId", request_id)
            limit = self._limits.get(ctx.operation)
            if limit is not None:
                resp.headers.setdefault("x-amzn-RateLimit-Limit", f"{limit[0]:g}")
            self.request_log.append(
                {
                    "operation": ctx.operation or "unknown",
                    "method": method,
                    "path": path,
                    "params": {k: (v[0] if len(v) == 1 else v) for k, v in query.items()},
                    "status": resp.status if resp.fault is None else resp.fault,
                    "sim_time": self.clock.now(),
                    "real_time": time.time(),
                }
            )
        return resp

    def _draw_fault(self, operation: str) -> str | None:
        for i, (kind, op) in enumerate(self._forced_faults):
            if op is None or op == operation:
                del self._forced_faults[i]
                return kind
        f = self.faults
        if f.rate <= 0:
            return None
        if operation == AUTH_OPERATION and not f.include_auth:
            return None
        if f.operations is not None and operation not in f.operations:
            return None
        if self._fault_rng.random() < f.rate:
            return self._fault_rng.choice(f.kinds)
        return None

    def _dispatch(self, ctx: _Ctx) -> Response:
        matched = self._match(ctx.method, ctx.path)
        if matched is None:
            raise ApiError(404, "NotFound", f"Resource {ctx.path} is not found.")
        ctx.operation, ctx.params, fn = matched
        is_api = ctx.operation not in (AUTH_OPERATION, DOCUMENT_OPERATION)
        if is_api:
            token = ctx.headers.get("x-amz-access-token")
            if not token or not self._token_valid(token):
                raise ApiError(403, "Unauthorized", "Access to requested resource is denied.",
                               "The access token you provided is revoked, malformed or invalid.")  # fmt: skip
            ctx.token = token
        fault = None
        if ctx.operation != AUTH_OPERATION or self.faults.include_auth:
            fault = self._draw_fault(ctx.operation)
        if fault == "429":
            return self._throttled(ctx.operation)
        if fault == "500":
            return Response(
                500, _err_body("InternalFailure", "We encountered an internal error. Please try again.")
            )
        if fault == "html503":
            html = b"<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>"
            return Response(503, html, "text/html")
        if fault in ("timeout", "reset"):
            return Response(0, b"", fault=fault)
        if is_api and self.rate_limits_enabled:
            limit = self._limits.get(ctx.operation)
            if limit is not None:
                now_m = self.clock.monotonic()
                bucket = self._buckets.get(ctx.operation)
                if bucket is None:
                    bucket = self._buckets[ctx.operation] = _Bucket(limit[0], limit[1], now_m)
                if not bucket.take(now_m):
                    return self._throttled(ctx.operation)
        if is_api and self.strict:
            self._check_contract(ctx)
        resp = fn(ctx)
        if fault == "truncated":
            resp.body = resp.body[: max(1, len(resp.body) // 2)]
        return resp

    def _throttled(self, operation: str) -> Response:
        limit = self._limits.get(operation, (1.0, 1))
        return Response(
            429,
            _err_body("QuotaExceeded", "You exceeded your quota for the requested resource."),
            headers={"x-amzn-RateLimit-Limit": f"{limit[0]:g}"},
        )

    def _violation(self, ctx: _Ctx, errors: list[str]) -> None:
        self.contract_violations.append(
            {"operation": ctx.operation, "path": ctx.path, "errors": errors, "sim_time": self.clock.now()}
        )
        raise _bad("; ".join(errors))

    def _check_contract(self, ctx: _Ctx) -> None:
        if self.models is None:
            return
        op = ctx.operation
        if op == "getReports" and ctx.first("nextToken"):
            return
        if op == "searchOrders" and ctx.first("paginationToken"):
            return
        skip: tuple[str, ...] = ("MarketplaceIds",) if op == "getOrders" and ctx.first("NextToken") else ()
        body = None
        if ctx.method in ("POST", "PUT", "PATCH"):
            body = ctx.json()
            if body is None:
                body = None
        errors = spapi_models.validate_request(op, ctx.query, body, self.models, skip_required=skip)
        if errors:
            self._violation(ctx, errors)

    # ------------------------------------------------------------------ auth

    def _token_valid(self, token: str) -> bool:
        now = self.clock.now()
        exp = self._access_tokens.get(token)
        if exp is not None:
            return self.access_token_ttl is None or exp > now
        rdt = self._rdts.get(token)
        return rdt is not None and rdt["expires"] > now

    def _op_lwa(self, ctx: _Ctx) -> Response:
        try:
            form = urllib.parse.parse_qs(ctx.raw_body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            form = {}

        def one(k: str) -> str | None:
            v = form.get(k)
            return v[0] if v else None

        if one("grant_type") != "refresh_token":
            return self._json(400, {"error": "unsupported_grant_type", "error_description": "The authorization grant type is not supported by the authorization server"})  # fmt: skip
        if one("client_id") != self.lwa_client_id or one("client_secret") != self.lwa_client_secret:
            return self._json(
                401, {"error": "invalid_client", "error_description": "Client authentication failed"}
            )
        if one("refresh_token") != self.lwa_refresh_token:
            return self._json(400, {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter : refresh_token"})  # fmt: skip
        token = "Atza|sim-" + secrets.token_urlsafe(24)
        ttl = self.access_token_ttl or 3600
        self._access_tokens[token] = self.clock.now() + timedelta(seconds=ttl)
        return self._json(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": int(ttl),
                "refresh_token": self.lwa_refresh_token,
            },
        )

    def _op_rdt(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("restrictedResources"), list)
            or not body["restrictedResources"]
        ):
            raise _bad("restrictedResources is required.")
        if not self.pii_allowed:
            raise ApiError(
                403, "Unauthorized", "Application do not have access to some or all requested resource"
            )
        resources = []
        for r in body["restrictedResources"]:
            if not isinstance(r, dict) or "method" not in r or "path" not in r:
                raise _bad("Each restricted resource needs method and path.")
            resources.append(
                {
                    "method": str(r["method"]).upper(),
                    "path": str(r["path"]),
                    "dataElements": list(r.get("dataElements") or []),
                }
            )
        token = "Atz.sprdt|sim-" + secrets.token_urlsafe(24)
        self._rdts[token] = {"resources": resources, "expires": self.clock.now() + timedelta(seconds=3600)}
        return self._json(200, {"restrictedDataToken": token, "expiresIn": 3600})

    def _pii(self, ctx: _Ctx) -> set[str]:
        """Data elements the request's RDT unlocks for this path (empty without an RDT)."""
        rdt = self._rdts.get(ctx.token or "")
        if rdt is None:
            return set()
        granted: set[str] = set()
        for r in rdt["resources"]:
            if r["method"] != ctx.method:
                continue
            rx = "^" + re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(r["path"])) + "$"
            if re.match(rx, ctx.path) or r["path"] == ctx.path:
                elems = r["dataElements"] or ["buyerInfo", "shippingAddress", "buyerTaxInformation"]
                granted.update(elems)
        return granted

    # ------------------------------------------------------------------ orders v0

    def _visible(self, o: SimOrder, now: datetime) -> bool:
        market = PRODUCT_MARKETPLACES.get(o.marketplace_id)
        horizon = limits.orders_horizon(now, [market] if market else [])
        return horizon is None or o.purchase_date >= horizon

    def _order_v0(self, o: SimOrder, pii: set[str]) -> dict[str, Any]:
        mp = marketplace(o.marketplace_id)
        d: dict[str, Any] = {
            "AmazonOrderId": o.amazon_order_id,
            "PurchaseDate": iso(o.purchase_date),
            "LastUpdateDate": iso(o.last_update_date),
            "OrderStatus": o.status,
            "FulfillmentChannel": o.fulfillment_channel,
            "SalesChannel": mp.name,
            "ShipServiceLevel": o.ship_service_level,
            "NumberOfItemsShipped": o.number_of_items_shipped,
            "NumberOfItemsUnshipped": o.number_of_items_unshipped,
            "PaymentMethod": "Other",
            "PaymentMethodDetails": ["Standard"],
            "MarketplaceId": o.marketplace_id,
            "ShipmentServiceLevelCategory": "Standard",
            "OrderType": o.order_type,
            "EarliestShipDate": iso(o.earliest_ship_date),
            "LatestShipDate": iso(o.latest_ship_date),
            "EarliestDeliveryDate": iso(o.earliest_delivery_date),
            "LatestDeliveryDate": iso(o.latest_delivery_date),
            "IsBusinessOrder": o.is_business,
            "IsPrime": o.is_prime,
            "IsPremiumOrder": False,
            "IsGlobalExpressEnabled": False,
            "IsReplacementOrder": o.is_replacement,
            "IsSoldByAB": False,
            "IsISPU": False,
            "IsAccessPointOrder": False,
            "HasRegulatedItems": False,
        }
        if o.seller_order_id:
            d["SellerOrderId"] = o.seller_order_id
        if o.is_replacement and o.replaced_order_id:
            d["ReplacedOrderId"] = o.replaced_order_id
        if o.prices_visible and o.status != "Canceled":
            d["OrderTotal"] = _money(o.order_total, o.currency)
        if o.status in ("Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"):
            d["ShippingAddress"] = self._address_v0(o, "shippingAddress" in pii)
        buyer: dict[str, Any] = {}
        if "buyerInfo" in pii:
            buyer = {"BuyerEmail": o.buyer_email, "BuyerName": o.buyer_name}
            if o.purchase_order_number:
                buyer["PurchaseOrderNumber"] = o.purchase_order_number
        d["BuyerInfo"] = buyer
        return d

    def _address_v0(self, o: SimOrder, full: bool) -> dict[str, Any]:
        a = o.shipping_address
        out: dict[str, Any] = {}
        if full:
            out["Name"] = a.name
            out["AddressLine1"] = a.line1
            if a.line2:
                out["AddressLine2"] = a.line2
        out["City"] = a.city
        if a.state:
            out["StateOrRegion"] = a.state
        out["PostalCode"] = a.postal_code
        out["CountryCode"] = a.country_code
        if full:
            if o.fulfillment_channel == "MFN":
                out["Phone"] = a.phone
            out["AddressType"] = a.address_type
        return out

    def _item_v0(self, o: SimOrder, it: SimOrderItem, pii: set[str]) -> dict[str, Any]:
        cur = o.currency
        d: dict[str, Any] = {
            "ASIN": it.asin,
            "SellerSKU": it.sku,
            "OrderItemId": it.order_item_id,
            "Title": it.title,
            "QuantityOrdered": it.quantity_ordered,
            "QuantityShipped": it.quantity_shipped,
            "ProductInfo": {"NumberOfItems": "1"},
            "ConditionId": it.condition,
            "ConditionSubtypeId": it.condition,
            "IsTransparency": False,
            "SerialNumberRequired": False,
        }
        if o.prices_visible:
            d.update(
                {
                    "ItemPrice": _money(it.item_price, cur),
                    "ItemTax": _money(it.item_tax, cur),
                    "ShippingPrice": _money(it.shipping_price, cur),
                    "ShippingTax": _money(it.shipping_tax, cur),
                    "ShippingDiscount": _money(it.shipping_discount, cur),
                    "ShippingDiscountTax": _money(it.shipping_discount_tax, cur),
                    "PromotionDiscount": _money(it.promotion_discount, cur),
                    "PromotionDiscountTax": _money(it.promotion_discount_tax, cur),
                    "IsGift": "true" if it.is_gift else "false",
                }
            )
            if it.promotion_ids:
                d["PromotionIds"] = list(it.promotion_ids)
            if it.tax_collection_model:
                d["TaxCollection"] = {
                    "Model": it.tax_collection_model,
                    "ResponsibleParty": "Amazon Services, Inc.",
                }
            if "buyerInfo" in pii and it.is_gift:
                d["BuyerInfo"] = self._item_buyer_info(o, it)
        return d

    def _item_buyer_info(self, o: SimOrder, it: SimOrderItem) -> dict[str, Any]:
        return {
            "GiftWrapPrice": _money(it.gift_wrap_price, o.currency),
            "GiftWrapTax": _money(it.gift_wrap_tax, o.currency),
            "GiftMessageText": it.gift_message,
            "GiftWrapLevel": "Classic",
        }

    def _new_page_token(self, state: dict[str, Any]) -> str:
        token = secrets.token_urlsafe(24)
        self._page_tokens[token] = state
        return token

    def _time_window(
        self, ctx: _Ctx, names: tuple[str, str, str, str]
    ) -> tuple[str, datetime, datetime, str]:
        """Validate the Created*/LastUpdated* family rules. Returns (field, after, before, echo_key)."""
        ca_n, cb_n, la_n, lb_n = names
        ca, cb, la, lb = (ctx.first(n) for n in names)
        if bool(ca) == bool(la):
            raise _bad(f"Exactly one of {ca_n} and {la_n} must be specified.")
        if (ca and lb) or (la and cb):
            raise _bad(f"{ca_n}/{cb_n} cannot be combined with {la_n}/{lb_n}.")
        after_s, before_s, after_n, before_n = (ca, cb, ca_n, cb_n) if ca else (la, lb, la_n, lb_n)
        try:
            after = parse_datetime(after_s or "")
        except ValueError as exc:
            raise _bad(f"{after_n} is not a valid ISO 8601 date-time: {after_s!r}") from exc
        limit = self._now() - limits.ORDERS_LAG
        if before_s:
            try:
                before = parse_datetime(before_s)
            except ValueError as exc:
                raise _bad(f"{before_n} is not a valid ISO 8601 date-time: {before_s!r}") from exc
            if before > limit:
                raise _bad(
                    f"{before_n} must be no later than two minutes before the time the request was submitted."
                )
            if before < after:
                raise _bad(f"{before_n} must be equal to or later than {after_n}.")
        else:
            before = limit
        if after > limit:
            raise _bad(
                f"{after_n} must be no later than two minutes before the time the request was submitted."
            )
        return ("created" if ca else "updated"), after, before, before_n

    def _op_get_orders(self, ctx: _Ctx) -> Response:
        token = ctx.first("NextToken")
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "getOrders":
                raise _bad("Invalid NextToken.")
        else:
            mids = ctx.list("MarketplaceIds")
            if not mids:
                raise _bad("MarketplaceIds is required.")
            if len(mids) > 50:
                raise _bad("MarketplaceIds accepts at most 50 values.")
            family, after, before, echo_key = self._time_window(
                ctx, ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
            )
            statuses = ctx.list("OrderStatuses")
            bad = [s for s in statuses if s not in V0_STATUSES]
            if bad:
                self._violation(ctx, [f"OrderStatuses: invalid value(s) {bad}"])
            channels = ctx.list("FulfillmentChannels")
            if [c for c in channels if c not in ("AFN", "MFN")]:
                self._violation(ctx, [f"FulfillmentChannels: invalid value(s) {channels}"])
            ids = ctx.list("AmazonOrderIds")
            if len(ids) > 50:
                raise _bad("AmazonOrderIds accepts at most 50 values.")
            size = self._int_param(ctx, "MaxResultsPerPage", 100, 1, 100)
            now = self._now()
            sel = []
            for o in self._orders.values():
                if o.marketplace_id not in mids or not self._visible(o, now):
                    continue
                ts = o.purchase_date if family == "created" else o.last_update_date
                if not (after <= ts <= before):
                    continue
                if statuses and o.status not in statuses:
                    continue
                if channels and o.fulfillment_channel not in channels:
                    continue
                if ids and o.amazon_order_id not in ids:
                    continue
                sel.append(o)
            sel.sort(key=lambda o: (o.last_update_date, o.amazon_order_id))
            state = {"op": "getOrders", "ids": [o.amazon_order_id for o in sel], "pos": 0, "size": size,
                     "echo": (echo_key, iso(before))}  # fmt: skip
        pos, size = state["pos"], state["size"]
        page_ids = state["ids"][pos : pos + size]
        pii = self._pii(ctx)
        payload: dict[str, Any] = {
            "Orders": [self._order_v0(self._orders[i], pii) for i in page_ids if i in self._orders]
        }
        if pos + size < len(state["ids"]):
            payload["NextToken"] = self._new_page_token({**state, "pos": pos + size})
        payload[state["echo"][0]] = state["echo"][1]
        return self._json(200, {"payload": payload})

    def _int_param(self, ctx: _Ctx, name: str, default: int, lo: int, hi: int) -> int:
        raw = ctx.first(name)
        if raw is None or raw == "":
            return default
        try:
            v = int(raw)
        except ValueError as exc:
            raise _bad(f"{name} must be an integer.") from exc
        if not lo <= v <= hi:
            raise _bad(f"{name} must be between {lo} and {hi}.")
        return v

    def _get_order_or_404(self, order_id: str) -> SimOrder:
        o = self._orders.get(order_id)
        if o is None:
            raise ApiError(404, "NotFound", f"Order {order_id} was not found.")
        return o

    def _op_get_order(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        return self._json(200, {"payload": self._order_v0(o, self._pii(ctx))})

    def _op_get_order_items(self, ctx: _Ctx) -> Response:
        oid = ctx.params["orderId"]
        o = self._get_order_or_404(oid)
        token = ctx.first("NextToken")
        pos = 0
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "getOrderItems" or state.get("order") != oid:
                raise _bad("Invalid NextToken.")
            pos = state["pos"]
        size = self.order_items_page_size
        pii = self._pii(ctx)
        payload: dict[str, Any] = {
            "AmazonOrderId": oid,
            "OrderItems": [self._item_v0(o, it, pii) for it in o.items[pos : pos + size]],
        }
        if pos + size < len(o.items):
            payload["NextToken"] = self._new_page_token(
                {"op": "getOrderItems", "order": oid, "pos": pos + size}
            )
        return self._json(200, {"payload": payload})

    def _op_get_order_items_buyer_info(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        pii = self._pii(ctx)
        rows = []
        for it in o.items:
            row: dict[str, Any] = {"OrderItemId": it.order_item_id}
            if "buyerInfo" in pii and it.is_gift and o.prices_visible:
                row.update(self._item_buyer_info(o, it))
            rows.append(row)
        return self._json(200, {"payload": {"AmazonOrderId": o.amazon_order_id, "OrderItems": rows}})

    def _op_get_order_address(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        payload: dict[str, Any] = {"AmazonOrderId": o.amazon_order_id}
        if o.status in ("Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"):
            payload["ShippingAddress"] = self._address_v0(o, "shippingAddress" in self._pii(ctx))
        return self._json(200, {"payload": payload})

    def _op_get_order_buyer_info(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        payload: dict[str, Any] = {"AmazonOrderId": o.amazon_order_id}
        if "buyerInfo" in self._pii(ctx):
            payload.update({"BuyerEmail": o.buyer_email, "BuyerName": o.buyer_name})
            if o.purchase_order_number:
                payload["PurchaseOrderNumber"] = o.purchase_order_number
        return self._json(200, {"payload": payload})

    # ------------------------------------------------------------------ orders 2026-01-01

    def _order_2026(self, o: SimOrder, included: set[str]) -> dict[str, Any]:
        mp = marketplace(o.marketplace_id)
        cur = o.currency
        d: dict[str, Any] = {
            "orderId": o.amazon_order_id,
            "createdTime": iso(o.purchase_date),
            "lastUpdatedTime": iso(o.last_update_date),
            "programs": (["PRIME"] if o.is_prime else [])
            + (["AMAZON_BUSINESS"] if o.is_business else [])
            + (["PREORDER"] if o.order_type == "Preorder" else []),
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": o.marketplace_id,
                "marketplaceName": mp.name,
            },
        }
        if o.seller_order_id:
            d["orderAliases"] = [{"aliasId": o.seller_order_id, "aliasType": "SELLER_ORDER_ID"}]
        if o.is_replacement and o.replaced_order_id:
            d["associatedOrders"] = [
                {"orderId": o.replaced_order_id, "associationType": "REPLACEMENT_ORIGINAL_ID"}
            ]
        if "BUYER" in included and self.pii_allowed:
            buyer: dict[str, Any] = {"buyerName": o.buyer_name, "buyerEmail": o.buyer_email}
            if o.purchase_order_number:
                buyer["buyerPurchaseOrderNumber"] = o.purchase_order_number
            d["buyer"] = buyer
        if "RECIPIENT" in included and self.pii_allowed and o.status not in PENDING_STATUSES:
            a = o.shipping_address
            addr: dict[str, Any] = {"name": a.name, "addressLine1": a.line1, "city": a.city, "postalCode": a.postal_code,
                                    "countryCode": a.country_code, "addressType": a.address_type.upper()}  # fmt: skip
            if a.line2:
                addr["addressLine2"] = a.line2
            if a.state:
                addr["stateOrRegion"] = a.state
            if o.fulfillment_channel == "MFN":
                addr["phone"] = a.phone
            d["recipient"] = {"deliveryAddress": addr}
        if "PROCEEDS" in included and o.prices_visible:
            totals = {
                "ITEM": Decimal(0),
                "SHIPPING": Decimal(0),
                "GIFT_WRAP": Decimal(0),
                "TAX": Decimal(0),
                "DISCOUNT": Decimal(0),
            }
            for it in o.items:
                for k, v in self._item_breakdown(it).items():
                    totals[k] += v
            d["proceeds"] = {
                "grandTotal": _money26(o.order_total, cur),
                "breakdowns": [
                    {"type": k, "subtotal": _money26(v, cur)}
                    for k, v in totals.items()
                    if v != 0 or k == "ITEM"
                ],
            }
        if "FULFILLMENT" in included:
            d["fulfillment"] = {
                "fulfillmentStatus": STATUS_2026[o.status],
                "fulfilledBy": "AMAZON" if o.fulfillment_channel == "AFN" else "MERCHANT",
                "fulfillmentServiceLevel": "STANDARD",
                "shipByWindow": {"earliestDateTime": iso(o.earliest_ship_date), "latestDateTime": iso(o.latest_ship_date)},
                "deliverByWindow": {"earliestDateTime": iso(o.earliest_delivery_date),
                                    "latestDateTime": iso(o.latest_delivery_date)},
            }  # fmt: skip
        d["orderItems"] = [self._item_2026(o, it, included) for it in o.items]
        return d

    @staticmethod
    def _item_breakdown(it: SimOrderItem) -> dict[str, Decimal]:
        return {
            "ITEM": it.item_price,
            "SHIPPING": it.shipping_price,
            "GIFT_WRAP": it.gift_wrap_price,
            "TAX": it.tax_total,
            "DISCOUNT": -(it.promotion_discount + it.shipping_discount),
        }

    def _item_2026(self, o: SimOrder, it: SimOrderItem, included: set[str]) -> dict[str, Any]:
        cur = o.currency
        product: dict[str, Any] = {
            "asin": it.asin,
            "title": it.title,
            "sellerSku": it.sku,
            "condition": {"conditionType": it.condition.upper(), "conditionSubtype": it.condition.upper()},
        }
        if o.prices_visible:
            product["price"] = {"unitPrice": _money26(it.unit_price if it.item_price else it.item_price, cur)}
        d: dict[str, Any] = {
            "orderItemId": it.order_item_id,
            "quantityOrdered": it.quantity_ordered,
            "product": product,
        }
        if "PROCEEDS" in included and o.prices_visible:
            b = self._item_breakdown(it)
            breakdowns: list[dict[str, Any]] = []
            for k, v in b.items():
                if v == 0 and k != "ITEM":
                    continue
                entry: dict[str, Any] = {"type": k, "subtotal": _money26(v, cur)}
                if k == "TAX":
                    entry["detailedBreakdowns"] = [
                        {"subtype": s, "value": _money26(x, cur)}
                        for s, x in (("ITEM", it.item_tax), ("SHIPPING", it.shipping_tax), ("GIFT_WRAP", it.gift_wrap_tax),
                                     ("DISCOUNT", -(it.promotion_discount_tax + it.shipping_discount_tax)))
                        if x != 0
                    ]  # fmt: skip
                elif k == "DISCOUNT":
                    entry["detailedBreakdowns"] = [
                        {"subtype": s, "value": _money26(-x, cur)}
                        for s, x in (("ITEM", it.promotion_discount), ("SHIPPING", it.shipping_discount))
                        if x != 0
                    ]
                breakdowns.append(entry)
            d["proceeds"] = {"proceedsTotal": _money26(it.line_total, cur), "breakdowns": breakdowns}
        if "PROMOTION" in included and it.promotion_ids and o.prices_visible:
            d["promotion"] = {"breakdowns": [{"promotionId": p} for p in it.promotion_ids]}
        if "FULFILLMENT" in included:
            f: dict[str, Any] = {
                "quantityFulfilled": it.quantity_shipped,
                "quantityUnfulfilled": max(0, it.quantity_ordered - it.quantity_shipped),
            }
            if it.is_gift and o.prices_visible:
                f["packing"] = {"giftOption": {"giftMessage": it.gift_message, "giftWrapLevel": "CLASSIC"}}
            d["fulfillment"] = f
        if "TAX" in included and it.tax_collection_model:
            d["tax"] = {
                "taxCollections": [
                    {"model": "MARKETPLACE_FACILITATOR", "responsibleParty": "AMAZON_SERVICES_INC"}
                ]
            }
        if "CANCELLATION" in included and o.status == "Canceled":
            d["cancellation"] = {
                "cancellationExecution": {"cancelledBy": "BUYER", "cancelReason": "Buyer canceled"}
            }
        return d

    def _included(self, ctx: _Ctx) -> set[str]:
        return {v.upper() for v in ctx.list("includedData")}

    def _op_search_orders(self, ctx: _Ctx) -> Response:
        token = ctx.first("paginationToken")
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "searchOrders":
                raise _bad("Invalid paginationToken.")
        else:
            family, after, before, echo_key = self._time_window(
                ctx, ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
            )
            mids = ctx.list("marketplaceIds")
            statuses = ctx.list("fulfillmentStatuses")
            fby = ctx.list("fulfilledBy")
            size = self._int_param(ctx, "maxResultsPerPage", 100, 1, 100)
            now = self._now()
            sel = []
            for o in self._orders.values():
                if mids and o.marketplace_id not in mids:
                    continue
                if not self._visible(o, now):
                    continue
                ts = o.purchase_date if family == "created" else o.last_update_date
                if not (after <= ts <= before):
                    continue
                if statuses and STATUS_2026[o.status] not in statuses:
                    continue
                if fby and ("AMAZON" if o.fulfillment_channel == "AFN" else "MERCHANT") not in fby:
                    continue
                sel.append(o)
            sel.sort(key=lambda o: (o.last_update_date, o.amazon_order_id))
            state = {"op": "searchOrders", "ids": [o.amazon_order_id for o in sel], "pos": 0, "size": size,
                     "echo": (echo_key, iso(before)), "included": sorted(self._included(ctx))}  # fmt: skip
        pos, size = state["pos"], state["size"]
        included = set(state["included"])
        body: dict[str, Any] = {
            "orders": [
                self._order_2026(self._orders[i], included)
                for i in state["ids"][pos : pos + size]
                if i in self._orders
            ]
        }
        if pos + size < len(state["ids"]):
            body["pagination"] = {"nextToken": self._new_page_token({**state, "pos": pos + size})}
        body[state["echo"][0]] = state["echo"][1]
        return self._json(200, body)

    def _op_get_order_2026(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        return self._json(200, {"order": self._order_2026(o, self._included(ctx))})

    # ------------------------------------------------------------------ reports

    def _op_create_report(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise _bad("A JSON body is required.")
        rtype = body.get("reportType")
        mids = body.get("marketplaceIds")
        if not rtype or not isinstance(mids, list) or not mids:
            raise _bad("reportType and marketplaceIds are required.")
        if rtype == sim_settlements.REPORT_TYPE:  # Amazon publishes settlement reports itself
            raise _bad("Request for report type 1118 is not allowed at this time")
        if rtype not in REPORT_TYPES:
            raise _bad(f"Report type {rtype} is not supported by the simulator.")
        now = self._now()
        start = end = None
        try:
            if body.get("dataStartTime"):
                start = parse_datetime(str(body["dataStartTime"]))
            if body.get("dataEndTime"):
                end = parse_datetime(str(body["dataEndTime"]))
        except ValueError as exc:
            raise _bad("dataStartTime/dataEndTime must be ISO 8601 date-times.") from exc
        if rtype.startswith("GET_FLAT_FILE_ALL_ORDERS"):
            end = end or now
            start = start or end - limits.REPORT_WINDOW
            if end < start:
                raise _bad("dataEndTime must be after dataStartTime.")
            if end - start > limits.REPORT_WINDOW + timedelta(seconds=1):
                raise _bad("Date range exceeded. Report can be requested only upto 30 days.")
            content = self._orders_report(rtype, [str(m) for m in mids], start, min(end, now), now)
        else:
            content = self._listings_report(str(mids[0]))
        self._report_seq += 1
        rid = str(self._report_seq)
        if self._fail_reports > 0:
            self._fail_reports -= 1
            outcome = "FATAL"
            content = json.dumps({"errorDetails": "The report could not be generated."}).encode()
        elif content is None:
            outcome = "CANCELLED"
        else:
            outcome = "DONE"
        doc_id = None
        if content is not None:
            self._doc_seq += 1
            doc_id = f"amzn1.spdoc.1.4.na.sim{self._doc_seq:06d}.{secrets.token_hex(6)}"
            self._documents[doc_id] = gzip.compress(content, mtime=0)
        self._reports[rid] = _Report(rid, rtype, [str(m) for m in mids], start, end, now, outcome, doc_id)
        return self._json(202, {"reportId": rid})

    def _report_status(self, r: _Report) -> str:
        if r.cancelled:
            return "CANCELLED"
        elapsed = (self._now() - r.created).total_seconds()
        p = self.report_processing_seconds
        if elapsed < p * 0.25:
            return "IN_QUEUE"
        if elapsed < p:
            return "IN_PROGRESS"
        return r.outcome

    def _report_json(self, r: _Report) -> dict[str, Any]:
        status = self._report_status(r)
        d: dict[str, Any] = {
            "reportId": r.report_id,
            "reportType": r.report_type,
            "marketplaceIds": r.marketplace_ids,
            "createdTime": _iso_offset(r.created),
            "processingStatus": status,
        }
        if r.data_start:
            d["dataStartTime"] = _iso_offset(r.data_start)
        if r.data_end:
            d["dataEndTime"] = _iso_offset(r.data_end)
        p = self.report_processing_seconds
        if status != "IN_QUEUE" and not (
            r.cancelled and self._now() - r.created < timedelta(seconds=p * 0.25)
        ):
            d["processingStartTime"] = _iso_offset(r.created + timedelta(seconds=p * 0.25))
        if status in ("DONE", "FATAL", "CANCELLED") and not r.cancelled:
            d["processingEndTime"] = _iso_offset(r.created + timedelta(seconds=p))
        if status in ("DONE", "FATAL") and r.document_id:
            d["reportDocumentId"] = r.document_id
        return d

    def _op_get_report(self, ctx: _Ctx) -> Response:
        self._publish_settlements(generate=False)
        r = self._reports.get(ctx.params["reportId"])
        if r is None:
            raise ApiError(404, "NotFound", f"Report {ctx.params['reportId']} was not found.")
        return self._json(200, self._report_json(r))

    def _op_get_reports(self, ctx: _Ctx) -> Response:
        wanted = ctx.list("reportTypes")  # only a settlement listing builds the settlements
        first_page = not ctx.first("nextToken")
        self._publish_settlements(
            generate=first_page and (not wanted or sim_settlements.REPORT_TYPE in wanted)
        )
        token = ctx.first("nextToken")
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "getReports":
                raise _bad("Invalid nextToken.")
        else:
            types = ctx.list("reportTypes")
            statuses = ctx.list("processingStatuses")
            mids = ctx.list("marketplaceIds")
            size = self._int_param(ctx, "pageSize", 10, 1, 100)
            now = self._now()
            try:
                since = (
                    parse_datetime(ctx.first("createdSince") or "")
                    if ctx.first("createdSince")
                    else now - timedelta(days=90)
                )
                until = parse_datetime(ctx.first("createdUntil") or "") if ctx.first("createdUntil") else now
            except ValueError as exc:
                raise _bad("createdSince/createdUntil must be ISO 8601 date-times.") from exc
            since = max(since, now - limits.REPORT_RETENTION)
            sel = []
            for r in sorted(
                self._reports.values(), key=lambda r: (r.created, int(r.report_id)), reverse=True
            ):
                if types and r.report_type not in types:
                    continue
                if statuses and self._report_status(r) not in statuses:
                    continue
                if mids and not set(mids) & set(r.marketplace_ids):
                    continue
                if not (since <= r.created <= until):
                    continue
                sel.append(r.report_id)
            state = {"op": "getReports", "ids": sel, "pos": 0, "size": size}
        pos, size = state["pos"], state["size"]
        body: dict[str, Any] = {
            "reports": [self._report_json(self._reports[i]) for i in state["ids"][pos : pos + size]]
        }
        if pos + size < len(state["ids"]):
            body["nextToken"] = self._new_page_token({**state, "pos": pos + size})
        return self._json(200, body)

    def _op_cancel_report(self, ctx: _Ctx) -> Response:
        r = self._reports.get(ctx.params["reportId"])
        if r is None:
            raise ApiError(404, "NotFound", f"Report {ctx.params['reportId']} was not found.")
        if self._report_status(r) != "IN_QUEUE":
            raise _bad("Only reports with processingStatus IN_QUEUE can be cancelled.")
        r.cancelled = True
        return Response(200, b"", "application/json")

    def _op_get_report_document(self, ctx: _Ctx) -> Response:
        self._publish_settlements(generate=False)
        doc_id = ctx.params["reportDocumentId"]
        oldest = self._now() - limits.REPORT_RETENTION
        if doc_id not in self._documents or not any(
            r.document_id == doc_id and self._report_status(r) in ("DONE", "FATAL") and r.created >= oldest
            for r in self._reports.values()
        ):
            raise ApiError(404, "NotFound", f"Report document {doc_id} was not found.")
        url = f"{self.url}/documents/{urllib.parse.quote(doc_id, safe='')}?X-Amz-Expires=300&X-Amz-Signature=sim"
        body = {"reportDocumentId": doc_id, "url": url}
        if doc_id not in self._plain_documents:
            body["compressionAlgorithm"] = "GZIP"
        return self._json(200, body)

    def _op_download(self, ctx: _Ctx) -> Response:
        data = self._documents.get(ctx.params["documentId"])
        if data is None:
            return Response(404, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>",
                            "application/xml")  # fmt: skip
        return Response(200, data, "text/plain; charset=Cp1252")

    @staticmethod
    def _encode_tsv(columns: Iterable[str], rows: list[list[Any]]) -> bytes:
        lines = ["\t".join(columns)]
        lines.extend("\t".join(_tsv_cell(c) for c in row) for row in rows)
        return ("\r\n".join(lines) + "\r\n").encode("cp1252", errors="replace")

    def _listings_report(self, marketplace_id: str) -> bytes | None:
        mp = MARKETPLACES_BY_ID.get(marketplace_id)
        rows = []
        for lst in self._listings.values():
            if lst.marketplace_id != marketplace_id:
                continue
            local = lst.open_date.astimezone(mp.time_zone if mp else timezone.utc)
            # Amazon's EU reports name Central European time the way Java's legacy zone ids do (MET/MEST)
            abbrev = {"CET": "MET", "CEST": "MEST"}.get(local.tzname() or "UTC", local.tzname() or "UTC")
            if abbrev[0] in "+-":  # zones without an abbreviation ("+08"): a numeric offset instead
                abbrev = local.strftime("%z")
            opened = local.strftime("%Y-%m-%d %H:%M:%S")
            fba = lst.fulfillment_channel != "DEFAULT"
            values = {
                "item-name": lst.title, "item-description": lst.description, "listing-id": lst.listing_id,
                "seller-sku": lst.sku, "price": str(lst.price), "quantity": "" if fba else str(lst.quantity),
                "open-date": f"{opened} {abbrev}", "image-url": lst.image_url, "item-is-marketplace": "y",
                "product-id-type": "1", "item-condition": "11", "asin1": lst.asin, "product-id": lst.asin,
                "pending-quantity": "0", "fulfillment-channel": lst.fulfillment_channel,
                "merchant-shipping-group": "" if fba else "Migrated Template", "status": lst.status,
            }  # fmt: skip
            rows.append([values.get(c, "") for c in LISTINGS_COLUMNS])
        if not rows:
            return None
        return self._encode_tsv(LISTINGS_COLUMNS, rows)

    def _orders_report(
        self, rtype: str, mids: list[str], start: datetime, end: datetime, now: datetime
    ) -> bytes | None:
        by_update = rtype.endswith("BY_LAST_UPDATE_GENERAL")
        sel = []
        for o in self._orders.values():
            if o.marketplace_id not in mids or not self._visible(o, now):
                continue
            ts = o.last_update_date if by_update else o.purchase_date
            if start <= ts <= end:
                sel.append(o)
        sel.sort(key=lambda o: (o.last_update_date if by_update else o.purchase_date, o.amazon_order_id))
        columns = ORDERS_COLUMNS if self.report_tax_columns else DOCUMENTED_ORDERS_COLUMNS
        rows = []
        for o in sel:
            mp = marketplace(o.marketplace_id)
            for it in o.items:
                priced = o.prices_visible
                if it.quantity_ordered == 0:
                    item_status = "Cancelled"
                elif it.quantity_shipped >= it.quantity_ordered:
                    item_status = "Shipped"
                else:
                    item_status = "Unshipped"
                values: dict[str, Any] = {
                    "amazon-order-id": o.amazon_order_id, "merchant-order-id": o.seller_order_id or "",
                    "purchase-date": _iso_offset(o.purchase_date), "last-updated-date": _iso_offset(o.last_update_date),
                    "order-status": o.status, "fulfillment-channel": "Amazon" if o.fulfillment_channel == "AFN" else "Merchant",
                    "sales-channel": mp.name, "ship-service-level": "Standard", "product-name": it.title,
                    "sku": it.sku, "asin": it.asin, "item-status": item_status, "quantity": it.quantity_ordered,
                    "currency": o.currency if priced else "",
                    "ship-city": o.shipping_address.city, "ship-state": o.shipping_address.state,
                    "ship-postal-code": o.shipping_address.postal_code, "ship-country": o.shipping_address.country_code,
                    "promotion-ids": ",".join(it.promotion_ids) if priced else "",
                    "is-business-order": "true" if o.is_business else "false",
                    "purchase-order-number": o.purchase_order_number or "",
                    "tax-collection-model": it.tax_collection_model or "",
                    "tax-collection-responsible-party": "Amazon Services, Inc." if it.tax_collection_model else "",
                }  # fmt: skip
                if priced:
                    values.update(
                        {
                            "item-price": it.item_price,
                            "item-tax": it.item_tax - it.promotion_discount_tax,
                            "shipping-price": it.shipping_price,
                            "shipping-tax": it.shipping_tax - it.shipping_discount_tax,
                            "gift-wrap-price": it.gift_wrap_price,
                            "gift-wrap-tax": it.gift_wrap_tax,
                            "item-promotion-discount": it.promotion_discount,
                            "ship-promotion-discount": it.shipping_discount,
                        }
                    )
                rows.append([values.get(c, "") for c in columns])
        if not rows:
            return None
        return self._encode_tsv(columns, rows)

    # ------------------------------------------------------------------ catalog

    def _catalog_item(self, asin: str, mid: str, included: set[str]) -> dict[str, Any] | None:
        cands = [lst for lst in self._listings.values() if lst.asin == asin]
        if not cands:
            return None
        lst = next((c for c in cands if c.marketplace_id == mid), cands[0])
        item: dict[str, Any] = {"asin": asin}
        browse = {
            "displayName": lst.classification or lst.product_type,
            "classificationId": lst.classification_id or "0",
        }
        if "summaries" in included:
            item["summaries"] = [{
                "marketplaceId": mid, "brand": lst.brand, "browseClassification": browse,
                "itemClassification": "BASE_PRODUCT", "itemName": lst.title, "manufacturer": lst.brand,
            }]  # fmt: skip
        if "images" in included:
            item["images"] = [
                {
                    "marketplaceId": mid,
                    "images": [{"variant": "MAIN", "link": lst.image_url, "height": 500, "width": 500}],
                }
            ]
        if "classifications" in included:
            item["classifications"] = [{"marketplaceId": mid, "classifications": [browse]}]
        if "productTypes" in included:
            item["productTypes"] = [{"marketplaceId": mid, "productType": lst.product_type}]
        if "identifiers" in included:
            item["identifiers"] = [
                {"marketplaceId": mid, "identifiers": [{"identifierType": "ASIN", "identifier": asin}]}
            ]
        if "attributes" in included:
            item["attributes"] = {
                "item_name": [{"value": lst.title, "marketplace_id": mid}],
                "brand": [{"value": lst.brand, "marketplace_id": mid}],
                "product_description": [{"value": lst.description, "marketplace_id": mid}],
            }
        if "salesRanks" in included:
            item["salesRanks"] = [{"marketplaceId": mid, "classificationRanks": [], "displayGroupRanks": []}]
        if "dimensions" in included:
            item["dimensions"] = [{"marketplaceId": mid}]
        if "relationships" in included:
            item["relationships"] = [{"marketplaceId": mid, "relationships": []}]
        return item

    def _catalog_included(self, ctx: _Ctx) -> set[str]:
        return set(ctx.list("includedData")) or {"summaries"}

    def _op_search_catalog(self, ctx: _Ctx) -> Response:
        mids = ctx.list("marketplaceIds")
        if not mids:
            raise _bad("marketplaceIds is required.")
        if len(mids) > 1:
            raise _bad("Only one marketplaceId is supported.")
        mid = mids[0]
        included = self._catalog_included(ctx)
        identifiers = ctx.list("identifiers")
        keywords = ctx.list("keywords")
        if identifiers and keywords:
            raise _bad("Cannot search by both identifiers and keywords.")
        if not identifiers and not keywords:
            raise _bad("One of identifiers or keywords is required.")
        items: list[dict[str, Any]] = []
        pagination: dict[str, Any] = {}
        if identifiers:
            if len(identifiers) > limits.CATALOG_BATCH:
                raise _bad(f"identifiers accepts at most {limits.CATALOG_BATCH} values.")
            itype = ctx.first("identifiersType")
            if not itype:
                raise _bad("identifiersType is required when identifiers are given.")
            if itype == "SKU" and not ctx.first("sellerId"):
                raise _bad("sellerId is required when identifiersType is SKU.")
            seen: set[str] = set()
            for ident in identifiers:
                if itype == "ASIN":
                    asin: str | None = ident
                elif itype == "SKU":
                    lst = self._listings.get((ident, mid))
                    asin = lst.asin if lst else None
                else:
                    asin = None
                if asin and asin not in seen:
                    it = self._catalog_item(asin, mid, included)
                    if it is not None:
                        seen.add(asin)
                        items.append(it)
        else:
            size = self._int_param(ctx, "pageSize", 10, 1, limits.CATALOG_BATCH)
            pos = 0
            tok = ctx.first("pageToken")
            if tok:
                state = self._page_tokens.get(tok)
                if state is None or state.get("op") != "searchCatalogItems":
                    raise _bad("Invalid pageToken.")
                pos = state["pos"]
            words = [k.lower() for k in keywords]
            asins: list[str] = []
            for lst in sorted(self._listings.values(), key=lambda x: x.asin):
                if lst.asin not in asins and all(w in lst.title.lower() for w in words):
                    asins.append(lst.asin)
            for a in asins[pos : pos + size]:
                it = self._catalog_item(a, mid, included)
                if it is not None:
                    items.append(it)
            if pos + size < len(asins):
                pagination["nextToken"] = self._new_page_token(
                    {"op": "searchCatalogItems", "pos": pos + size}
                )
            if pos > 0:
                pagination["previousToken"] = self._new_page_token(
                    {"op": "searchCatalogItems", "pos": max(0, pos - size)}
                )
        body: dict[str, Any] = {
            "numberOfResults": len(items),
            "items": items,
            "refinements": {"brands": [], "classifications": []},
        }
        if pagination:
            body["pagination"] = pagination
        return self._json(200, body)

    def _op_get_catalog_item(self, ctx: _Ctx) -> Response:
        mids = ctx.list("marketplaceIds")
        if not mids:
            raise _bad("marketplaceIds is required.")
        item = self._catalog_item(ctx.params["asin"], mids[0], self._catalog_included(ctx))
        if item is None:
            raise ApiError(
                404,
                "NotFound",
                f"Requested item '{ctx.params['asin']}' not found in marketplace '{mids[0]}'.",
            )
        return self._json(200, item)

    # ------------------------------------------------------------------ sellers, finances

    def _participations(self) -> list[dict[str, Any]]:
        if self._seller_marketplaces is not None:
            ids = [marketplace(m).marketplace_id for m in self._seller_marketplaces]
        else:
            ids = sorted(
                {lst.marketplace_id for lst in self._listings.values()}
                | {o.marketplace_id for o in self._orders.values()}
            )
            ids = ids or ["ATVPDKIKX0DER"]
        out = []
        for mid in ids:
            mp = marketplace(mid)
            out.append(
                {
                    "marketplace": {
                        "id": mp.marketplace_id,
                        "name": mp.name,
                        "countryCode": mp.country_code,
                        "defaultCurrencyCode": mp.currency,
                        "defaultLanguageCode": mp.language,
                        "domainName": mp.domain,
                    },
                    "participation": {"isParticipating": True, "hasSuspendedListings": False},
                    "storeName": "Sim Store",
                }
            )
        return out

    def _op_participations(self, ctx: _Ctx) -> Response:
        return self._json(200, {"payload": self._participations()})

    def _op_account(self, ctx: _Ctx) -> Response:
        account = {
            "marketplaceParticipationList": self._participations(),
            "businessType": "PRIVATE_LIMITED",
            "sellingPlan": "PROFESSIONAL",
            "business": {
                "name": "Sim Store GmbH",
                "registeredBusinessAddress": {"addressLine1": "Hauptstraße 1", "city": "Berlin", "postalCode": "10115",
                                              "countryCode": "DE"},
            },
        }  # fmt: skip
        return self._json(200, {"payload": account})

    def _op_financial_events(self, ctx: _Ctx) -> Response:
        self._int_param(ctx, "MaxResultsPerPage", 100, 1, 100)
        o = self._orders.get(ctx.params["orderId"])
        events: dict[str, Any] = {"ShipmentEventList": [], "RefundEventList": [], "GuaranteeClaimEventList": [],
                                  "ChargebackEventList": [], "AdjustmentEventList": [], "ServiceFeeEventList": []}  # fmt: skip
        if o is not None and o.number_of_items_shipped > 0 and o.prices_visible:
            cur = o.currency
            items = []
            for it in o.items:
                if it.quantity_shipped <= 0:
                    continue
                charges = [("Principal", it.item_price), ("Tax", it.item_tax), ("ShippingCharge", it.shipping_price),
                           ("ShippingTax", it.shipping_tax), ("GiftWrap", it.gift_wrap_price), ("GiftWrapTax", it.gift_wrap_tax)]  # fmt: skip
                commission = -(it.item_price * Decimal("0.15")).quantize(Decimal("0.01"))
                fees = [("Commission", commission)]
                if o.fulfillment_channel == "AFN":
                    fees.append(("FBAPerUnitFulfillmentFee", Decimal("-3.22") * it.quantity_shipped))
                entry: dict[str, Any] = {
                    "SellerSKU": it.sku,
                    "OrderItemId": it.order_item_id,
                    "QuantityShipped": it.quantity_shipped,
                    "ItemChargeList": [
                        {"ChargeType": t, "ChargeAmount": _currency_fin(a, cur)} for t, a in charges
                    ],
                    "ItemFeeList": [{"FeeType": t, "FeeAmount": _currency_fin(a, cur)} for t, a in fees],
                    "PromotionList": [],
                }
                if it.promotion_discount or it.shipping_discount:
                    pid = it.promotion_ids[0] if it.promotion_ids else "PROMO"
                    entry["PromotionList"] = [
                        {"PromotionType": t, "PromotionId": pid, "PromotionAmount": _currency_fin(-a, cur)}
                        for t, a in (("PromotionMetaDataDefinitionValue", it.promotion_discount),
                                     ("ShippingDiscount", it.shipping_discount)) if a
                    ]  # fmt: skip
                if it.tax_collection_model:
                    withheld = it.item_tax + it.shipping_tax + it.gift_wrap_tax
                    entry["ItemTaxWithheldList"] = [{
                        "TaxCollectionModel": it.tax_collection_model,
                        "TaxesWithheld": [{"ChargeType": "MarketplaceFacilitatorTax-Principal",
                                           "ChargeAmount": _currency_fin(-withheld, cur)}],
                    }]  # fmt: skip
                items.append(entry)
            events["ShipmentEventList"].append({
                "AmazonOrderId": o.amazon_order_id,
                "MarketplaceName": marketplace(o.marketplace_id).name,
                "PostedDate": iso(o.last_update_date),
                "ShipmentItemList": items,
            })  # fmt: skip
        return self._json(200, {"payload": {"FinancialEvents": events}})

    # ------------------------------------------------------------------ settlements (amz2erp_sim.spapi.settlements)

    def _settlement_book(self) -> list[sim_settlements.SimSettlement]:
        if self._settlements is None:  # generated on first use, from the orders as they are then
            self._settlements = sim_settlements.generate_settlements(
                self.settlement_seed, self._orders.values(), self._now()
            )
        return self._settlements

    @property
    def settlements(self) -> list[sim_settlements.SimSettlement]:
        """Every settlement period (past, open and scheduled), oldest first."""
        with self._lock:
            return list(self._settlement_book())

    def settlement(self, settlement_id: str) -> sim_settlements.SimSettlement:
        with self._lock:
            for s in self._settlement_book():
                if s.settlement_id == settlement_id:
                    return s
        raise KeyError(settlement_id)

    def add_settlement(self, settlement: sim_settlements.SimSettlement) -> None:
        """Add a settlement; its report is published once the clock passes ``report_created``."""
        with self._lock:
            self._settlement_book().append(settlement)

    def reissue_settlement(self, settlement_id: str, **changes: Any) -> sim_settlements.SimSettlement:
        """Amazon reissues a settlement: same settlement-id, other content (``rows=``, ``stated_total=`` …).
        A published settlement gets a second report, created now, next to the first one."""
        with self._lock:
            book = self._settlement_book()
            for i, s in enumerate(book):
                if s.settlement_id == settlement_id:
                    new = sim_settlements.reissue(s, **changes)
                    book[i] = new
                    if self._published.get(settlement_id):
                        self._publish_report(new, self._now())
                    return new
        raise KeyError(settlement_id)

    def regenerate_settlements(self, seed: int | None = None) -> None:
        """Rebuild the settlement schedule from the current orders (published reports stay)."""
        with self._lock:
            self.settlement_seed = self.settlement_seed if seed is None else seed
            self._settlements = None

    def _publish_report(self, s: sim_settlements.SimSettlement, created: datetime) -> None:
        self._report_seq += 1
        self._doc_seq += 1
        rid = str(self._report_seq)
        doc_id = f"amzn1.spdoc.1.4.na.sim{self._doc_seq:06d}.{secrets.token_hex(6)}"
        self._documents[doc_id] = sim_settlements.render_v2(s)
        self._plain_documents.add(doc_id)
        # dated back by the processing time: a settlement report is DONE the moment it appears
        created = created - timedelta(seconds=self.report_processing_seconds)
        self._reports[rid] = _Report(
            rid, sim_settlements.REPORT_TYPE, [s.marketplace_id], s.start, s.end, created, "DONE", doc_id
        )
        self._published[s.settlement_id] = self._published.get(s.settlement_id, 0) + 1
        if self.settlement_listed_per_eu_marketplace and marketplace(s.marketplace_id).region == "eu":
            # a unified EU account sees the same settlement once per marketplace, same document
            for mp in self._participations():
                mid = mp["marketplace"]["id"]
                if mid != s.marketplace_id and marketplace(mid).region == "eu":
                    self._report_seq += 1
                    extra = str(self._report_seq)
                    self._reports[extra] = _Report(extra, sim_settlements.REPORT_TYPE, [mid], s.start, s.end,
                                                   created, "DONE", doc_id)  # fmt: skip

    def _publish_settlements(self, *, generate: bool = True) -> None:
        if self._settlements is None and not generate:
            return
        now = self._now()
        for s in self._settlement_book():
            if s.settlement_id not in self._published and s.report_available(now):
                self._publish_report(s, s.report_created)

    def _window(self, ctx: _Ctx, after_name: str, before_name: str) -> tuple[datetime | None, datetime]:
        limit = self._now() - timedelta(minutes=2)
        try:
            after = parse_datetime(ctx.first(after_name) or "") if ctx.first(after_name) else None
            before = parse_datetime(ctx.first(before_name) or "") if ctx.first(before_name) else limit
        except ValueError as exc:
            raise _bad(f"{after_name}/{before_name} must be ISO 8601 date-times.") from exc
        if after is not None and after > limit:
            raise _bad(f"{after_name} must be no later than two minutes before the time of the request.")
        if before > limit:
            raise _bad(f"{before_name} must be no later than two minutes before the time of the request.")
        if after is not None and before <= after:
            raise _bad(f"{before_name} must be after {after_name}.")
        return after, before

    def _paged(self, ctx: _Ctx, op: str, token_name: str) -> dict[str, Any] | None:
        token = ctx.first(token_name)
        if not token:
            return None
        state = self._page_tokens.get(token)
        if state is None or state.get("op") != op:
            raise _bad(f"Invalid {token_name}.")
        return state

    def _op_list_event_groups(self, ctx: _Ctx) -> Response:
        now = self._now()
        state = self._paged(ctx, "listFinancialEventGroups", "NextToken")
        if state is None:
            size = self._int_param(ctx, "MaxResultsPerPage", 10, 1, 100)
            after, before = self._window(
                ctx, "FinancialEventGroupStartedAfter", "FinancialEventGroupStartedBefore"
            )
            ids: list[str] = []
            if after is None or before - after <= timedelta(days=180):  # wider: Amazon returns nothing
                ids = [
                    s.settlement_id
                    for s in sorted(self._settlement_book(), key=lambda s: (s.start, s.settlement_id))
                    if s.start <= now and (after is None or s.start >= after) and s.start < before
                ]
            state = {"op": "listFinancialEventGroups", "ids": ids, "pos": 0, "size": size}
        pos, size = state["pos"], state["size"]
        by_id = {s.settlement_id: s for s in self._settlement_book()}
        payload: dict[str, Any] = {
            "FinancialEventGroupList": [
                sim_settlements.event_group(by_id[i], now)
                for i in state["ids"][pos : pos + size]
                if i in by_id
            ]
        }
        if pos + size < len(state["ids"]):
            payload["NextToken"] = self._new_page_token({**state, "pos": pos + size})
        return self._json(200, {"payload": payload})

    def _op_list_transactions(self, ctx: _Ctx) -> Response:
        now = self._now()
        state = self._paged(ctx, "listTransactions", "nextToken")
        if state is None:
            name, value = ctx.first("relatedIdentifierName"), ctx.first("relatedIdentifierValue")
            if name and name not in ("FINANCIAL_EVENT_GROUP_ID", "ORDER_ID"):
                raise _bad("relatedIdentifierName must be FINANCIAL_EVENT_GROUP_ID or ORDER_ID.")
            if bool(name) != bool(value):
                raise _bad("relatedIdentifierName and relatedIdentifierValue must be given together.")
            if not name and not ctx.first("postedAfter"):
                raise _bad("postedAfter is required if you do not specify a related identifier.")
            after, before = self._window(ctx, "postedAfter", "postedBefore")
            mid, status = ctx.first("marketplaceId"), ctx.first("transactionStatus")
            found: list[dict[str, Any]] = []
            if after is None or before - after <= timedelta(days=180):  # wider: Amazon answers empty
                for s in self._settlement_book():
                    if s.start > now or (mid and s.marketplace_id != mid):
                        continue
                    if name == "FINANCIAL_EVENT_GROUP_ID" and s.group_id != value:
                        continue
                    for tx in sim_settlements.transactions(s, now, self.seller_id):
                        posted = parse_datetime(tx["postedDate"])
                        if (after is not None and posted < after) or (not name and posted >= before):
                            continue
                        if status and tx["transactionStatus"] != status:
                            continue
                        if name == "ORDER_ID" and not any(
                            r["relatedIdentifierName"] == "ORDER_ID" and r["relatedIdentifierValue"] == value
                            for r in tx["relatedIdentifiers"]
                        ):
                            continue
                        found.append(tx)
            state = {"op": "listTransactions", "items": found, "pos": 0, "size": self.transactions_page_size}
        pos, size = state["pos"], state["size"]
        payload: dict[str, Any] = {"transactions": state["items"][pos : pos + size]}
        if pos + size < len(state["items"]):
            payload["nextToken"] = self._new_page_token({**state, "pos": pos + size})
        return self._json(200, {"payload": payload})


# --------------------------------------------------------------------------- HTTP layer


class _Abort(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim: SpApiSimulator  # set on the bound subclass
    server_version = "Server"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except (_Abort, ConnectionError, TimeoutError, OSError, ValueError):
            self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, method: str) -> None:
        body = self._read_body()
        resp = self.sim.handle(method, self.path, dict(self.headers.items()), body)
        if resp.fault == "timeout":
            time.sleep(self.sim.faults.timeout_seconds)
            self._drop(reset=False)
        if resp.fault == "reset":
            self._drop(reset=True)
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(resp.body)

    def _drop(self, *, reset: bool) -> None:
        conn = self.connection
        try:
            if reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            with contextlib.suppress(OSError, ValueError):
                f.close()
        with contextlib.suppress(OSError):
            conn.close()
        self.close_connection = True
        raise _Abort()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m amz2erp_sim.spapi", description="Local SP-API simulator")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--listings", type=int, default=50)
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=60, help="orders spread over the last N days")
    ap.add_argument("--marketplaces", default="US,DE")
    ap.add_argument("--no-rate-limits", action="store_true")
    ap.add_argument("--no-pii", action="store_true")
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--report-seconds", type=float, default=30.0)
    ap.add_argument("--documented-report-columns", action="store_true",
                    help="orders report without the tax-collection columns, as Amazon documents it")
    args = ap.parse_args(argv)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    mps = [m.strip() for m in args.marketplaces.split(",") if m.strip()]
    listings = datagen.generate_listings(args.seed, args.listings, mps, end=now - timedelta(days=args.days))
    orders = datagen.generate_orders(args.seed, args.orders, listings, now - timedelta(days=args.days), now - timedelta(minutes=5)) if args.orders else []  # fmt: skip
    sim = SpApiSimulator(
        listings=listings,
        orders=orders,
        rate_limits=not args.no_rate_limits,
        pii_allowed=not args.no_pii,
        faults=FaultConfig(rate=args.fault_rate, seed=args.seed),
        report_processing_seconds=args.report_seconds,
        port=args.port,
        report_tax_columns=not args.documented_report_columns,
    ).start()
    print(f"SP-API simulator: {sim.url}")
    print(f"LWA token URL:    {sim.lwa_url}")
    print(f"credentials:      {json.dumps(sim.credentials)}")
    print(f"data:             {len(listings)} listings, {len(orders)} orders (seed {args.seed})", flush=True)
    return serve_until_interrupted(sim)


if __name__ == "__main__":
    raise SystemExit(main())
