"""amz2erp.amazon: parsing captured payloads, and the whole layer against the SP-API simulator.

The simulator and the client share one SimulatedClock, so Amazon's real rate limits (getOrderItems 0.5/s,
searchOrders 0.0056/s …) cost simulated time only. Every simulator test also asserts that the simulator's
strict model validation found nothing wrong with the requests we built.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from amz2erp.amazon.client import AmazonClient
from amz2erp.amazon.parse import parse_catalog_item, parse_order_2026, parse_order_v0
from amz2erp.amazon.reports import ReportTuning
from amz2erp.clock import SimulatedClock
from amz2erp.config import AmazonSettings
from amz2erp.errors import (
    AmazonAuthError,
    AmazonBadRequestError,
    AmazonReportError,
    AmazonThrottledError,
    AmazonUnavailableError,
    ExitCode,
)
from amz2erp.models import Order, OrderStatus, UnparsableOrder
from amz2erp_sim.datagen import SimListing, SimOrder, generate_listings, generate_orders
from amz2erp_sim.spapi import FaultConfig, SpApiOptions, SpApiSimulator
from tests.conftest import SP_API_MODELS

FIXTURES = Path(__file__).parent / "fixtures" / "amazon"
US = "ATVPDKIKX0DER"
DE = "A1PA6795UKMFR9"
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
SPAN = (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 2, 27, tzinfo=timezone.utc))
EARLY = datetime(2025, 12, 1, tzinfo=timezone.utc)
SECRETS = ("sim-refresh-token", "sim-client-secret")


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


# ======================================================================================================
# parsing captured payloads (shapes per the official models)
# ======================================================================================================


def test_v0_sandbox_order_with_items() -> None:
    page = _load("v0_getOrders_sandbox.json")[0]["payload"]
    items = _load("v0_getOrderItems_sandbox.json")[0]["payload"]["OrderItems"]
    raw = page["Orders"][0]
    order = parse_order_v0(raw, items)
    assert isinstance(order, Order)
    assert order.amazon_order_id == "902-1845936-5435065"
    assert order.status is OrderStatus.UNSHIPPED
    assert order.marketplace_id == US
    assert order.purchase_date.tzinfo is not None
    assert order.order_total is not None and order.order_total.amount == Decimal("11.01")
    (item,) = order.items
    assert item.item_price is not None and item.item_price.amount == Decimal("10.00")
    assert item.item_tax is not None and item.item_tax.amount == Decimal("1.01")
    assert item.promotion_discount is None  # 0.00 = no charge
    assert item.is_gift is False
    assert order.source == "orders-v0"


def test_every_v0_sandbox_order_parses() -> None:
    for page in _load("v0_getOrders_sandbox.json"):
        for raw in page["payload"]["Orders"]:
            assert isinstance(parse_order_v0(raw, []), Order)


def test_2026_sandbox_orders_give_line_totals_and_unit_prices() -> None:
    pages = _load("2026_searchOrders_sandbox.json")
    orders = [parse_order_2026(raw) for page in pages for raw in page["orders"]]
    assert all(isinstance(o, Order) for o in orders)
    jp = orders[0]
    assert isinstance(jp, Order)
    assert jp.source == "orders-2026-01-01"
    assert jp.status is OrderStatus.SHIPPED  # SHIPPED → v0 spelling
    assert jp.fulfillment_channel == "AFN"  # fulfilledBy AMAZON
    assert jp.seller_order_id == "JP-ORDER-2024-001"
    assert jp.buyer_name == "John Smith"
    assert jp.shipping_address is not None and jp.shipping_address.address_type == "Residential"
    two = jp.items[1]
    assert two.quantity_ordered == 2
    assert two.unit_price is not None and two.unit_price.amount == Decimal("6980")
    assert two.item_price is not None and two.item_price.amount == Decimal("13960")  # LINE total
    assert jp.items[0].promotion_ids == ("JP-WINTER-SALE-2024",)


PAIRS = _load("sim_captured_pairs.json")


@pytest.mark.parametrize("case", sorted(PAIRS))
def test_v0_and_2026_payloads_give_the_same_order(case: str) -> None:
    pair = PAIRS[case]
    v0 = parse_order_v0(pair["v0_order"], pair["v0_items"])
    new = parse_order_2026(pair["2026_order"])
    assert isinstance(v0, Order) and isinstance(new, Order)
    assert (v0.source, new.source) == ("orders-v0", "orders-2026-01-01")

    # 2026 cannot tell promotion-discount tax from shipping-discount tax: compare their sum
    def discount_tax(o: Order) -> list[Decimal]:
        return [sum((m.amount for m in (i.promotion_discount_tax, i.shipping_discount_tax) if m), Decimal(0))
                for i in o.items]

    assert discount_tax(v0) == discount_tax(new)
    item_exclude = {"unit_price", "promotion_discount_tax", "shipping_discount_tax"}
    exclude: dict[str, Any] = {"source": True, "items": {"__all__": item_exclude}}
    if v0.status is OrderStatus.CANCELED:
        exclude["shipping_address"] = True  # v0 shows no address on cancelled orders, 2026 does
    assert v0.model_dump(exclude=exclude) == new.model_dump(exclude=exclude)
    for item in new.items:
        if item.unit_price is not None and item.item_price is not None:
            assert item.unit_price.amount * item.quantity_ordered == item.item_price.amount


def test_pending_order_has_no_prices_in_either_version() -> None:
    pair = PAIRS["pending"]
    for order in (parse_order_v0(pair["v0_order"], pair["v0_items"]), parse_order_2026(pair["2026_order"])):
        assert isinstance(order, Order)
        assert order.status.is_pending
        assert order.order_total is None
        assert all(i.item_price is None for i in order.items)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.pop("createdTime"),
        lambda o: o["fulfillment"].update(fulfillmentStatus="TELEPORTED"),
        lambda o: o["orderItems"][0].update(quantityOrdered="many"),
        lambda o: o["orderItems"][0]["product"]["price"]["unitPrice"].update(amount="1,2,3"),
        lambda o: o["salesChannel"].pop("marketplaceId"),
    ],
)
def test_one_bad_2026_payload_is_unparsable_not_an_exception(mutate: Any) -> None:
    raw = json.loads(json.dumps(PAIRS["shipped_us_gift_promo"]["2026_order"]))
    mutate(raw)
    record = parse_order_2026(raw)
    assert isinstance(record, UnparsableOrder)
    assert record.amazon_order_id == raw["orderId"]
    assert record.error.startswith("orders-2026-01-01")
    assert "Alles Gute" not in record.error  # no payload data in the message


def test_bad_v0_payloads_are_unparsable() -> None:
    raw = dict(PAIRS["shipped_us_gift_promo"]["v0_order"], OrderStatus="Lost")
    assert isinstance(parse_order_v0(raw, []), UnparsableOrder)
    raw = dict(PAIRS["shipped_us_gift_promo"]["v0_order"])
    assert isinstance(parse_order_v0(raw, [{"ASIN": "B0", "OrderItemId": "1"}]), UnparsableOrder)
    assert isinstance(parse_order_v0("nonsense", []), UnparsableOrder)


def test_catalog_sandbox_item() -> None:
    body = _load("catalog_searchCatalogItems_sandbox.json")[0]
    items = [parse_catalog_item(raw, US) for raw in body["items"]]
    item = items[0]
    assert item is not None
    assert item.asin
    assert item.title
    assert item.image_url is None or item.image_url.startswith("http")
    assert parse_catalog_item({"no": "asin"}, US) is None


# ======================================================================================================
# against the simulator
# ======================================================================================================


def settings_for(sim: SpApiSimulator, **overrides: Any) -> AmazonSettings:
    values: dict[str, Any] = {
        "refresh_token": sim.lwa_refresh_token,
        "lwa_app_id": sim.lwa_client_id,
        "lwa_client_secret": sim.lwa_client_secret,
        "endpoint": sim.url,
        "lwa_endpoint": sim.lwa_url,
        "marketplaces": ["US", "DE"],
    }
    values.update(overrides)
    return AmazonSettings(**values)


@contextlib.contextmanager
def running(clock: SimulatedClock, listings: list[SimListing], orders: list[SimOrder],
            **kwargs: Any) -> Iterator[SpApiSimulator]:
    kwargs.setdefault("models_dir", SP_API_MODELS)
    sim = SpApiSimulator(SpApiOptions(**kwargs), clock=clock, listings=listings, orders=orders)
    with sim:
        yield sim
    assert sim.contract_violations == []  # every request we built passes the official models
    assert sim.server_errors == []


@pytest.fixture(scope="module")
def listings() -> list[SimListing]:
    return generate_listings(11, 80, ["US", "DE"])


@pytest.fixture(scope="module")
def orders_2000(listings: list[SimListing]) -> list[SimOrder]:
    return generate_orders(12, 2000, listings, *SPAN)


@pytest.fixture(scope="module")
def orders_250(listings: list[SimListing]) -> list[SimOrder]:
    return generate_orders(13, 250, listings, *SPAN)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(NOW)


_STATUS_2026_V0 = {"InvoiceUnconfirmed": "Shipped"}  # 2026 has no INVOICE_UNCONFIRMED


def assert_complete(records: list[Order | UnparsableOrder], truth: list[SimOrder], api: str) -> None:
    assert not [r for r in records if isinstance(r, UnparsableOrder)]
    ids = [r.amazon_order_id for r in records]
    assert len(ids) == len(set(ids)), "an order came twice"
    by_id = {o.amazon_order_id: o for o in truth}
    assert set(ids) == set(by_id), "orders missing"
    for r in records:
        assert isinstance(r, Order)
        t = by_id[r.amazon_order_id]
        expected_status = _STATUS_2026_V0.get(t.status, t.status) if api == "2026-01-01" else t.status
        assert r.status.value == expected_status
        assert [i.order_item_id for i in r.items] == [i.order_item_id for i in t.items], "lines missing"
        for got, want in zip(r.items, t.items, strict=True):
            assert got.quantity_ordered == want.quantity_ordered
            if t.prices_visible:
                assert got.item_price is not None and got.item_price.amount == want.item_price


def _summary(label: str, client: AmazonClient, clock: SimulatedClock, sim: SpApiSimulator, real: float) -> None:
    sim_429 = sum(1 for e in sim.request_log if e["status"] == 429)
    print(f"\n[{label}] simulated {clock.slept:.0f}s ({clock.slept / 3600:.2f}h), real {real:.1f}s; "
          f"calls={dict(client.calls)} retries={dict(client.retries)} throttles={dict(client.throttles)} "
          f"sim 429s={sim_429} sim requests={len(sim.request_log)}")


@pytest.mark.parametrize("api", ["2026-01-01", "v0"])
def test_2000_orders_at_amazons_real_rates(
    api: str, clock: SimulatedClock, listings: list[SimListing], orders_2000: list[SimOrder]
) -> None:
    with running(clock, listings, orders_2000) as sim:
        t0 = time.monotonic()
        with AmazonClient(settings_for(sim, orders_api=api), clock) as client:
            records = list(client.fetch_orders([US, DE], EARLY, NOW))
            _summary(f"2000 orders {api}", client, clock, sim, time.monotonic() - t0)
            assert_complete(records, orders_2000, api)
            assert sum(client.throttles.values()) == 0  # the buckets kept us under Amazon's limits
            assert sum(1 for e in sim.request_log if e["status"] == 429) == 0
            if api == "v0":
                assert client.calls["getOrders"] == 20
                assert client.calls["getOrderItems"] == 2000
                # 2,000 getOrderItems at 0.5/s after a burst of 30: about an hour of Amazon time
                assert clock.slept >= (2000 - 30) / 0.5
            else:
                assert client.calls["searchOrders"] == 20  # burst of 20: no waiting at all
                assert "getOrderItems" not in client.calls


@pytest.mark.parametrize(("api", "seed"), [("2026-01-01", 12), ("v0", 5)])
def test_10_percent_faults_every_order_exactly_once(
    api: str, seed: int, clock: SimulatedClock, listings: list[SimListing], orders_2000: list[SimOrder]
) -> None:
    faults = FaultConfig(rate=0.10, seed=seed, timeout_seconds=0.05, include_auth=True)
    with running(clock, listings, orders_2000, faults=faults) as sim:
        t0 = time.monotonic()
        with AmazonClient(settings_for(sim, orders_api=api, timeout=5.0), clock) as client:
            records = list(client.fetch_orders([US, DE], EARLY, NOW))
            _summary(f"10% faults {api}", client, clock, sim, time.monotonic() - t0)
            assert_complete(records, orders_2000, api)
            assert sum(client.retries.values()) > 0
            seen = {e["status"] for e in sim.request_log}
            if api == "v0":  # ~2,000 requests: every kind of fault was absorbed
                assert {429, 500, 503, "timeout", "reset"} <= seen
                assert sum(client.retries.values()) >= 150
            else:  # ~25 requests (20 pages): this seed hits several different kinds
                assert len(seen - {200}) >= 2


def test_fault_kinds_one_by_one(clock: SimulatedClock, listings: list[SimListing],
                                orders_250: list[SimOrder]) -> None:
    with running(clock, listings, orders_250) as sim, AmazonClient(settings_for(sim), clock) as client:
        for kind in ("429", "500", "html503", "reset", "truncated", "timeout"):
            sim.fail_next(kind, 1, "searchOrders")
        sim.set_faults(FaultConfig(timeout_seconds=0.05))
        records = list(client.fetch_orders([US, DE], EARLY, NOW))
        assert_complete(records, orders_250, "2026-01-01")
        assert client.retries["searchOrders"] == 6
        assert client.throttles["searchOrders"] == 1


def test_real_read_timeout_is_retried(clock: SimulatedClock, listings: list[SimListing],
                                      orders_250: list[SimOrder]) -> None:
    with running(clock, listings, orders_250) as sim:
        sim.set_faults(FaultConfig(timeout_seconds=0.6))
        sim.fail_next("timeout", 1, "getOrder2026")
        with AmazonClient(settings_for(sim, timeout=0.2), clock) as client:
            oid = orders_250[0].amazon_order_id
            order = client.fetch_order(oid)
            assert order is not None and order.amazon_order_id == oid
            assert client.retries["getOrder2026"] >= 1
            assert sum(1 for e in sim.request_log if e["status"] == "timeout") == 1


def test_retries_run_out(clock: SimulatedClock, listings: list[SimListing], orders_250: list[SimOrder]) -> None:
    oid = orders_250[0].amazon_order_id
    with running(clock, listings, orders_250) as sim:
        with AmazonClient(settings_for(sim, max_retries=2, backoff_ceiling=5), clock) as client:
            sim.fail_next("429", 3, "getOrder2026")
            with pytest.raises(AmazonThrottledError) as throttled:
                client.fetch_order(oid)
            assert throttled.value.status == 429
            assert client.calls["getOrder2026"] == 3  # 1 + max_retries
            sim.fail_next("html503", 3, "getOrder2026")
            with pytest.raises(AmazonUnavailableError) as unavailable:
                client.fetch_order(oid)
            assert "HTML page" in str(unavailable.value)
            assert unavailable.value.exit_code is ExitCode.UNAVAILABLE
            assert client.fetch_order("111-0000000-0000000") is None  # 404: unknown order
        assert clock.slept < 60  # backoff_ceiling honoured


def test_bad_request_carries_amazons_message(clock: SimulatedClock, listings: list[SimListing],
                                             orders_250: list[SimOrder]) -> None:
    with running(clock, listings, orders_250) as sim:
        with AmazonClient(settings_for(sim, orders_api="v0"), clock) as client:
            orders_api = client.transport.api("orders_v0")
            with pytest.raises(AmazonBadRequestError) as exc:
                client.caller.call("getOrders", lambda: orders_api.get_orders(CreatedAfter="yesterday",
                                                                        MarketplaceIds=US))
            assert exc.value.status == 400
            assert "CreatedAfter" in str(exc.value)
            assert client.retries["getOrders"] == 0  # not worth retrying
        sim.contract_violations.clear()  # that violation was the point of this test


def test_empty_payload_is_retried_then_unavailable(clock: SimulatedClock, listings: list[SimListing]) -> None:
    from sp_api.base import ApiResponse

    with running(clock, listings, []) as sim, AmazonClient(settings_for(sim, max_retries=3), clock) as client:
        answers = iter([ApiResponse(), ApiResponse(payload={"Orders": []})])
        res = client.caller.call("getOrders", lambda: next(answers), lambda r: "Orders" in r.payload)
        assert res.payload == {"Orders": []}
        assert client.retries["getOrders"] == 1
        with pytest.raises(AmazonUnavailableError, match="empty or incomplete payload"):
            client.caller.call("getOrders", ApiResponse, lambda r: "Orders" in r.payload)


def test_pagination_loop_guard(clock: SimulatedClock, listings: list[SimListing]) -> None:
    from sp_api.base import ApiResponse

    with running(clock, listings, []) as sim, AmazonClient(settings_for(sim), clock) as client:
        pages = client.caller.pages("someOperation", lambda token: ApiResponse(payload={"n": token}),
                              lambda r: "SAME-TOKEN")
        with pytest.raises(AmazonUnavailableError, match="same next token twice"):
            list(pages)


def test_v0_order_items_are_paged(clock: SimulatedClock, listings: list[SimListing],
                                  orders_250: list[SimOrder]) -> None:
    few = orders_250[:40]
    with (
        running(clock, listings, few, order_items_page_size=1) as sim,
        AmazonClient(settings_for(sim, orders_api="v0"), clock) as client,
    ):
        records = list(client.fetch_orders([US, DE], EARLY, NOW))
        assert_complete(records, few, "v0")
        assert client.calls["getOrderItems"] == sum(len(o.items) for o in few) > len(few)


def test_lower_rate_header_adapts_the_bucket(clock: SimulatedClock, listings: list[SimListing],
                                             orders_250: list[SimOrder]) -> None:
    few = orders_250[:60]
    with (
        running(clock, listings, few, rate_limits={"getOrderItems": (0.25, 5)}) as sim,
        AmazonClient(settings_for(sim, orders_api="v0"), clock) as client,
    ):
        records = list(client.fetch_orders([US, DE], EARLY, NOW))
        assert_complete(records, few, "v0")
        bucket = client.limiter.bucket("getOrderItems")
        assert bucket is not None and bucket.rate == pytest.approx(0.25)
        # a burst of 30 against Amazon's 5 costs a few 429s at the start, then none
        assert client.throttles["getOrderItems"] <= 30
        late = [e for e in sim.request_log[-20:] if e["status"] == 429]
        assert late == []


def test_access_token_expiry_follows_the_clock(clock: SimulatedClock, listings: list[SimListing],
                                               orders_250: list[SimOrder]) -> None:
    few = orders_250[:120]
    with (
        running(clock, listings, few, access_token_ttl=120) as sim,
        AmazonClient(settings_for(sim, orders_api="v0"), clock) as client,
    ):
        records = list(client.fetch_orders([US, DE], EARLY, NOW))
        assert_complete(records, few, "v0")
        assert client.calls["lwaToken"] >= 2  # refreshed before the simulator expired it
        assert sum(1 for e in sim.request_log if e["status"] == 403) == 0


# --- PII ---------------------------------------------------------------------------------------------


def test_v0_pii_one_restricted_data_token_per_run(clock: SimulatedClock, listings: list[SimListing],
                                                  orders_250: list[SimOrder]) -> None:
    with (
        running(clock, listings, orders_250) as sim,
        AmazonClient(settings_for(sim, orders_api="v0", pii=True), clock) as client,
    ):
        records = list(client.fetch_orders([US, DE], EARLY, NOW))
        assert_complete(records, orders_250, "v0")
        assert client.calls["getOrders"] == 3  # several pages …
        assert sim.operation_counts()["createRestrictedDataToken"] == 1  # … one RDT
        by_id = {o.amazon_order_id: o for o in orders_250}
        for r in records:
            assert isinstance(r, Order)
            assert r.buyer_name == by_id[r.amazon_order_id].buyer_name
        shipped = [r for r in records if isinstance(r, Order) and r.status is OrderStatus.SHIPPED]
        assert shipped and all(r.shipping_address and r.shipping_address.line1 for r in shipped)
        # gift wrap lives in the item's BuyerInfo, which only the RDT unlocks
        wraps = {i.order_item_id: i.gift_wrap_price for o in orders_250 if o.prices_visible
                 for i in o.items if i.gift_wrap_price}
        got = {i.order_item_id: i.gift_wrap_price for r in records if isinstance(r, Order) for i in r.items
               if i.order_item_id in wraps}
        assert wraps and all(m is not None and m.amount == wraps[k] for k, m in got.items())
        assert set(got) == set(wraps)


def test_v0_pii_refused_one_warning_and_no_pii(
    clock: SimulatedClock, listings: list[SimListing], orders_250: list[SimOrder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="amz2erp.amazon")
    with running(clock, listings, orders_250, pii_allowed=False) as sim:
        with AmazonClient(settings_for(sim, orders_api="v0", pii=True), clock) as client:
            records = list(client.fetch_orders([US, DE], EARLY, NOW))
            assert_complete(records, orders_250, "v0")
            again = list(client.fetch_orders([US], EARLY, NOW))
            assert again
        assert sim.operation_counts()["createRestrictedDataToken"] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "amz2erp.amazon"]
    assert len(warnings) == 1
    assert "buyer" in warnings[0].getMessage()
    assert all(isinstance(r, Order) and r.buyer_name is None for r in records)
    shipped = [r for r in records if isinstance(r, Order) and r.shipping_address is not None]
    assert shipped and all(r.shipping_address and r.shipping_address.line1 is None for r in shipped)


@pytest.mark.parametrize("pii", [True, False])
def test_2026_pii_through_included_data(pii: bool, clock: SimulatedClock, listings: list[SimListing],
                                        orders_250: list[SimOrder]) -> None:
    with running(clock, listings, orders_250) as sim:
        with AmazonClient(settings_for(sim, pii=pii), clock) as client:
            records = [r for r in client.fetch_orders([US, DE], EARLY, NOW) if isinstance(r, Order)]
        first = next(e for e in sim.request_log if e["operation"] == "searchOrders")
        assert ("BUYER" in first["params"]["includedData"]) is pii
        assert "createRestrictedDataToken" not in sim.operation_counts()  # 2026 needs no RDT
        assert any(r.buyer_name for r in records) is pii


# --- reports -----------------------------------------------------------------------------------------


def test_listings_report(clock: SimulatedClock, listings: list[SimListing]) -> None:
    with running(clock, listings, []) as sim, AmazonClient(settings_for(sim), clock) as client:
        sim.fail_next("truncated", 1, "downloadReportDocument")  # a gzip cut in half: downloaded again
        got = list(client.fetch_listings("US"))
        assert client.retries["downloadReportDocument"] == 1
        truth = {lst.sku: lst for lst in listings if lst.marketplace_id == US}
        assert {lst.sku for lst in got} == set(truth)
        for lst in got:
            want = truth[lst.sku]
            assert lst.marketplace_id == US and lst.currency == "USD"
            assert lst.price == want.price
            assert lst.asin == want.asin
            assert lst.open_date == want.open_date  # "… PST" in the report, back to UTC here
            assert lst.status == want.status
        assert client.calls["createReport"] == 1
        assert client.calls["getReportDocument"] == 1
        assert client.calls["getReport"] >= 2  # polled with backoff on the simulated clock


def test_catalog_items_in_batches_of_20(clock: SimulatedClock, listings: list[SimListing]) -> None:
    with running(clock, listings, []) as sim, AmazonClient(settings_for(sim), clock) as client:
        asins = sorted({lst.asin for lst in listings if lst.marketplace_id == US})
        got = client.fetch_catalog_items([*asins, "B0NOTEXIST", asins[0]], "US")
        assert set(got) == set(asins)
        assert client.calls["searchCatalogItems"] == -(-(len(asins) + 1) // 20)
        one = got[asins[0]]
        want = next(lst for lst in listings if lst.asin == asins[0])
        assert (one.brand, one.image_url, one.classification, one.title) == (
            want.brand, want.image_url, want.classification, want.title)


def test_orders_report_windows_reuse_and_cancelled(clock: SimulatedClock, listings: list[SimListing],
                                                   orders_250: list[SimOrder]) -> None:
    until = NOW - timedelta(hours=1)
    with running(clock, listings, orders_250) as sim, AmazonClient(settings_for(sim), clock) as client:
        first = list(client.fetch_orders_report([US, DE], EARLY, until))
        # 2025-12-01 → 2026-02-28: three windows of ≤ 30 days; December has no data (CANCELLED)
        assert client.calls["createReport"] == 3
        assert client.calls["getReportDocument"] == 2
        assert all(isinstance(r, Order) and r.source == "report" for r in first)
        ids = [r.amazon_order_id for r in first]
        assert len(ids) == len(set(ids))
        assert set(ids) == {o.amazon_order_id for o in orders_250}
        lines = {o.amazon_order_id: len(o.items) for o in orders_250}
        assert all(len(r.items) == lines[r.amazon_order_id] for r in first if isinstance(r, Order))

        second = list(client.fetch_orders_report([US, DE], EARLY, until))
        # the two DONE reports are reused; only the CANCELLED (empty) window is asked for again
        assert client.calls["createReport"] == 4
        assert [r.amazon_order_id for r in second] == ids

        empty = list(client.fetch_orders_report([US], datetime(2025, 6, 1, tzinfo=timezone.utc),
                                                datetime(2025, 6, 20, tzinfo=timezone.utc)))
        assert empty == []  # CANCELLED = no data, not an error


def _walk(client: AmazonClient, start: datetime, end: datetime, chunk: timedelta,
          mids: tuple[str, ...] = (US, DE)) -> list[tuple[datetime, datetime, list[Order | UnparsableOrder]]]:
    """Read [start, end] newest-first in chunks, as `amz2erp backfill` does."""
    out = []
    upper = end
    while upper > start:
        lower = max(start, upper - chunk)
        out.append((lower, upper, list(client.fetch_orders_report(list(mids), lower, upper))))
        upper = lower
    return out


def test_newest_first_walk_is_served_from_planned_30_day_reports(
        clock: SimulatedClock, listings: list[SimListing], orders_2000: list[SimOrder]) -> None:
    """A backfill in 7-day chunks (announced, as backfill does): 30-day reports on a fixed grid are asked for
    ahead and serve every chunk; each chunk gets exactly the orders last updated inside it."""
    end = NOW - timedelta(hours=1)
    with running(clock, listings, orders_2000, report_processing_seconds=180) as sim, \
            AmazonClient(settings_for(sim), clock) as client:
        client.plan_orders_reports([US, DE], datetime(2025, 12, 20, tzinfo=timezone.utc), end)
        chunks = _walk(client, datetime(2025, 12, 20, tzinfo=timezone.utc), end, timedelta(days=7))
        for lower, upper, records in chunks:
            assert all(isinstance(r, Order) and lower <= r.last_update_date <= upper for r in records)
        ids = [r.amazon_order_id for _, _, records in chunks for r in records]
        by_id = {o.amazon_order_id: o for o in orders_2000}
        assert set(ids) == set(by_id)
        assert len(ids) - len(set(ids)) <= sum(1 for o in orders_2000 for lo, up, _ in chunks
                                               if o.last_update_date in (lo, up))  # only boundary repeats
        # 11 chunks of 7 days would be 11 reports; the walk needs the first chunk's own report + the three
        # 30-day grid windows it reads, plus what the plan prefetched below them (at most 8, the prefetch
        # depth of the guessed walk this test was written for)
        assert client.calls["createReport"] <= 1 + 3 + 8
        assert client.calls["getReportDocument"] <= 5
        assert client.calls["getReports"] == 1  # reusable reports are listed once, not per window
        # prefetching overlaps Amazon's processing: far less than one processing time per chunk
        assert clock.slept < 11 * 180


def test_planned_walk_with_a_hint_asks_for_no_report_it_does_not_use(
        clock: SimulatedClock, listings: list[SimListing], orders_250: list[SimOrder]) -> None:
    start, end = datetime(2025, 12, 20, tzinfo=timezone.utc), NOW - timedelta(hours=1)
    with running(clock, listings, orders_250, report_processing_seconds=180) as sim, \
            AmazonClient(settings_for(sim), clock) as client:
        client.plan_orders_reports([US, DE], start, end)
        chunks = _walk(client, start, end, timedelta(days=7))
        assert {r.amazon_order_id for _, _, rs in chunks for r in rs} == {o.amazon_order_id for o in orders_250}
        assert client.calls["createReport"] == 3  # 2025-12-20 → 2026-03-01 on the 30-day grid: 3 windows
        assert clock.slept < 2 * 180


def test_a_resumed_walk_reuses_the_planned_reports_of_the_first_run(
        clock: SimulatedClock, listings: list[SimListing], orders_250: list[SimOrder]) -> None:
    start, end = datetime(2025, 12, 20, tzinfo=timezone.utc), NOW - timedelta(hours=1)
    with running(clock, listings, orders_250) as sim:
        with AmazonClient(settings_for(sim), clock) as client:
            client.plan_orders_reports([US, DE], start, end)  # as backfill announces its walk
            first = _walk(client, start, end, timedelta(days=7))
        clock.advance(600)
        with AmazonClient(settings_for(sim), clock) as client:  # "crashed" after chunk 4
            client.plan_orders_reports([US, DE], start, first[4][1])
            again = _walk(client, start, first[4][1], timedelta(days=7))
            # the grid windows of the first run are found by one getReports and reused: new reports only for
            # the resumed run's first chunk, its top (partial) grid window and the one prefetched below the data
            assert client.calls["getReports"] == 1
            assert client.calls["createReport"] <= 3
        assert [sorted(r.amazon_order_id for r in rs) for _, _, rs in again] == \
            [sorted(r.amazon_order_id for r in rs) for _, _, rs in first[4:]]


def test_orders_report_fatal_then_retry_after_cooldown(clock: SimulatedClock, listings: list[SimListing],
                                                       orders_250: list[SimOrder]) -> None:
    start = datetime(2026, 2, 1, tzinfo=timezone.utc)
    with running(clock, listings, orders_250) as sim:
        sim.fail_next_reports(1)
        with AmazonClient(settings_for(sim), clock, tuning=ReportTuning(fatal_cooldown=900)) as client:
            got = list(client.fetch_orders_report([US, DE], start, NOW))
            assert got
            assert client.calls["createReport"] == 2
            assert clock.slept >= 900
        sim.fail_next_reports(2)
        with (
            AmazonClient(settings_for(sim), clock, tuning=ReportTuning(fatal_cooldown=900, fatal_retries=1)) as client,
            pytest.raises(AmazonReportError, match="FATAL"),
        ):
            list(client.fetch_orders_report([US], start + timedelta(days=1), NOW))


def test_report_poll_gives_up_at_the_ceiling(clock: SimulatedClock, listings: list[SimListing]) -> None:
    with running(clock, listings, [], report_processing_seconds=100_000) as sim:
        with (
            AmazonClient(settings_for(sim, report_poll_ceiling=600), clock) as client,
            pytest.raises(AmazonReportError, match="report_poll_ceiling"),
        ):
            list(client.fetch_listings("US"))
        assert clock.slept <= 700


@pytest.mark.parametrize("first_poll", [5.0, 0.5])
def test_first_report_poll_waits_the_configured_time(clock: SimulatedClock, listings: list[SimListing],
                                                     first_poll: float) -> None:
    with running(clock, listings, [], report_processing_seconds=0.0) as sim:
        settings = settings_for(sim, report_poll_initial=first_poll, marketplaces=["US"])
        with AmazonClient(settings, clock) as client:
            assert client.reports.poll_initial == first_poll
            assert list(client.fetch_listings("US"))
        ops = [(e["operation"], e["sim_time"]) for e in sim.request_log]
        created = next(t for op, t in ops if op == "createReport")
        first = next(t for op, t in ops if op == "getReport")
        assert (first - created).total_seconds() == pytest.approx(first_poll, abs=0.01)
        assert [op for op, _ in ops].count("getReport") == 1  # done when first asked: one poll


def test_reports_survive_faults_on_every_step(clock: SimulatedClock, listings: list[SimListing],
                                              orders_250: list[SimOrder]) -> None:
    ops = ("createReport", "getReport", "getReports", "getReportDocument", "downloadReportDocument")
    faults = FaultConfig(rate=0.3, seed=4, timeout_seconds=0.05, operations=ops)
    with (
        running(clock, listings, orders_250, faults=faults) as sim,
        AmazonClient(settings_for(sim), clock) as client,
    ):
        got = list(client.fetch_listings("DE"))
        assert {lst.sku for lst in got} == {lst.sku for lst in listings if lst.marketplace_id == DE}
        orders = list(client.fetch_orders_report([US, DE], datetime(2026, 1, 20, tzinfo=timezone.utc), NOW))
        assert orders
        assert sum(client.retries.values()) > 0


# --- participations, credentials, environment, logging -----------------------------------------------


def test_marketplace_participations(clock: SimulatedClock, listings: list[SimListing]) -> None:
    with running(clock, listings, []) as sim, AmazonClient(settings_for(sim), clock) as client:
        got = client.marketplace_participations()
        assert {p["marketplace_id"] for p in got} == {US, DE}
        us = next(p for p in got if p["marketplace_id"] == US)
        assert us["country_code"] == "US" and us["participating"] is True and us["name"] == "Amazon.com"


@pytest.mark.parametrize(
    ("field", "value"),
    [("lwa_client_secret", "very-secret-value-123"), ("refresh_token", "Atzr|leaky-refresh-token-456")],
)
def test_auth_failure_is_typed_and_never_shows_the_secret(
    field: str, value: str, clock: SimulatedClock, listings: list[SimListing]
) -> None:
    with running(clock, listings, []) as sim:
        with (
            AmazonClient(settings_for(sim, **{field: value}), clock) as client,
            pytest.raises(AmazonAuthError) as exc,
        ):
            client.marketplace_participations()
        message = str(exc.value)
        assert value not in message
        assert all(s not in message for s in SECRETS)
        assert exc.value.exit_code is ExitCode.AUTH
        assert "Login with Amazon" in message


def test_environment_variables_have_no_effect(
    monkeypatch: pytest.MonkeyPatch, clock: SimulatedClock, listings: list[SimListing],
    orders_250: list[SimOrder],
) -> None:
    monkeypatch.setenv("SP_API_REFRESH_TOKEN", "junk-refresh")
    monkeypatch.setenv("LWA_APP_ID", "junk-app")
    monkeypatch.setenv("LWA_CLIENT_SECRET", "junk-secret")
    monkeypatch.setenv("SP_API_DEFAULT_MARKETPLACE", "UK")  # would replace our marketplace
    few = [o for o in orders_250 if o.marketplace_id == US][:10]
    with running(clock, listings, few) as sim:
        with AmazonClient(settings_for(sim, orders_api="v0", marketplaces=["US"]), clock) as client:
            assert_complete(list(client.fetch_orders([US], EARLY, NOW)), few, "v0")
        items_calls = [e for e in sim.request_log if e["operation"] == "getOrderItems"]
        assert items_calls and all(e["params"].get("MarketplaceId") == US for e in items_calls)
        monkeypatch.setenv("SP_API_DEFAULT_MARKETPLACE", "XX")  # junk: the library would raise KeyError
        with AmazonClient(settings_for(sim), clock) as client:
            assert client.marketplace_participations()


def test_incomplete_credentials_do_not_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, clock: SimulatedClock, listings: list[SimListing]
) -> None:
    with running(clock, listings, []) as sim:
        monkeypatch.setenv("LWA_CLIENT_SECRET", sim.lwa_client_secret)  # the right one, but not ours
        monkeypatch.setenv("SP_API_REFRESH_TOKEN", sim.lwa_refresh_token)
        with (
            AmazonClient(settings_for(sim, lwa_client_secret=""), clock) as client,
            pytest.raises(AmazonAuthError, match="incomplete"),
        ):
            client.marketplace_participations()
        assert sim.operation_counts()["lwaToken"] == 0


def test_sp_api_loggers_never_at_debug(
    clock: SimulatedClock, listings: list[SimListing], orders_250: list[SimOrder],
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = ["sp_api", "sp_api.base.client", "sp_api.auth.access_token_client"]
    saved = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.DEBUG)  # an app that turns everything to DEBUG
        caplog.set_level(logging.DEBUG)
        with running(clock, listings, orders_250[:5]) as sim, AmazonClient(settings_for(sim), clock) as client:
            list(client.fetch_orders([US, DE], EARLY, NOW))
            client.marketplace_participations()
            issued = list(client.transport.tokens.issued)
        assert issued
        for n in names:
            assert logging.getLogger(n).getEffectiveLevel() > logging.DEBUG
        assert not any(r.name.startswith("sp_api") and r.levelno == logging.DEBUG for r in caplog.records)
        assert all(token not in caplog.text for token in issued)
        assert all(s not in caplog.text for s in SECRETS)
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def test_fetch_orders_clamps_the_window_to_two_minutes_ago(
    clock: SimulatedClock, listings: list[SimListing], orders_250: list[SimOrder]
) -> None:
    with running(clock, listings, orders_250) as sim, AmazonClient(settings_for(sim), clock) as client:
        records = list(client.fetch_orders([US, DE], EARLY, NOW + timedelta(days=1)))
        assert_complete(records, orders_250, "2026-01-01")
        sent = next(e for e in sim.request_log if e["operation"] == "searchOrders")["params"]
        assert sent["lastUpdatedBefore"] == (NOW - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert list(client.fetch_orders([US], NOW - timedelta(minutes=1), NOW)) == []


def test_api_403_is_an_auth_error_without_the_token(clock: SimulatedClock, listings: list[SimListing]) -> None:
    with running(clock, listings, []) as sim, AmazonClient(settings_for(sim), clock) as client:
        client.marketplace_participations()  # a real token first
        bogus = "Atza|bogus-but-secret-token-value"
        client.transport.tokens._token = {"access_token": bogus, "expires_in": 3600}
        client.transport.masker.add([bogus])  # as the token store does for every token it is given
        with pytest.raises(AmazonAuthError) as exc:
            client.marketplace_participations()
        assert exc.value.status == 403
        assert bogus not in str(exc.value)
        assert client.retries["getMarketplaceParticipations"] == 0  # not retried
