"""Every simulator operation's responses validated against Amazon's official models (jsonschema)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from amz2erp.clock import SimulatedClock
from amz2erp_sim.datagen import MARKETPLACES, generate_listings, generate_orders
from amz2erp_sim.spapi import SpApiOptions, SpApiSimulator
from amz2erp_sim.spapi import models as spapi_models
from tests.conftest import SP_API_MODELS

MODELS = spapi_models.load_models(SP_API_MODELS)
assert MODELS is not None, f"no SP-API models in {SP_API_MODELS}"
# jsonschema is a test dependency: without it every response check would pass silently
assert spapi_models.jsonschema_available(), "jsonschema is not installed (pip install -e '.[test]')"

US = MARKETPLACES["US"].marketplace_id
DE = MARKETPLACES["DE"].marketplace_id
NOW = datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc)
START = NOW - timedelta(days=25)
ALL_2026 = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS"
ALL_CATALOG = (
    "attributes,classifications,dimensions,identifiers,images,productTypes,relationships,salesRanks,summaries"
)

_listings = generate_listings(11, 30, ("US", "DE"), end=START)
_orders = generate_orders(11, 80, _listings, START, NOW - timedelta(minutes=30))


class Api:
    def __init__(self, sim: SpApiSimulator, clock: SimulatedClock) -> None:
        self.sim = sim
        self.clock = clock
        r = httpx.post(
            sim.lwa_url,
            data={"grant_type": "refresh_token", "client_id": sim.lwa_client_id,
                  "client_secret": sim.lwa_client_secret, "refresh_token": sim.lwa_refresh_token},
        )  # fmt: skip
        self.token = r.json()["access_token"]
        self.http = httpx.Client(base_url=sim.url, timeout=10)

    def call(self, method: str, path: str, *, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers={"x-amz-access-token": token or self.token}, **kw)

    def rdt(self, path: str) -> str:
        body = {
            "restrictedResources": [
                {"method": "GET", "path": path, "dataElements": ["buyerInfo", "shippingAddress"]}
            ]
        }
        return self.call("POST", "/tokens/2021-03-01/restrictedDataToken", json=body).json()[
            "restrictedDataToken"
        ]


@pytest.fixture
def api() -> Iterator[Api]:
    clock = SimulatedClock(NOW)
    with SpApiSimulator(
        SpApiOptions(rate_limits=False, models_dir=SP_API_MODELS),
        clock=clock, listings=copy.deepcopy(_listings), orders=copy.deepcopy(_orders),
    ) as sim:
        a = Api(sim, clock)
        yield a
        a.http.close()
        assert not sim.server_errors, sim.server_errors


def check(operation: str, resp: httpx.Response, expected_status: int | None = None) -> Any:
    if expected_status is not None:
        assert resp.status_code == expected_status, resp.text
    body = resp.json() if resp.content else None
    errors = spapi_models.validate_response(operation, resp.status_code, body, MODELS)
    assert errors == [], f"{operation} {resp.status_code}: {errors[:5]}"
    return body


def _ids(status: str | None = None) -> list[str]:
    return [o.amazon_order_id for o in _orders if status is None or o.status == status]


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- orders v0


@pytest.mark.parametrize("with_rdt", [False, True])
def test_get_orders(api: Api, with_rdt: bool) -> None:
    token = api.rdt("/orders/v0/orders") if with_rdt else None
    params = {
        "LastUpdatedAfter": ts(START - timedelta(days=1)),
        "MarketplaceIds": f"{US},{DE}",
        "MaxResultsPerPage": 30,
    }
    body = check("getOrders", api.call("GET", "/orders/v0/orders", params=params, token=token), 200)
    assert len(body["payload"]["Orders"]) == 30 and body["payload"]["NextToken"]
    page2 = check(
        "getOrders",
        api.call("GET", "/orders/v0/orders", params={**params, "NextToken": body["payload"]["NextToken"]}),
        200,
    )
    assert page2["payload"]["Orders"]
    check("getOrders", api.call("GET", "/orders/v0/orders", params={"MarketplaceIds": US}), 400)


@pytest.mark.parametrize(
    "order_id", [_ids(s)[0] for s in ("Pending", "Unshipped", "Shipped", "Canceled", "PartiallyShipped")]
)
def test_get_order_items_address_buyer(api: Api, order_id: str) -> None:
    base = f"/orders/v0/orders/{order_id}"
    for with_rdt in (False, True):
        tok = api.rdt(base + "/orderItems") if with_rdt else None
        check("getOrderItems", api.call("GET", base + "/orderItems", token=tok), 200)
        tok = api.rdt(base) if with_rdt else None
        check("getOrder", api.call("GET", base, token=tok), 200)
        tok = api.rdt(base + "/address") if with_rdt else None
        check("getOrderAddress", api.call("GET", base + "/address", token=tok), 200)
        tok = api.rdt(base + "/buyerInfo") if with_rdt else None
        check("getOrderBuyerInfo", api.call("GET", base + "/buyerInfo", token=tok), 200)
        tok = api.rdt(base + "/orderItems/buyerInfo") if with_rdt else None
        check("getOrderItemsBuyerInfo", api.call("GET", base + "/orderItems/buyerInfo", token=tok), 200)


def test_gift_orders_with_rdt(api: Api) -> None:
    gift = [o for o in _orders if any(i.is_gift for i in o.items) and o.prices_visible]
    assert gift, "generator should produce gift-wrapped orders"
    base = f"/orders/v0/orders/{gift[0].amazon_order_id}/orderItems"
    body = check("getOrderItems", api.call("GET", base, token=api.rdt(base)), 200)
    assert any("GiftWrapPrice" in i.get("BuyerInfo", {}) for i in body["payload"]["OrderItems"])


def test_orders_v0_errors(api: Api) -> None:
    check("getOrder", api.call("GET", "/orders/v0/orders/999-0000000-0000000"), 404)
    check("getOrder", api.call("GET", "/orders/v0/orders/" + _ids()[0], token="bogus"), 403)


# --------------------------------------------------------------------------- orders 2026-01-01


def test_search_orders_2026(api: Api) -> None:
    params = {
        "createdAfter": ts(START - timedelta(days=1)),
        "includedData": ALL_2026,
        "maxResultsPerPage": 40,
    }
    body = check("searchOrders", api.call("GET", "/orders/2026-01-01/orders", params=params), 200)
    assert len(body["orders"]) == 40 and body["pagination"]["nextToken"] and body["createdBefore"]
    body2 = check(
        "searchOrders",
        api.call(
            "GET", "/orders/2026-01-01/orders", params={"paginationToken": body["pagination"]["nextToken"]}
        ),
        200,
    )
    assert body2["orders"]
    check("searchOrders", api.call("GET", "/orders/2026-01-01/orders", params={"fulfillmentStatuses": "SHIPED",
                                                                                "createdAfter": ts(START)}), 400)  # fmt: skip
    assert api.sim.contract_violations


@pytest.mark.parametrize("order_id", [_ids(s)[0] for s in ("Pending", "Shipped", "Canceled")])
def test_get_order_2026(api: Api, order_id: str) -> None:
    check(
        "getOrder2026",
        api.call("GET", f"/orders/2026-01-01/orders/{order_id}", params={"includedData": ALL_2026}),
        200,
    )
    check("orders_2026-01-01:getOrder", api.call("GET", f"/orders/2026-01-01/orders/{order_id}"), 200)


# --------------------------------------------------------------------------- tokens, reports


def test_rdt_contract(api: Api) -> None:
    body = {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]}],
            "marketplaceIds": [US], "MarketplaceIds": [US]}  # fmt: skip
    check(
        "createRestrictedDataToken",
        api.call("POST", "/tokens/2021-03-01/restrictedDataToken", json=body),
        200,
    )
    bad = {"restrictedResources": [{"method": "FETCH", "path": "/orders/v0/orders"}]}
    check(
        "createRestrictedDataToken", api.call("POST", "/tokens/2021-03-01/restrictedDataToken", json=bad), 400
    )


def test_reports_contract(api: Api) -> None:
    created = []
    for rtype, mids, extra in (
        ("GET_MERCHANT_LISTINGS_ALL_DATA", [US], {}),
        ("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL", [US, DE],
         {"dataStartTime": ts(START), "dataEndTime": ts(NOW - timedelta(hours=1))}),
    ):  # fmt: skip
        body = check(
            "createReport",
            api.call(
                "POST",
                "/reports/2021-06-30/reports",
                json={"reportType": rtype, "marketplaceIds": mids, **extra},
            ),
            202,
        )
        created.append(body["reportId"])
    queued = check(
        "createReport",
        api.call(
            "POST",
            "/reports/2021-06-30/reports",
            json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": [DE]},
        ),
        202,
    )["reportId"]
    check("cancelReport", api.call("DELETE", f"/reports/2021-06-30/reports/{queued}"), 200)
    check("getReport", api.call("GET", f"/reports/2021-06-30/reports/{created[0]}"), 200)
    api.clock.sleep(60)
    for rid in created:
        rep = check("getReport", api.call("GET", f"/reports/2021-06-30/reports/{rid}"), 200)
        assert rep["processingStatus"] == "DONE"
        doc = check(
            "getReportDocument",
            api.call("GET", f"/reports/2021-06-30/documents/{rep['reportDocumentId']}"),
            200,
        )
        assert doc["compressionAlgorithm"] == "GZIP" and doc["url"].startswith(api.sim.url)
    listed = check("getReports", api.call("GET", "/reports/2021-06-30/reports", params={"pageSize": 2}), 200)
    assert len(listed["reports"]) == 2 and listed["nextToken"]
    check(
        "getReports",
        api.call("GET", "/reports/2021-06-30/reports", params={"nextToken": listed["nextToken"]}),
        200,
    )
    check("getReport", api.call("GET", "/reports/2021-06-30/reports/1"), 404)
    check(
        "createReport",
        api.call(
            "POST", "/reports/2021-06-30/reports", json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA"}
        ),
        400,
    )
    check(
        "getReports",
        api.call("GET", "/reports/2021-06-30/reports", params={"processingStatuses": "WAITING"}),
        400,
    )


# --------------------------------------------------------------------------- catalog, sellers, finances


def test_catalog_contract(api: Api) -> None:
    asins = ",".join(sorted({x.asin for x in _listings if x.marketplace_id == US})[:20])
    params = {
        "identifiers": asins,
        "identifiersType": "ASIN",
        "marketplaceIds": US,
        "includedData": ALL_CATALOG,
    }
    body = check("searchCatalogItems", api.call("GET", "/catalog/2022-04-01/items", params=params), 200)
    assert body["numberOfResults"] == len(asins.split(",")) > 5
    kw = check(
        "searchCatalogItems",
        api.call(
            "GET", "/catalog/2022-04-01/items", params={"keywords": "a", "marketplaceIds": US, "pageSize": 3}
        ),
        200,
    )
    assert kw["items"]
    one = asins.split(",")[0]
    check(
        "getCatalogItem",
        api.call(
            "GET",
            f"/catalog/2022-04-01/items/{one}",
            params={"marketplaceIds": US, "includedData": ALL_CATALOG},
        ),
        200,
    )
    check(
        "getCatalogItem",
        api.call("GET", "/catalog/2022-04-01/items/B0NOTHERE0", params={"marketplaceIds": US}),
        404,
    )
    too_many = {**params, "identifiers": ",".join(["B000000000"] * 21)}
    check("searchCatalogItems", api.call("GET", "/catalog/2022-04-01/items", params=too_many), 400)


def test_sellers_contract(api: Api) -> None:
    body = check(
        "getMarketplaceParticipations", api.call("GET", "/sellers/v1/marketplaceParticipations"), 200
    )
    assert {p["marketplace"]["defaultCurrencyCode"] for p in body["payload"]} == {"USD", "EUR"}
    account = check("getAccount", api.call("GET", "/sellers/v1/account"), 200)
    assert len(account["payload"]["marketplaceParticipationList"]) == 2


@pytest.mark.parametrize("status", ["Shipped", "PartiallyShipped", "Pending", "Canceled"])
def test_finances_contract(api: Api, status: str) -> None:
    oid = _ids(status)[0]
    body = check(
        "listFinancialEventsByOrderId", api.call("GET", f"/finances/v0/orders/{oid}/financialEvents"), 200
    )
    events = body["payload"]["FinancialEvents"]["ShipmentEventList"]
    assert bool(events) == (status in ("Shipped", "PartiallyShipped"))


def test_throttled_error_shape(api: Api) -> None:
    api.sim.fail_next("429")
    check(
        "getOrders",
        api.call("GET", "/orders/v0/orders", params={"CreatedAfter": ts(START), "MarketplaceIds": US}),
        429,
    )


def test_model_rate_limits_match_simulator_table() -> None:
    from amz2erp_sim.spapi import RATE_LIMITS

    assert MODELS is not None
    for op, (rate, burst) in RATE_LIMITS.items():
        assert MODELS.rate_limit(op) == (rate, burst), op


def test_validator_rejects_wrong_shapes() -> None:
    errs = spapi_models.validate_response(
        "getOrders", 200, {"payload": {"Orders": [{"AmazonOrderId": 1}]}}, MODELS
    )
    assert any("PurchaseDate" in e for e in errs) and any("not of type 'string'" in e for e in errs)
    money = {"amount": 1, "currencyCode": "USD"}
    assert spapi_models.validate_response("getOrder2026", 200, {"order": {"orderId": "x"}}, MODELS)
    assert spapi_models.validate_response(
        "searchOrders", 200, {"orders": [], "pagination": {"nextToken": money}}, MODELS
    )
    assert spapi_models.validate_response("getReport", 200, {"reportId": "1"}, MODELS)
    assert spapi_models.validate_response("nonexistentOp", 200, {}, MODELS) == [
        "unknown operation 'nonexistentOp'"
    ]


def test_request_validation_and_missing_models(tmp_path) -> None:
    # no models: nothing to check against
    assert spapi_models.validate_request("getOrders", {"MarketplaceIds": ["A"], "CreatedAfter": ["x"]}) == []
    assert spapi_models.load_models(tmp_path) is None
    errs = spapi_models.validate_request(
        "searchCatalogItems", {"marketplaceIds": ["A,B"], "pageSize": ["50"]}, None, MODELS
    )
    assert len(errs) == 2
    assert spapi_models.validate_request("createReport", {}, {"reportType": "X", "marketplaceIds": []}, MODELS)
    assert spapi_models.validate_request("getOrders", {}, None, MODELS) != []  # required MarketplaceIds
    assert spapi_models.validate_request("getOrders", {"MarketplaceIds": ["A"]}, None, MODELS) == []
