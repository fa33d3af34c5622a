"""The SP-API simulator driven through python-amazon-sp-api itself (compatibility), plus raw-httpx fault tests."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
from sp_api.api import CatalogItems, Finances, Orders, Reports, Sellers, Tokens
from sp_api.auth import AccessTokenClient
from sp_api.auth import access_token_client as lwa_cache_mod
from sp_api.base import Marketplaces, SellingApiBadRequestException, SellingApiRequestThrottledException
from sp_api.base.credential_provider import FromCodeCredentialProvider
from sp_api.base.exceptions import SellingApiForbiddenException

from amz2erp.amazon.reports import parse_datetime
from amz2erp.clock import SimulatedClock
from amz2erp_sim import datagen
from amz2erp_sim.datagen import MARKETPLACES, generate_listings, generate_orders
from amz2erp_sim.spapi import FaultConfig, SpApiOptions, SpApiSimulator
from tests.conftest import SP_API_MODELS

US = MARKETPLACES["US"].marketplace_id
DE = MARKETPLACES["DE"].marketplace_id
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
START = NOW - timedelta(days=40)


@pytest.fixture(autouse=True)
def _clean_lwa_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    monkeypatch.delenv("AWS_ENV", raising=False)
    lwa_cache_mod.cache.clear()
    yield
    lwa_cache_mod.cache.clear()


@pytest.fixture(scope="module")
def data() -> tuple[list[datagen.SimListing], list[datagen.SimOrder]]:
    listings = generate_listings(7, 40, ("US", "DE"), end=START)
    orders = generate_orders(7, 150, listings, START, NOW - timedelta(minutes=10))
    return listings, orders


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(NOW)


@pytest.fixture
def sim(clock: SimulatedClock, data) -> Iterator[SpApiSimulator]:
    listings, orders = data
    import copy

    with SpApiSimulator(
        SpApiOptions(report_processing_seconds=30, models_dir=SP_API_MODELS),
        clock=clock,
        listings=copy.deepcopy(listings),
        orders=copy.deepcopy(orders),
    ) as s:
        yield s


def make_client(cls, sim: SpApiSimulator, credentials: dict | None = None, **kw):
    host = sim.url.split("://", 1)[1]
    lwa = type("SimLWA", (AccessTokenClient,), {"scheme": "http://", "host": host})
    client = cls(
        marketplace=Marketplaces.US,
        credentials=dict(credentials or sim.credentials),
        credential_providers=[FromCodeCredentialProvider],
        auth_token_client_class=lwa,
        **kw,
    )
    client.endpoint = sim.url
    return client


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- orders v0


def test_get_orders_paging_matches_truth(sim: SpApiSimulator) -> None:
    orders = make_client(Orders, sim)
    seen: list[dict] = []
    token = None
    pages = 0
    while True:
        kw = {
            "LastUpdatedAfter": ts(START - timedelta(days=1)),
            "MarketplaceIds": [US, DE],
            "MaxResultsPerPage": 40,
        }
        if token:
            kw["NextToken"] = token
        res = orders.get_orders(**kw)
        pages += 1
        seen.extend(res.payload["Orders"])
        assert "LastUpdatedBefore" in res.payload
        token = res.next_token
        if not token:
            break
    truth = {o.amazon_order_id: o for o in sim.orders}
    assert pages == 4  # 150 orders / 40 per page
    assert len(seen) == len(truth) == len({o["AmazonOrderId"] for o in seen})
    updates = [o["LastUpdateDate"] for o in seen]
    assert updates == sorted(updates)
    for o in seen:
        t = truth[o["AmazonOrderId"]]
        assert o["OrderStatus"] == t.status
        if t.status in ("Pending", "PendingAvailability", "Canceled"):
            assert "OrderTotal" not in o
        else:
            assert Decimal(o["OrderTotal"]["Amount"]) == t.order_total
            assert o["OrderTotal"]["CurrencyCode"] == ("USD" if t.marketplace_id == US else "EUR")
        # no RDT: no PII
        assert o["BuyerInfo"] == {}
        if "ShippingAddress" in o:
            assert "AddressLine1" not in o["ShippingAddress"] and "Name" not in o["ShippingAddress"]
    assert sim.operation_counts()["getOrders"] == 4
    assert sim.operation_counts()["lwaToken"] == 1


def test_get_orders_filters(sim: SpApiSimulator) -> None:
    orders = make_client(Orders, sim)
    res = orders.get_orders(
        CreatedAfter=ts(START - timedelta(days=1)), MarketplaceIds=US, OrderStatuses=["Shipped", "Unshipped"],
        FulfillmentChannels=["AFN"],
    )  # fmt: skip
    got = res.payload["Orders"]
    expected = [
        o for o in sim.orders
        if o.marketplace_id == US and o.status in ("Shipped", "Unshipped") and o.fulfillment_channel == "AFN"
    ]  # fmt: skip
    assert {o["AmazonOrderId"] for o in got} == {o.amazon_order_id for o in expected}
    assert "CreatedBefore" in res.payload and "LastUpdatedBefore" not in res.payload


def test_two_minute_rule_and_mixing_rule(sim: SpApiSimulator, clock: SimulatedClock) -> None:
    orders = make_client(Orders, sim)
    now = clock.now()
    with pytest.raises(SellingApiBadRequestException):
        orders.get_orders(
            LastUpdatedAfter=ts(START), LastUpdatedBefore=ts(now - timedelta(seconds=60)), MarketplaceIds=US
        )
    ok = orders.get_orders(
        LastUpdatedAfter=ts(START), LastUpdatedBefore=ts(now - timedelta(minutes=3)), MarketplaceIds=US
    )
    assert ok.payload["LastUpdatedBefore"] == ts(now - timedelta(minutes=3))
    with pytest.raises(SellingApiBadRequestException):  # mixing families
        orders.get_orders(
            CreatedAfter=ts(START), LastUpdatedBefore=ts(now - timedelta(minutes=5)), MarketplaceIds=US
        )
    with pytest.raises(SellingApiBadRequestException):  # both Afters
        orders.get_orders(CreatedAfter=ts(START), LastUpdatedAfter=ts(START), MarketplaceIds=US)
    with pytest.raises(SellingApiBadRequestException):  # neither
        orders.get_orders(MarketplaceIds=US)
    with pytest.raises(SellingApiBadRequestException):  # Before < After
        orders.get_orders(
            CreatedAfter=ts(START), CreatedBefore=ts(START - timedelta(days=1)), MarketplaceIds=US
        )


def test_get_order_items_and_pending_hide_prices(sim: SpApiSimulator) -> None:
    sim.order_items_page_size = 1
    orders = make_client(Orders, sim)
    truth = sim.orders
    multi = next(o for o in truth if len(o.items) >= 2 and o.status == "Shipped")
    items: list[dict] = []
    token = None
    while True:
        res = orders.get_order_items(multi.amazon_order_id, **({"NextToken": token} if token else {}))
        items.extend(res.payload["OrderItems"])
        token = res.next_token
        if not token:
            break
    assert [i["OrderItemId"] for i in items] == [i.order_item_id for i in multi.items]
    for got, t in zip(items, multi.items, strict=True):
        assert Decimal(got["ItemPrice"]["Amount"]) == t.item_price == t.unit_price * t.quantity_ordered
        assert got["QuantityOrdered"] == t.quantity_ordered and got["SellerSKU"] == t.sku
    pending = next(o for o in truth if o.status == "Pending")
    res = orders.get_order_items(pending.amazon_order_id)
    for it in res.payload["OrderItems"]:
        assert "ItemPrice" not in it and "ItemTax" not in it and "PromotionDiscount" not in it


def test_rdt_unlocks_pii(sim: SpApiSimulator) -> None:
    order = next(o for o in sim.orders if o.status == "Shipped" and o.fulfillment_channel == "MFN")
    tokens = make_client(Tokens, sim)
    rdt = tokens.create_restricted_data_token(
        restrictedResources=[
            {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo", "shippingAddress"]}
        ]
    ).payload["restrictedDataToken"]
    pii_orders = make_client(Orders, sim, restricted_data_token=rdt)
    res = pii_orders.get_orders(
        CreatedAfter=ts(START - timedelta(days=1)), MarketplaceIds=order.marketplace_id
    )
    got = next(o for o in res.payload["Orders"] if o["AmazonOrderId"] == order.amazon_order_id)
    assert got["BuyerInfo"]["BuyerName"] == order.buyer_name
    assert got["ShippingAddress"]["AddressLine1"] == order.shipping_address.line1
    # the library's per-call shortcut works too
    plain = make_client(Orders, sim)
    one = plain.get_order(order.amazon_order_id, RestrictedResources=["buyerInfo", "shippingAddress"])
    assert one.payload["ShippingAddress"]["Name"] == order.shipping_address.name
    assert plain.get_order(order.amazon_order_id).payload["BuyerInfo"] == {}


def test_rdt_refused_without_pii_role(sim: SpApiSimulator) -> None:
    sim.pii_allowed = False
    tokens = make_client(Tokens, sim)
    with pytest.raises(SellingApiForbiddenException):
        tokens.create_restricted_data_token(
            restrictedResources=[
                {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]}
            ]
        )


def test_429_after_burst_on_simulated_clock(sim: SpApiSimulator, clock: SimulatedClock) -> None:
    orders = make_client(Orders, sim)
    kw = {"LastUpdatedAfter": ts(START), "MarketplaceIds": US, "MaxResultsPerPage": 1}
    for _ in range(20):
        res = orders.get_orders(**kw)
        assert res.rate_limit == "0.0167"
    with pytest.raises(SellingApiRequestThrottledException) as exc:
        orders.get_orders(**kw)
    assert exc.value.amzn_code == "QuotaExceeded"
    clock.sleep(61)  # one token refills at 0.0167/s
    orders.get_orders(**kw)
    with pytest.raises(SellingApiRequestThrottledException):
        orders.get_orders(**kw)


def test_wrong_lwa_credentials_and_missing_token(sim: SpApiSimulator) -> None:
    from sp_api.auth.exceptions import AuthorizationError

    wrong = {**sim.credentials, "lwa_client_secret": "something-else"}
    with pytest.raises(AuthorizationError) as exc:
        make_client(Sellers, sim, credentials=wrong).get_marketplace_participation()
    assert exc.value.status_code == 401
    r = httpx.get(sim.url + "/sellers/v1/marketplaceParticipations")
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "Unauthorized"


def test_mutations_visible_incrementally(sim: SpApiSimulator, clock: SimulatedClock) -> None:
    orders = make_client(Orders, sim)
    target = next(o for o in sim.orders if o.status == "Unshipped" and not o.is_replacement)
    clock.advance(600)
    sim.ship_order(target.amazon_order_id)
    after = clock.now() - timedelta(minutes=1)
    assert (
        orders.get_orders(LastUpdatedAfter=ts(after - timedelta(minutes=5)), MarketplaceIds=[US, DE]).payload[
            "Orders"
        ]
        == []
    )
    clock.advance(180)  # visible once older than two minutes
    got = orders.get_orders(
        LastUpdatedAfter=ts(after - timedelta(minutes=5)), MarketplaceIds=[US, DE]
    ).payload["Orders"]
    assert [o["AmazonOrderId"] for o in got] == [target.amazon_order_id]
    assert got[0]["OrderStatus"] == "Shipped"


# --------------------------------------------------------------------------- reports


def test_listings_report_lifecycle_cp1252(sim: SpApiSimulator, clock: SimulatedClock) -> None:
    reports = make_client(Reports, sim)
    rid = reports.create_report(reportType="GET_MERCHANT_LISTINGS_ALL_DATA", marketplaceIds=[DE]).payload[
        "reportId"
    ]
    assert reports.get_report(rid).payload["processingStatus"] == "IN_QUEUE"
    clock.sleep(10)
    assert reports.get_report(rid).payload["processingStatus"] == "IN_PROGRESS"
    clock.sleep(25)
    rep = reports.get_report(rid).payload
    assert rep["processingStatus"] == "DONE"
    doc = reports.get_report_document(rep["reportDocumentId"], download=True)
    assert doc.character_code.lower() in ("cp1252", "windows-1252")
    text = doc.payload["document"]
    lines = text.splitlines()
    header = lines[0].split("\t")
    assert header[:4] == ["item-name", "item-description", "listing-id", "seller-sku"]
    rows = [dict(zip(header, ln.split("\t"), strict=True)) for ln in lines[1:]]
    truth = {x.sku: x for x in sim.listings if x.marketplace_id == DE}
    assert {r["seller-sku"] for r in rows} == set(truth)
    for r in rows:
        t = truth[r["seller-sku"]]
        assert Decimal(r["price"]) == t.price
        # local time of the marketplace's zone (from the marketplace table), summer time included
        assert r["open-date"].endswith(" MEST" if t.open_date.astimezone(ZoneInfo("Europe/Berlin")).dst() else " MET")
        assert parse_datetime(r["open-date"]) == t.open_date.replace(microsecond=0)
        assert r["item-name"] == t.title.encode("cp1252", errors="replace").decode("cp1252")
    # gzip'd bytes on the wire
    meta = reports.get_report_document(rep["reportDocumentId"]).payload
    raw = httpx.get(meta["url"])
    assert raw.headers["content-type"] == "text/plain; charset=Cp1252"
    assert gzip.decompress(raw.content).decode("cp1252").startswith("item-name\t")


def test_orders_report_range_cancelled_and_fatal(sim: SpApiSimulator, clock: SimulatedClock) -> None:
    reports = make_client(Reports, sim, timeout=10)
    rtype = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
    end = clock.now() - timedelta(minutes=5)
    with pytest.raises(SellingApiBadRequestException):
        reports.create_report(
            reportType=rtype, marketplaceIds=[US], dataStartTime=end - timedelta(days=45), dataEndTime=end
        )
    ok = reports.create_report(
        reportType=rtype, marketplaceIds=[US], dataStartTime=end - timedelta(days=30), dataEndTime=end
    )
    empty = reports.create_report(
        reportType=rtype, marketplaceIds=[US], dataStartTime=datetime(2025, 1, 1, tzinfo=timezone.utc),
        dataEndTime=datetime(2025, 1, 20, tzinfo=timezone.utc),
    )  # fmt: skip
    sim.fail_next_reports(1)
    fatal = reports.create_report(reportType=rtype, marketplaceIds=[US])
    clock.sleep(31)
    assert reports.get_report(empty.payload["reportId"]).payload["processingStatus"] == "CANCELLED"
    assert reports.get_report(fatal.payload["reportId"]).payload["processingStatus"] == "FATAL"
    rep = reports.get_report(ok.payload["reportId"]).payload
    assert rep["processingStatus"] == "DONE"
    text = reports.get_report_document(rep["reportDocumentId"], download=True).payload["document"]
    lines = text.splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, ln.split("\t"), strict=True)) for ln in lines[1:]]
    in_range = [
        o
        for o in sim.orders
        if o.marketplace_id == US and end - timedelta(days=30) <= o.last_update_date <= end
    ]
    assert {r["amazon-order-id"] for r in rows} == {o.amazon_order_id for o in in_range}
    assert len(rows) == sum(len(o.items) for o in in_range)
    assert "buyer-name" not in header and "ship-address-1" not in header
    listed = reports.get_reports(
        reportTypes=[rtype], processingStatuses=["DONE", "CANCELLED", "FATAL"]
    ).payload["reports"]
    assert len(listed) == 3


# --------------------------------------------------------------------------- catalog, sellers, finances, 2026


def test_catalog_search_by_asin(sim: SpApiSimulator) -> None:
    catalog = make_client(CatalogItems, sim, version="2022-04-01")
    us = [x for x in sim.listings if x.marketplace_id == US][:5]
    res = catalog.search_catalog_items(
        identifiers=",".join(x.asin for x in us) + ",B0NOTEXIST",
        identifiersType="ASIN",
        marketplaceIds=US,
        includedData="summaries,images,classifications,productTypes",
    )
    assert res.payload["numberOfResults"] == len({x.asin for x in us})
    by_asin = {i["asin"]: i for i in res.payload["items"]}
    for x in us:
        summary = by_asin[x.asin]["summaries"][0]
        assert summary["itemName"] == x.title and summary["brand"] == x.brand
        assert by_asin[x.asin]["images"][0]["images"][0]["link"] == x.image_url
    with pytest.raises(SellingApiBadRequestException):  # strict: bad enum value
        catalog.search_catalog_items(
            identifiers=us[0].asin, identifiersType="ASIN", marketplaceIds=US, includedData="nonsense"
        )
    assert sim.contract_violations


def test_sellers_and_finances(sim: SpApiSimulator) -> None:
    parts = make_client(Sellers, sim).get_marketplace_participation().payload
    assert {p["marketplace"]["id"] for p in parts} == {US, DE}
    account = make_client(Sellers, sim).get_account().payload
    assert account["sellingPlan"] == "PROFESSIONAL"
    shipped = next(o for o in sim.orders if o.status == "Shipped" and o.order_total > 0)
    ev = make_client(Finances, sim).get_financial_events_for_order(shipped.amazon_order_id).payload
    items = ev["FinancialEvents"]["ShipmentEventList"][0]["ShipmentItemList"]
    principal = sum(
        Decimal(str(c["ChargeAmount"]["CurrencyAmount"]))
        for i in items
        for c in i["ItemChargeList"]
        if c["ChargeType"] == "Principal"
    )
    assert principal == sum(i.item_price for i in shipped.items)


def test_search_orders_2026(sim: SpApiSimulator) -> None:
    orders = make_client(Orders, sim, version="2026-01-01")
    got: list[dict] = []
    token = None
    while True:
        kw = {
            "lastUpdatedAfter": ts(START - timedelta(days=1)),
            "marketplaceIds": [US],
            "includedData": ["BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "PROMOTION"],
            "maxResultsPerPage": 50,
        }
        if token:
            kw["paginationToken"] = token
        res = orders.search_orders(**kw)
        got.extend(res.payload["orders"])
        token = res.next_token
        if not token:
            break
    truth = {o.amazon_order_id: o for o in sim.orders if o.marketplace_id == US}
    assert {o["orderId"] for o in got} == set(truth)
    for o in got:
        t = truth[o["orderId"]]
        assert o["fulfillment"]["fulfillmentStatus"] == datagen.STATUS_2026[t.status]
        assert o["buyer"]["buyerName"] == t.buyer_name
        if t.prices_visible:
            assert Decimal(o["proceeds"]["grandTotal"]["amount"]) == t.order_total
            assert o["proceeds"]["grandTotal"]["currencyCode"] == "USD"
            for item, ti in zip(o["orderItems"], t.items, strict=True):
                if ti.item_price:
                    assert Decimal(item["product"]["price"]["unitPrice"]["amount"]) == ti.unit_price
    one = orders.get_order(got[0]["orderId"], includedData=["FULFILLMENT"]).payload["order"]
    assert one["orderId"] == got[0]["orderId"] and "buyer" not in one
    with pytest.raises(SellingApiBadRequestException):
        orders.search_orders(marketplaceIds=[US])  # neither createdAfter nor lastUpdatedAfter


def test_search_orders_2026_no_pii_without_role(sim: SpApiSimulator) -> None:
    sim.pii_allowed = False
    orders = make_client(Orders, sim, version="2026-01-01")
    res = orders.search_orders(
        createdAfter=ts(START - timedelta(days=1)), marketplaceIds=[US], includedData=["BUYER", "RECIPIENT"]
    )
    assert res.payload["orders"]
    assert all("buyer" not in o and "recipient" not in o for o in res.payload["orders"])


# --------------------------------------------------------------------------- behaviour & faults (plain httpx)


def _token(sim: SpApiSimulator) -> str:
    r = httpx.post(
        sim.lwa_url,
        data={"grant_type": "refresh_token", "client_id": sim.lwa_client_id, "client_secret": sim.lwa_client_secret,
              "refresh_token": sim.lwa_refresh_token},
    )  # fmt: skip
    assert r.status_code == 200
    return r.json()["access_token"]


def test_junk_params_repeated_lists_and_host_ignored(sim: SpApiSimulator) -> None:
    h = {"x-amz-access-token": _token(sim), "host": "27.0.0.1:1"}
    params = [("LastUpdatedAfter", ts(START)), ("MarketplaceIds", US), ("MarketplaceIds", DE), ("marketplace_ids", "X"),
              ("MarketplaceId", "X"), ("whatever", "1")]  # fmt: skip
    r = httpx.get(sim.url + "/orders/v0/orders", params=params, headers=h)
    assert r.status_code == 200
    assert {o["MarketplaceId"] for o in r.json()["payload"]["Orders"]} == {US, DE}
    assert r.headers["x-amzn-RateLimit-Limit"] == "0.0167" and r.headers["x-amzn-RequestId"]


def test_faults_http_level(sim: SpApiSimulator) -> None:
    h = {"x-amz-access-token": _token(sim)}
    url = sim.url + "/sellers/v1/marketplaceParticipations"
    sim.fail_next("html503")
    r = httpx.get(url, headers=h)
    assert (
        r.status_code == 503 and r.headers["content-type"].startswith("text/html") and "errors" not in r.text
    )
    sim.fail_next("500")
    r = httpx.get(url, headers=h)
    assert r.status_code == 500 and r.json()["errors"][0]["code"] == "InternalFailure"
    sim.fail_next("429")
    r = httpx.get(url, headers=h)
    assert r.status_code == 429 and r.headers["x-amzn-RateLimit-Limit"]
    sim.fail_next("truncated")
    r = httpx.get(url, headers=h)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    sim.fail_next("reset")
    with pytest.raises(httpx.TransportError):
        httpx.get(url, headers=h)
    sim.set_faults(rate=0.0, timeout_seconds=0.3)
    sim.fail_next("timeout")
    with pytest.raises(httpx.TimeoutException):
        httpx.get(url, headers=h, timeout=0.1)
    # the server is still fine afterwards, on a keep-alive connection
    with httpx.Client() as c:
        for _ in range(3):
            assert c.get(url, headers=h).status_code == 200


def test_random_faults_deterministic(clock: SimulatedClock) -> None:
    def run() -> list:
        with SpApiSimulator(
            SpApiOptions(rate_limits=False, faults=FaultConfig(rate=0.5, kinds=("429", "500"), seed=3)), clock=clock
        ) as s:
            h = {"x-amz-access-token": _token(s)}
            return [
                httpx.get(s.url + "/sellers/v1/marketplaceParticipations", headers=h).status_code
                for _ in range(12)
            ]

    first, second = run(), run()
    assert first == second
    assert {429, 500, 200} >= set(first) and len(set(first)) > 1


def test_client_dropping_connection_does_not_break_server(sim: SpApiSimulator) -> None:
    host, port = "127.0.0.1", sim.port
    with socket.create_connection((host, port)) as s:
        s.sendall(b"GET /orders/v0/orders HTTP/1.1\r\nHost: x\r\n")  # incomplete, then drop
    assert httpx.get(sim.url + "/orders/v0/orders").status_code == 403


def test_two_year_rule_except_jp(clock: SimulatedClock) -> None:
    listings = generate_listings(2, 6, ("US", "JP"))
    old_start = NOW - timedelta(days=900)
    orders = generate_orders(2, 20, listings, old_start, old_start + timedelta(days=10))
    with SpApiSimulator(SpApiOptions(models_dir=SP_API_MODELS), clock=clock, listings=listings, orders=orders) as s:
        h = {"x-amz-access-token": _token(s)}
        params = {"CreatedAfter": ts(old_start - timedelta(days=1)), "MarketplaceIds": f"{US},A1VC38T7YXB528"}
        got = httpx.get(s.url + "/orders/v0/orders", params=params, headers=h).json()["payload"]["Orders"]
        assert got and {o["MarketplaceId"] for o in got} == {"A1VC38T7YXB528"}
        assert len(got) == sum(o.marketplace_id == "A1VC38T7YXB528" for o in orders)
        # still reachable by id
        us_order = next(o for o in orders if o.marketplace_id == US)
        assert httpx.get(f"{s.url}/orders/v0/orders/{us_order.amazon_order_id}", headers=h).status_code == 200


def test_request_log_and_strict_off(clock: SimulatedClock) -> None:
    with SpApiSimulator(SpApiOptions(strict=False), clock=clock) as s:
        h = {"x-amz-access-token": _token(s)}
        r = httpx.get(
            s.url + "/catalog/2022-04-01/items",
            params={
                "identifiers": "B000000001",
                "identifiersType": "ASIN",
                "marketplaceIds": US,
                "includedData": "x",
            },
            headers=h,
        )
        assert r.status_code == 200 and r.json()["numberOfResults"] == 0
        assert s.contract_violations == []
        entry = s.request_log[-1]
        assert entry["operation"] == "searchCatalogItems" and entry["status"] == 200
        assert entry["params"]["identifiers"] == "B000000001" and entry["sim_time"] == clock.now()
        assert s.operation_counts() == {"lwaToken": 1, "searchCatalogItems": 1}


def test_cli_serves_until_interrupted() -> None:
    import json
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amz2erp_sim.spapi",
            "--port",
            "0",
            "--listings",
            "5",
            "--orders",
            "12",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        url = lines[0].split()[-1]
        creds = json.loads(lines[2].split(":", 1)[1])
        assert url.startswith("http://127.0.0.1:") and lines[1].split()[-1] == url + "/auth/o2/token"
        tok = httpx.post(
            url + "/auth/o2/token",
            data={"grant_type": "refresh_token", "client_id": creds["lwa_app_id"],
                  "client_secret": creds["lwa_client_secret"], "refresh_token": creds["refresh_token"]},
        ).json()["access_token"]  # fmt: skip
        r = httpx.get(url + "/sellers/v1/marketplaceParticipations", headers={"x-amz-access-token": tok})
        assert r.status_code == 200 and len(r.json()["payload"]) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        # generous: on a loaded machine (two test suites at once) the interpreter's exit alone took over 10 s
        assert proc.wait(timeout=60) == 0


def test_concurrent_clients_and_live_mutations(sim: SpApiSimulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sim.rate_limits_enabled = False
    token = _token(sim)
    ids = [o.amazon_order_id for o in sim.orders]

    def worker(i: int) -> list[int]:
        with httpx.Client(base_url=sim.url, headers={"x-amz-access-token": token}) as c:
            return [
                c.get(f"/orders/v0/orders/{ids[(i * 7 + k) % len(ids)]}/orderItems").status_code
                for k in range(15)
            ]

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(worker, i) for i in range(8)]
        for o in sim.orders:
            if o.status == "Unshipped":
                sim.ship_order(o.amazon_order_id)
        results = [code for f in futures for code in f.result()]
    assert results == [200] * 120
    assert sim.operation_counts()["getOrderItems"] == 120
    assert not sim.server_errors
    assert all(o.status != "Unshipped" for o in sim.orders)
