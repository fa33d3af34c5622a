"""What every SP-API area shares: the simulated seller account (``SimState``) and the request/response
vocabulary (``_Ctx``, ``Response``, ``ApiError``, money and time formats)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import ThreadingHTTPServer
from typing import Any

from amz2erp.amazon import limits
from amz2erp.amazon.marketplaces import BY_ID as PRODUCT_MARKETPLACES
from amz2erp.clock import Clock, SystemClock
from amz2erp_sim import datagen
from amz2erp_sim.datagen import (
    SimListing,
    SimOrder,
    marketplace,
)
from amz2erp_sim.spapi import settlements as sim_settlements
from amz2erp_sim.spapi.options import RATE_LIMITS, FaultConfig, SpApiOptions


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
class ReportJob:
    report_id: str
    report_type: str
    marketplace_ids: list[str]
    data_start: datetime | None
    data_end: datetime | None
    created: datetime
    outcome: str  # DONE | CANCELLED | FATAL
    document_id: str | None
    cancelled: bool = False


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



class SimState:
    """The simulated seller account: listings, orders, reports, tokens and settlements behind one lock,
    plus the public hooks tests use to change them."""

    def __init__(
        self,
        options: SpApiOptions | None = None,
        *,
        clock: Clock | None = None,
        listings: Iterable[SimListing] = (),
        orders: Iterable[SimOrder] = (),
        settlement_list: Iterable[sim_settlements.SimSettlement] | None = None,
    ) -> None:
        opts = options or SpApiOptions()
        self.options = opts
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._listings: dict[tuple[str, str], SimListing] = {}
        self._orders: dict[str, SimOrder] = {}
        self.add_listings(listings)
        self.add_orders(orders)
        self.rate_limits_enabled = bool(opts.rate_limits)
        self._limits = dict(RATE_LIMITS)
        if isinstance(opts.rate_limits, dict):
            self._limits.update(opts.rate_limits)
        self.faults = opts.faults or FaultConfig()
        self.pii_allowed = opts.pii_allowed
        self.report_processing_seconds = opts.report_processing_seconds
        self.lwa_refresh_token = opts.lwa_refresh_token
        self.lwa_client_id = opts.lwa_client_id
        self.lwa_client_secret = opts.lwa_client_secret
        self.strict = opts.strict
        self.models_dir = opts.models_dir
        self._seller_marketplaces = list(opts.seller_marketplaces) if opts.seller_marketplaces is not None else None
        self.order_items_page_size = opts.order_items_page_size
        self.access_token_ttl = opts.access_token_ttl
        self.seller_id = opts.seller_id
        #: the orders report with the tax-collection columns seen in the field (True) or as documented (False)
        self.report_tax_columns = opts.report_tax_columns
        self._host = opts.host
        self._port = opts.port
        self._server: ThreadingHTTPServer | None = None  # set by start(); the URL needs its port
        self._access_tokens: dict[str, datetime] = {}
        self._rdts: dict[str, dict[str, Any]] = {}
        self._page_tokens: dict[str, dict[str, Any]] = {}
        self._reports: dict[str, ReportJob] = {}
        self._documents: dict[str, bytes] = {}
        self._report_seq = 50000
        self._doc_seq = 0
        self._fail_reports = 0
        self._request_seq = 0
        self.request_log: list[dict[str, Any]] = []
        self.contract_violations: list[dict[str, Any]] = []
        self.server_errors: list[str] = []
        self.settlement_seed = opts.settlement_seed
        self._settlements: list[sim_settlements.SimSettlement] | None = (
            list(settlement_list) if settlement_list is not None else None
        )
        self._published: dict[str, int] = {}  # settlement-id -> how many reports were published for it
        self._plain_documents: set[str] = set()
        self.transactions_page_size = 500
        #: list each EU settlement report again under the seller's other EU marketplaces (issues #1557, #969)
        self.settlement_listed_per_eu_marketplace = False
        #: edits each Orders 2026-01-01 order document in place after rendering (bad-payload tests)
        self.order_2026_hook: Callable[[SimOrder, dict[str, Any]], None] | None = None
        #: faults injected so far, by kind (forced and random)
        self.injected_faults: Counter[str] = Counter()

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

    def ship_order(self, order_id: str, when: datetime | None = None) -> None:
        """Ship the order now (or at ``when``, e.g. a little in the past so a sync sees it at once)."""
        with self._lock:
            datagen.ship_order(self._orders[order_id], when or self._now())

    def cancel_order(self, order_id: str, when: datetime | None = None) -> None:
        with self._lock:
            datagen.cancel_order(self._orders[order_id], when or self._now())

    @contextlib.contextmanager
    def edit_order(self, order_id: str) -> Iterator[SimOrder]:
        """The live order, to change fields no other hook covers (the lock is held until the block ends)."""
        with self._lock:
            yield self._orders[order_id]

    def order_ids(self, status: str | None = None) -> list[str]:
        """Ids of the orders (with that status), sorted."""
        with self._lock:
            return sorted(i for i, o in self._orders.items() if status is None or o.status == status)

    def report_jobs(self) -> list[ReportJob]:
        """Every report job created or published so far, in creation order."""
        with self._lock:
            return list(self._reports.values())

    @property
    def settlements_generated(self) -> bool:
        """Whether the settlement schedule was built yet (only the first settlement read builds it)."""
        with self._lock:
            return self._settlements is not None

    def partially_cancel(self, order_id: str, order_item_id: str, qty: int) -> None:
        """Cancel ``qty`` units of one order line."""
        with self._lock:
            datagen.partially_cancel(self._orders[order_id], order_item_id, qty, self._now())

    def set_listing_price(
        self, sku: str, marketplace_id: str, price: Decimal | str | float, when: datetime | None = None
    ) -> None:
        with self._lock:
            datagen.set_listing_price(self._listings[(sku, marketplace_id)], price, when or self._now())

    def set_listing_title(self, sku: str, marketplace_id: str, title: str) -> None:
        with self._lock:
            datagen.set_listing_title(self._listings[(sku, marketplace_id)], title, self._now())

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(
            status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json", headers or {}
        )

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

    def _visible(self, o: SimOrder, now: datetime) -> bool:
        market = PRODUCT_MARKETPLACES.get(o.marketplace_id)
        horizon = limits.orders_horizon(now, [market] if market else [])
        return horizon is None or o.purchase_date >= horizon

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

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def _violation(self, ctx: _Ctx, errors: list[str]) -> None:
        self.contract_violations.append(
            {"operation": ctx.operation, "path": ctx.path, "errors": errors, "sim_time": self.clock.now()}
        )
        raise _bad("; ".join(errors))
