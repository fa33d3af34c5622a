"""Order fetchers: Orders 2026-01-01 (searchOrders/getOrder) and Orders v0 (getOrders + getOrderItems), with
the buyer-data (PII) policy as one small object.

Every request goes through `amz2erp.amazon.calls.Caller`. When Amazon refuses buyer data, `PiiAccess` is the
``recover`` policy of the refused call: it drops buyer data (one warning) or renews an expired Restricted
Data Token, and the call is made again; there is no retry loop here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from amz2erp.amazon import limits
from amz2erp.amazon.calls import Caller
from amz2erp.amazon.marketplaces import resolve_ids
from amz2erp.amazon.parse import INCLUDED_2026, INCLUDED_2026_PII, parse_order_2026, parse_order_v0
from amz2erp.amazon.reports import iso
from amz2erp.amazon.transport import ApiResponse, Transport
from amz2erp.clock import Clock
from amz2erp.config import AmazonSettings
from amz2erp.errors import AmazonAuthError, AmazonBadRequestError, AmazonError, AmazonPayloadError
from amz2erp.models import Order, UnparsableOrder

log = logging.getLogger("amz2erp.amazon")

# The Orders v0 resources a Restricted Data Token unlocks, and which buyer data on each.
_RDT_RESOURCES = [
    {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo", "shippingAddress"]},
    {"method": "GET", "path": "/orders/v0/orders/{orderId}", "dataElements": ["buyerInfo", "shippingAddress"]},
    {"method": "GET", "path": "/orders/v0/orders/{orderId}/orderItems", "dataElements": ["buyerInfo"]},
]


class PiiAccess:
    """Whether buyer data is asked for (``[amazon] pii`` and not refused yet), and the one Restricted Data
    Token per run that unlocks it for Orders v0 (renewed only when it expires). Thread-safe."""

    def __init__(self, wanted: bool, caller: Caller, transport: Transport, clock: Clock) -> None:
        self.wanted = wanted
        self.refused = False
        self._warned = False
        self._rdt: str | None = None
        self._rdt_expires = 0.0
        self._lock = threading.Lock()
        self._caller = caller
        self._transport = transport
        self._clock = clock

    @property
    def active(self) -> bool:
        return self.wanted and not self.refused

    def refuse(self, reason: str) -> None:
        """Amazon refused buyer data: go on without it, with one warning per run."""
        with self._lock:
            self.refused = True
            if not self._warned:
                self._warned = True
                log.warning("Amazon refused access to buyer data (%s); continuing without buyer names and "
                            "addresses (needs Amazon's restricted roles)", self._transport.scrub(reason))

    # 2026-01-01: buyer data is an includedData choice -------------------------------------------------------

    def included_2026(self) -> str:
        return ",".join([*INCLUDED_2026, *(INCLUDED_2026_PII if self.active else ())])

    def recover_2026(self, sent: list[str]) -> Callable[[AmazonError], bool]:
        """``recover`` policy for one call whose attempts record the includedData they sent in ``sent``: a 403
        to an attempt that asked for buyer data → without it (the next attempt reads `included_2026` again).
        Judged by what the failed attempt sent, not by the shared state: another thread may have refused
        buyer data meanwhile."""
        def recover(error: AmazonError) -> bool:
            if isinstance(error, AmazonAuthError) and error.status == 403 and sent and "BUYER" in sent[-1]:
                self.refuse(str(error))
                return True
            return False
        return recover

    # v0: buyer data needs a Restricted Data Token ----------------------------------------------------------

    def restricted_token(self) -> str | None:
        if not self.active:
            return None
        with self._lock:
            if self._rdt and self._clock.monotonic() < self._rdt_expires:
                return self._rdt
        tokens = self._transport.api("tokens")
        try:
            res = self._caller.call(
                "createRestrictedDataToken",
                lambda: tokens.create_restricted_data_token(restrictedResources=_RDT_RESOURCES),
                lambda r: bool(r.payload.get("restrictedDataToken")),
            )
        except (AmazonAuthError, AmazonBadRequestError) as exc:
            self.refuse(str(exc))
            return None
        token = str(res.payload["restrictedDataToken"])
        try:
            ttl = float(res.payload.get("expiresIn") or 3600)
        except (TypeError, ValueError):
            ttl = 3600.0
        with self._lock:
            self._rdt = token
            self._rdt_expires = self._clock.monotonic() + max(30.0, ttl - 60.0)
            self._transport.masker.add([token])
        return token

    def v0_client(self) -> Any:
        """The Orders v0 library client to use now: with the RDT when buyer data is wanted and granted."""
        rdt = self.restricted_token()
        if rdt is None:
            return self._transport.api("orders_v0")
        client = self._transport.api("orders_v0_pii")
        client.restricted_data_token = rdt
        return client

    def v0_call(self, operation: str, fn: Callable[[Any], ApiResponse],
                require: Callable[[ApiResponse], bool] | None) -> ApiResponse:
        """``fn(client)`` through the retry place with the client `v0_client` chose. Its ``recover`` policy: a
        403 under the RDT renews an (almost) expired RDT once, otherwise drops buyer data (one warning); either
        way the attempt is made again with the client chosen anew."""
        client = self.v0_client()

        def recover(error: AmazonError) -> bool:
            nonlocal client
            if not (isinstance(error, AmazonAuthError) and error.status == 403
                    and client is self._transport.built("orders_v0_pii")):
                return False
            with self._lock:
                renewable = self._rdt is not None and self._clock.monotonic() >= self._rdt_expires - 120
                self._rdt = None
            if not renewable:
                self.refuse(str(error))
            client = self.v0_client()
            return True

        return self._caller.call(operation, lambda: fn(client), require, recover=recover)

    def v0_pages(self, operation: str, fetch: Callable[[Any, str | None], ApiResponse],
                 next_token: Callable[[ApiResponse], str | None],
                 require: Callable[[ApiResponse], bool]) -> Iterator[ApiResponse]:
        """`Caller.pages` for v0: each page is one `v0_call` (``fetch(client, token)``)."""
        def call_page(token: str | None) -> ApiResponse:
            return self.v0_call(operation, lambda client: fetch(client, token), require)

        return self._caller.walk(operation, call_page, next_token)


class OrderFetcher:
    """Orders by last-update window or by id, through the API ``settings.orders_api`` names."""

    def __init__(self, settings: AmazonSettings, clock: Clock, caller: Caller, transport: Transport) -> None:
        self.settings = settings
        self.clock = clock
        self.caller = caller
        self.transport = transport
        self.pii = PiiAccess(settings.pii, caller, transport, clock)

    def window(self, updated_after: datetime, updated_before: datetime) -> tuple[datetime, datetime] | None:
        """[after, before] with ``before`` clamped to now − Amazon's lag; None when nothing is readable."""
        if updated_after.tzinfo is None or updated_before.tzinfo is None:
            raise ValueError("updated_after/updated_before must be timezone-aware")
        latest = self.clock.now() - limits.ORDERS_LAG
        before = min(updated_before, latest)
        if before <= updated_after:
            return None
        return updated_after, before

    def fetch_orders(self, marketplace_ids: list[str], updated_after: datetime,
                     updated_before: datetime) -> Iterator[Order | UnparsableOrder]:
        window = self.window(updated_after, updated_before)
        if window is None:
            return
        mids = resolve_ids(marketplace_ids)
        seen: set[str] = set()
        for i in range(0, len(mids), limits.MAX_MARKETPLACES_PER_CALL):
            chunk = mids[i : i + limits.MAX_MARKETPLACES_PER_CALL]
            source = (self._orders_2026(chunk, *window) if self.settings.orders_api == "2026-01-01"
                      else self._orders_v0(chunk, *window))
            for record in source:
                if record.amazon_order_id in seen:
                    continue
                seen.add(record.amazon_order_id)
                yield record

    def fetch_order(self, amazon_order_id: str) -> Order | None:
        try:
            if self.settings.orders_api == "2026-01-01":
                return self._order_2026(amazon_order_id)
            return self._order_v0(amazon_order_id)
        except AmazonBadRequestError as exc:
            if exc.status == 404:
                return None
            raise

    # 2026-01-01 ----------------------------------------------------------------------------------------

    def _orders_2026(self, mids: list[str], after: datetime, before: datetime) -> Iterator[Order | UnparsableOrder]:
        client = self.transport.api("orders2026")
        params: dict[str, Any] = {
            "lastUpdatedAfter": iso(after),
            "lastUpdatedBefore": iso(before),
            "marketplaceIds": ",".join(mids),
            "maxResultsPerPage": 100,
        }

        sent: list[str] = []

        def fetch(token: str | None) -> ApiResponse:
            extra = {"paginationToken": token} if token else {}
            # includedData is read at every attempt: the PII policy may have dropped buyer data meanwhile
            sent[:] = [self.pii.included_2026()]
            return client.search_orders(**params, includedData=sent[-1], **extra)

        for page in self.caller.pages(
            "searchOrders",
            fetch,
            lambda r: (r.pagination or {}).get("nextToken") or r.payload.get("nextToken"),
            lambda r: isinstance(r.payload.get("orders"), list),
            recover=self.pii.recover_2026(sent),
        ):
            for raw in page.payload["orders"]:
                yield parse_order_2026(raw)

    def _order_2026(self, order_id: str) -> Order | None:
        client = self.transport.api("orders2026")
        sent: list[str] = []

        def get() -> ApiResponse:
            sent[:] = [self.pii.included_2026()]
            return client.get_order(order_id, includedData=sent[-1])

        res = self.caller.call("getOrder2026", get, lambda r: isinstance(r.payload.get("order"), dict),
                               recover=self.pii.recover_2026(sent))
        record = parse_order_2026(res.payload["order"])
        if isinstance(record, UnparsableOrder):
            raise AmazonPayloadError(f"order {order_id} does not parse: {record.error}")
        return record

    # v0 ------------------------------------------------------------------------------------------------

    def _get_orders_v0(self, params: dict[str, Any]) -> Iterator[Order | UnparsableOrder]:
        def fetch(client: Any, token: str | None) -> ApiResponse:
            extra = {"NextToken": token} if token else {}
            return client.get_orders(**params, **extra)

        for page in self.pii.v0_pages("getOrders", fetch, lambda r: r.payload.get("NextToken"),
                                      lambda r: isinstance(r.payload.get("Orders"), list)):
            for raw in page.payload["Orders"]:
                yield self._with_items_v0(raw)

    def _orders_v0(self, mids: list[str], after: datetime, before: datetime) -> Iterator[Order | UnparsableOrder]:
        yield from self._get_orders_v0({
            "LastUpdatedAfter": iso(after),
            "LastUpdatedBefore": iso(before),
            "MarketplaceIds": ",".join(mids),
            "MaxResultsPerPage": 100,
        })

    def fetch_orders_by_ids(self, marketplace_id: str, order_ids: list[str],
                            updated_after: datetime) -> Iterator[Order | UnparsableOrder]:
        if self.settings.orders_api != "v0":
            raise ValueError("fetch_orders_by_ids needs orders_api = \"v0\"")
        window = self.window(updated_after, self.clock.now())
        if window is None:
            return
        for i in range(0, len(order_ids), limits.MAX_ORDER_IDS_PER_CALL):
            yield from self._get_orders_v0({
                "LastUpdatedAfter": iso(window[0]),
                "LastUpdatedBefore": iso(window[1]),
                "MarketplaceIds": marketplace_id,
                "AmazonOrderIds": ",".join(order_ids[i : i + limits.MAX_ORDER_IDS_PER_CALL]),
                "MaxResultsPerPage": 100,
            })

    def _items_v0(self, order_id: str) -> list[dict[str, Any]]:
        def fetch(client: Any, token: str | None) -> ApiResponse:
            extra = {"NextToken": token} if token else {}
            return client.get_order_items(order_id, **extra)

        items: list[dict[str, Any]] = []
        for page in self.pii.v0_pages("getOrderItems", fetch, lambda r: r.payload.get("NextToken"),
                                      lambda r: isinstance(r.payload.get("OrderItems"), list)):
            items.extend(page.payload["OrderItems"])
        return items

    def _with_items_v0(self, raw: Any) -> Order | UnparsableOrder:
        order_id = str(raw.get("AmazonOrderId") or "?") if isinstance(raw, dict) else "?"
        if order_id == "?":
            return parse_order_v0(raw, [])
        return parse_order_v0(raw, self._items_v0(order_id))

    def _order_v0(self, order_id: str) -> Order | None:
        res = self.pii.v0_call("getOrder", lambda client: client.get_order(order_id),
                               lambda r: isinstance(r.payload, dict) and bool(r.payload.get("AmazonOrderId")))
        record = self._with_items_v0(res.payload)
        if isinstance(record, UnparsableOrder):
            raise AmazonPayloadError(f"order {order_id} does not parse: {record.error}")
        return record
