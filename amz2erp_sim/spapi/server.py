"""A faithful local Selling Partner API simulator (LWA + SP-API + "S3" report documents) on 127.0.0.1.

This module is its front door: the HTTP server, LWA and RDT auth, routing, usage-plan rate limits, fault
injection and contract checks. Each API area's operations live in their own module (``orders_v0``,
``orders_2026``, ``reports``, ``catalog``, ``sellers``, ``finances``, ``settlement_book``) on the shared
account state of ``core``; ``options`` holds what a simulator is configured with.

Usage::

    from amz2erp_sim.spapi import SpApiOptions, SpApiSimulator
    with SpApiSimulator(SpApiOptions(pii_allowed=False), clock=clock, listings=listings, orders=orders) as sim:
        client.endpoint = sim.url          # python-amazon-sp-api's endpoint attribute
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
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from amz2erp.clock import Clock
from amz2erp_sim import datagen, serve_until_interrupted
from amz2erp_sim.datagen import (
    SimListing,
    SimOrder,
)
from amz2erp_sim.spapi import models as spapi_models
from amz2erp_sim.spapi import settlements as sim_settlements
from amz2erp_sim.spapi.catalog import CatalogApi
from amz2erp_sim.spapi.core import ApiError, Response, _bad, _Ctx, _err_body
from amz2erp_sim.spapi.finances import FinancesApi
from amz2erp_sim.spapi.options import (
    AUTH_OPERATION,
    DOCUMENT_OPERATION,
    FAULT_KINDS,
    FaultConfig,
    SpApiOptions,
)
from amz2erp_sim.spapi.orders_2026 import Orders2026Api
from amz2erp_sim.spapi.orders_v0 import OrdersV0Api
from amz2erp_sim.spapi.reports import ReportsApi
from amz2erp_sim.spapi.sellers import SellersApi
from amz2erp_sim.spapi.settlement_book import SettlementBookApi


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























# --------------------------------------------------------------------------- simulator


class SpApiSimulator(
    OrdersV0Api, Orders2026Api, ReportsApi, CatalogApi, SellersApi, FinancesApi, SettlementBookApi
):
    def __init__(
        self,
        options: SpApiOptions | None = None,
        *,
        clock: Clock | None = None,
        listings: Iterable[SimListing] = (),
        orders: Iterable[SimOrder] = (),
        settlement_list: Iterable[sim_settlements.SimSettlement] | None = None,
    ) -> None:
        super().__init__(options, clock=clock, listings=listings, orders=orders, settlement_list=settlement_list)
        self._buckets: dict[str, _Bucket] = {}
        self._fault_rng = random.Random(self.faults.seed)
        self._forced_faults: list[tuple[str, str | None]] = []
        self.models = spapi_models.load_models(self.models_dir) if self.strict and self.models_dir is not None else None
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()

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
        kind = self._pick_fault(operation)
        if kind is not None:
            self.injected_faults[kind] += 1
        return kind

    def _pick_fault(self, operation: str) -> str | None:
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
    options = SpApiOptions(
        rate_limits=not args.no_rate_limits,
        pii_allowed=not args.no_pii,
        faults=FaultConfig(rate=args.fault_rate, seed=args.seed),
        report_processing_seconds=args.report_seconds,
        port=args.port,
        report_tax_columns=not args.documented_report_columns,
    )
    sim = SpApiSimulator(options, listings=listings, orders=orders).start()
    print(f"SP-API simulator: {sim.url}")
    print(f"LWA token URL:    {sim.lwa_url}")
    print(f"credentials:      {json.dumps(sim.credentials)}")
    print(f"data:             {len(listings)} listings, {len(orders)} orders (seed {args.seed})", flush=True)
    return serve_until_interrupted(sim)


if __name__ == "__main__":
    raise SystemExit(main())
