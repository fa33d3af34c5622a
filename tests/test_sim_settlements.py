"""The SP-API simulator's settlements: V2 reports, Finances event groups and 2024-06-19 transactions, all
consistent with the orders it generated."""

from __future__ import annotations

import copy
import csv
import io
import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from amz2erp.clock import SimulatedClock
from amz2erp_sim.datagen import MARKETPLACES, generate_listings, generate_orders
from amz2erp_sim.spapi import SpApiOptions, SpApiSimulator, settlements
from amz2erp_sim.spapi import models as spapi_models
from amz2erp_sim.spapi.settlements import REPORT_TYPE, V2_COLUMNS, SettlementRow
from tests.conftest import SP_API_MODELS

US = MARKETPLACES["US"].marketplace_id
DE = MARKETPLACES["DE"].marketplace_id
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
MODELS = spapi_models.load_models(SP_API_MODELS)
assert MODELS is not None, f"no SP-API models in {SP_API_MODELS}"

_listings = generate_listings(5, 40, ("US", "DE"), end=NOW - timedelta(days=200))
_orders = generate_orders(5, 400, _listings, NOW - timedelta(days=150), NOW - timedelta(minutes=30))


class Api:
    def __init__(self, sim: SpApiSimulator, clock: SimulatedClock) -> None:
        self.sim = sim
        self.clock = clock
        r = httpx.post(sim.lwa_url, data={"grant_type": "refresh_token", **_creds(sim)})
        self.token = r.json()["access_token"]
        self.http = httpx.Client(base_url=sim.url, timeout=10)

    def get(self, path: str, operation: str, status: int = 200, **params: Any) -> Any:
        resp = self.http.get(path, params=params, headers={"x-amz-access-token": self.token})
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert spapi_models.validate_response(operation, resp.status_code, body, MODELS) == []
        return body

    def settlement_reports(self, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        body = self.get("/reports/2021-06-30/reports", "getReports", reportTypes=REPORT_TYPE, **params)
        out += body["reports"]
        while body.get("nextToken"):
            body = self.get("/reports/2021-06-30/reports", "getReports", nextToken=body["nextToken"])
            out += body["reports"]
        return out

    def document(self, report: dict[str, Any]) -> tuple[list[str], list[dict[str, str]]]:
        doc = self.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}", "getReportDocument")
        assert "compressionAlgorithm" not in doc
        raw = httpx.get(doc["url"]).content
        reader = csv.reader(io.StringIO(raw.decode("cp1252")), delimiter="\t")
        header, *rows = list(reader)
        assert all(len(r) == 24 for r in rows)
        return header, [dict(zip(header, r, strict=True)) for r in rows]

    def groups(self, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        body = self.get("/finances/v0/financialEventGroups", "listFinancialEventGroups", **params)
        out += body["payload"]["FinancialEventGroupList"]
        while body["payload"].get("NextToken"):
            body = self.get("/finances/v0/financialEventGroups", "listFinancialEventGroups",
                            NextToken=body["payload"]["NextToken"])  # fmt: skip
            out += body["payload"]["FinancialEventGroupList"]
        return out

    def transactions(self, **params: Any) -> tuple[list[dict[str, Any]], int]:
        out: list[dict[str, Any]] = []
        pages = 1
        body = self.get("/finances/2024-06-19/transactions", "listTransactions", **params)
        out += body["payload"]["transactions"]
        while body["payload"].get("nextToken"):
            body = self.get("/finances/2024-06-19/transactions", "listTransactions",
                            nextToken=body["payload"]["nextToken"], **params)  # fmt: skip
            out += body["payload"]["transactions"]
            pages += 1
        return out, pages


def _creds(sim: SpApiSimulator) -> dict[str, str]:
    return {"client_id": sim.lwa_client_id, "client_secret": sim.lwa_client_secret,
            "refresh_token": sim.lwa_refresh_token}  # fmt: skip


@pytest.fixture
def api() -> Iterator[Api]:
    clock = SimulatedClock(NOW)
    with SpApiSimulator(
        SpApiOptions(rate_limits=False), clock=clock, listings=copy.deepcopy(_listings), orders=copy.deepcopy(_orders)
    ) as sim:
        a = Api(sim, clock)
        yield a
        a.http.close()
        assert not sim.server_errors, sim.server_errors


def amount(text: str) -> Decimal:
    """Amazon's local number format: the last '.' or ',' followed by two digits is the decimal mark."""
    if len(text) > 3 and text[-3] in ",.":
        return Decimal(text[:-3].replace(".", "").replace(",", "") + "." + text[-2:])
    return Decimal(text.replace(".", "").replace(",", ""))


def _shipped(order: Any) -> bool:
    return order.status in ("Shipped", "InvoiceUnconfirmed") and not order.is_replacement


# --------------------------------------------------------------------------- the V2 reports


def test_every_published_report_parses_and_sums_to_its_total(api: Api) -> None:
    reports = api.settlement_reports(pageSize=3)
    assert reports and {r["processingStatus"] for r in reports} == {"DONE"}
    closed = [s for s in api.sim.settlements if s.report_available(NOW)]
    retained = [s for s in closed if s.report_created >= NOW - timedelta(days=90)]
    assert all(r["reportDocumentId"] for r in reports)
    assert sorted(r["dataStartTime"] for r in reports) == sorted(s.start.isoformat() for s in retained)
    assert api.settlement_reports(processingStatuses="DONE") == reports
    assert api.settlement_reports(processingStatuses="IN_QUEUE,IN_PROGRESS") == []
    seen_formats = set()
    for rep in reports:
        header, rows = api.document(rep)
        assert tuple(header) == V2_COLUMNS
        first, body = rows[0], rows[1:]
        assert all(first[c] for c in V2_COLUMNS[:6])
        assert not any(first[c] for c in V2_COLUMNS[6:])
        assert all(r["settlement-id"] == first["settlement-id"] for r in body)
        assert not any(r[c] for r in body for c in V2_COLUMNS[1:6])
        assert sum((amount(r["amount"]) for r in body), Decimal(0)) == amount(first["total-amount"])
        sim_s = api.sim.settlement(first["settlement-id"])
        assert amount(first["total-amount"]) == sim_s.total() and first["currency"] == sim_s.currency
        seen_formats.add(("," if "," in first["total-amount"] else ".", first["currency"]))
    assert {(",", "EUR"), (".", "USD")} <= seen_formats


def test_settlements_tie_to_the_generated_orders(api: Api) -> None:
    rows_by_order: dict[str, list[SettlementRow]] = defaultdict(list)
    settled_in: dict[str, set[str]] = defaultdict(set)
    for s in api.sim.settlements:
        for r in s.rows:
            if r.transaction_type == "Order":
                rows_by_order[r.order_id].append(r)
                settled_in[r.order_id].add(s.settlement_id)
    shipped = [o for o in api.sim.orders if _shipped(o)]
    assert len(shipped) > 50
    for o in shipped:
        rows = rows_by_order[o.amazon_order_id]
        assert len(settled_in[o.amazon_order_id]) == 1, o.amazon_order_id
        principal = sum((r.amount for r in rows if r.amount_description == "Principal"
                         and r.amount_type == "ItemPrice"), Decimal(0))  # fmt: skip
        assert principal == sum((i.item_price for i in o.items), Decimal(0))
        buyer = sum((r.amount for r in rows if r.amount_type in ("ItemPrice", "Promotion")), Decimal(0))
        assert buyer == o.order_total
        fees = {r.amount_description for r in rows if r.amount_type == "ItemFees"}
        assert "Commission" in fees
        assert ("FBAPerUnitFulfillmentFee" in fees) == (o.fulfillment_channel == "AFN")
        tax = sum((r.amount for r in rows if r.amount_description.endswith("Tax")), Decimal(0))
        withheld = sum((r.amount for r in rows if r.amount_type == "ItemWithheldTax"), Decimal(0))
        if all(i.tax_collection_model == "MarketplaceFacilitator" for i in o.items):
            assert tax > 0 and tax + withheld == 0
    not_settled = [o for o in api.sim.orders if o.status in ("Canceled", "Pending", "Unshipped")]
    assert not_settled and not any(o.amazon_order_id in rows_by_order for o in not_settled)


def test_refunds_follow_their_orders(api: Api) -> None:
    posted: dict[str, datetime] = {}
    refunds: dict[str, list[SettlementRow]] = defaultdict(list)
    for s in api.sim.settlements:
        for r in s.rows:
            if r.transaction_type == "Order":
                posted.setdefault(r.order_id, r.posted)
            elif r.transaction_type == "Refund":
                refunds[r.adjustment_id].append(r)
    assert len(refunds) >= 5
    for adjustment_id, rows in refunds.items():
        assert adjustment_id and len({r.order_id for r in rows}) == 1
        assert posted[rows[0].order_id] < rows[0].posted
        descs = {(r.amount_type, r.amount_description): r.amount for r in rows}
        assert descs[("ItemPrice", "Principal")] < 0 < descs[("ItemFees", "Commission")]
        assert descs[("ItemFees", "RefundCommission")] < 0


def test_account_level_money_negative_and_open_settlements(api: Api) -> None:
    for mid in (US, DE):
        mine = [s for s in api.sim.settlements if s.marketplace_id == mid]
        closed = [s for s in mine if s.is_closed(NOW)]
        assert len(closed) >= 3
        assert [s for s in closed if s.total() < 0]
        assert len([s for s in mine if s.start <= NOW < s.end]) == 1
        descs = {r.amount_description for s in closed for r in s.rows}
        assert {"Storage Fee", "Subscription Fee", "TransactionTotalAmount", "WAREHOUSE_DAMAGE",
                "Current Reserve Amount", "Previous Reserve Amount Balance"} <= descs  # fmt: skip
        for prev, nxt in itertools.pairwise(closed):
            held = [r.amount for r in prev.rows if r.amount_description == "Current Reserve Amount"]
            released = [
                r.amount for r in nxt.rows if r.amount_description == "Previous Reserve Amount Balance"
            ]
            assert [-a for a in held] == released


def test_generation_is_deterministic() -> None:
    a = settlements.generate_settlements(7, copy.deepcopy(_orders), NOW)
    b = settlements.generate_settlements(7, copy.deepcopy(_orders), NOW)
    c = settlements.generate_settlements(8, copy.deepcopy(_orders), NOW)
    assert [settlements.render_v2(s) for s in a] == [settlements.render_v2(s) for s in b]
    assert [s.settlement_id for s in a] != [s.settlement_id for s in c]


def test_listing_keeps_90_days_and_refuses_create(api: Api) -> None:
    old = [s for s in api.sim.settlements if s.report_created < NOW - timedelta(days=90)]
    assert old, "the order history should reach past Amazon's 90-day retention"
    listed = api.settlement_reports(createdSince="2025-01-01T00:00:00Z", pageSize=100)
    starts = {r["dataStartTime"] for r in listed}
    assert not starts & {s.start.isoformat() for s in old}
    assert all(r["marketplaceIds"] in ([US], [DE]) for r in listed)
    api.sim.clock.sleep(40 * 86400)  # now every report fetched above is older than its retention or newer
    first_doc = listed[-1]["reportDocumentId"]
    api.get(f"/reports/2021-06-30/documents/{first_doc}", "getReportDocument", 404)
    body = httpx.post(
        api.sim.url + "/reports/2021-06-30/reports",
        json={"reportType": REPORT_TYPE, "marketplaceIds": [US]},
        headers={"x-amz-access-token": api.token},
    )
    assert body.status_code == 400
    assert body.json()["errors"][0]["message"] == "Request for report type 1118 is not allowed at this time"


def test_a_closing_period_is_published_when_the_clock_passes_it(api: Api) -> None:
    before = {r["reportId"] for r in api.settlement_reports()}
    open_us = next(s for s in api.sim.settlements if s.marketplace_id == US and s.start <= NOW < s.end)
    api.clock.sleep((open_us.report_created - NOW).total_seconds() - 1)
    assert open_us.start.isoformat() not in {r["dataStartTime"] for r in api.settlement_reports()}
    api.clock.sleep(1)
    new = [r for r in api.settlement_reports() if r["reportId"] not in before]
    assert open_us.start.isoformat() in {r["dataStartTime"] for r in new}
    assert {r["processingStatus"] for r in new} == {"DONE"}


def test_reissue_publishes_a_second_report_with_the_same_settlement_id(api: Api) -> None:
    target = next(s for s in api.sim.settlements if s.is_closed(NOW) and s.marketplace_id == US
                  and s.report_created > NOW - timedelta(days=80))  # fmt: skip
    api.settlement_reports()
    extra = settlements.SettlementRow("other-transaction", "other-transaction", "Storage Fee", Decimal("-1.00"),
                                      target.start + timedelta(days=1))  # fmt: skip
    api.sim.reissue_settlement(target.settlement_id, rows=[*target.rows, extra])
    api.clock.sleep(60)
    docs = []
    for rep in api.settlement_reports():
        _, rows = api.document(rep)
        if rows[0]["settlement-id"] == target.settlement_id:
            docs.append(amount(rows[0]["total-amount"]))
    assert sorted(docs) == sorted([target.total(), target.total() - Decimal("1.00")])


# --------------------------------------------------------------------------- Finances


def test_event_groups_closed_and_open(api: Api) -> None:
    groups = api.groups(MaxResultsPerPage=2, FinancialEventGroupStartedAfter="2026-06-01T00:00:00Z")
    by_id = {s.group_id: s for s in api.sim.settlements}
    started = [
        s
        for s in api.sim.settlements
        if s.start <= NOW and s.start >= datetime(2026, 6, 1, tzinfo=timezone.utc)
    ]
    assert sorted(g["FinancialEventGroupId"] for g in groups) == sorted(s.group_id for s in started)
    open_groups = [g for g in groups if g["ProcessingStatus"] == "Open"]
    assert len(open_groups) == 2 and all("FundTransferDate" not in g for g in open_groups)
    for g in groups:
        s = by_id[g["FinancialEventGroupId"]]
        assert Decimal(str(g["OriginalTotal"]["CurrencyAmount"])) == s.total(NOW)
        if g["ProcessingStatus"] == "Closed":
            assert g["FinancialEventGroupEnd"] == s.end.strftime("%Y-%m-%dT%H:%M:%SZ")
    negative = [g for g in groups if g["OriginalTotal"]["CurrencyAmount"] < 0]
    assert negative and all(g["ProcessingStatus"] == "Closed" and g["AccountTail"] == settlements.CARD_TAIL
                            for g in negative)  # fmt: skip
    assert api.groups(FinancialEventGroupStartedAfter="2026-01-01T00:00:00Z",
                      FinancialEventGroupStartedBefore="2026-10-01T00:00:00Z") == []  # >180 days apart  # fmt: skip
    api.get("/finances/v0/financialEventGroups", "listFinancialEventGroups", 400,
            FinancialEventGroupStartedAfter=NOW.strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip


def test_transactions_per_group_sum_to_the_group_total(api: Api) -> None:
    api.sim.transactions_page_size = 25
    groups = api.groups(MaxResultsPerPage=100, FinancialEventGroupStartedAfter="2026-06-01T00:00:00Z")
    paged = 0
    for g in groups:
        txs, pages = api.transactions(relatedIdentifierName="FINANCIAL_EVENT_GROUP_ID",
                                      relatedIdentifierValue=g["FinancialEventGroupId"])  # fmt: skip
        paged += pages > 1
        total = sum((Decimal(str(t["totalAmount"]["currencyAmount"])) for t in txs), Decimal(0))
        assert total == Decimal(str(g["OriginalTotal"]["CurrencyAmount"])), g["FinancialEventGroupId"]
        for t in txs:
            leaves = _leaves(t["breakdowns"])
            assert abs(sum(leaves) - t["totalAmount"]["currencyAmount"]) < 0.005
            if t.get("items"):
                items = sum(i["totalAmount"]["currencyAmount"] for i in t["items"])
                assert abs(items - t["totalAmount"]["currencyAmount"]) < 0.005
    assert paged
    order = next(o for o in api.sim.orders if _shipped(o))
    txs, _ = api.transactions(relatedIdentifierName="ORDER_ID", relatedIdentifierValue=order.amazon_order_id)
    assert txs and txs[0]["transactionType"] == "Shipment"
    api.get("/finances/2024-06-19/transactions", "listTransactions", 400, marketplaceId=US)


def _leaves(tree: list[dict[str, Any]]) -> list[float]:
    out: list[float] = []
    for b in tree:
        out += _leaves(b["breakdowns"]) if b["breakdowns"] else [b["breakdownAmount"]["currencyAmount"]]
    return out


def test_finances_rate_limits_and_request_log() -> None:
    clock = SimulatedClock(NOW)
    with SpApiSimulator(clock=clock, listings=copy.deepcopy(_listings), orders=copy.deepcopy(_orders)) as sim:
        a = Api(sim, clock)
        params = {"postedAfter": "2026-10-01T00:00:00Z"}
        codes = [a.http.get("/finances/2024-06-19/transactions", params=params,
                            headers={"x-amz-access-token": a.token}).status_code for _ in range(11)]  # fmt: skip
        assert codes == [200] * 10 + [429]
        clock.sleep(2)
        a.get("/finances/2024-06-19/transactions", "listTransactions", **params)
        a.http.close()
        assert sim.operation_counts()["listTransactions"] == 12


def test_regenerating_later_keeps_the_past_settlements() -> None:
    orders = copy.deepcopy(_orders)
    before = settlements.generate_settlements(3, orders, NOW)
    pending = next(
        o for o in orders if o.status == "Unshipped" and o.last_update_date < NOW - timedelta(days=1)
    )
    from amz2erp_sim.datagen import ship_order

    later = NOW + timedelta(days=20)
    ship_order(pending, later - timedelta(days=1))
    after = settlements.generate_settlements(3, orders, later)
    old_closed = {s.settlement_id: settlements.render_v2(s) for s in before if s.is_closed(NOW)}
    new_by_id = {s.settlement_id: s for s in after}
    assert old_closed and all(settlements.render_v2(new_by_id[i]) == doc for i, doc in old_closed.items())
    assert any(r.order_id == pending.amazon_order_id for s in after for r in s.rows)


# --------------------------------------------------------------------------- a hand-built settlement


def _example_1() -> settlements.SimSettlement:
    """The US settlement of the research's worked example 1 (3 orders, a refund, FBA fees, a reserve)."""
    at = datetime(2026, 10, 10, 12, 0, tzinfo=timezone.utc)
    o1, o2, o3, o4 = (f"111-000000{i}-000000{i}" for i in range(1, 5))
    spec = [
        ("Order", o1, "ItemPrice", "Principal", "125.00"), ("Order", o1, "ItemPrice", "Tax", "10.00"),
        ("Order", o1, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-10.00"),
        ("Order", o1, "ItemFees", "Commission", "-18.75"), ("Order", o1, "ItemFees", "FBAPerUnitFulfillmentFee", "-6.10"),
        ("Order", o2, "ItemPrice", "Principal", "80.00"), ("Order", o2, "ItemPrice", "Tax", "4.90"),
        ("Order", o2, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-4.90"),
        ("Order", o2, "Promotion", "Principal", "-10.00"), ("Order", o2, "ItemFees", "Commission", "-10.50"),
        ("Order", o2, "ItemFees", "FBAPerUnitFulfillmentFee", "-9.60"),
        ("Order", o3, "ItemPrice", "Principal", "45.00"), ("Order", o3, "ItemPrice", "Shipping", "5.99"),
        ("Order", o3, "ItemPrice", "Tax", "3.60"), ("Order", o3, "ItemPrice", "ShippingTax", "0.48"),
        ("Order", o3, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "-3.60"),
        ("Order", o3, "ItemWithheldTax", "MarketplaceFacilitatorTax-Shipping", "-0.48"),
        ("Order", o3, "ItemFees", "Commission", "-7.65"),
        ("Refund", o4, "ItemPrice", "Principal", "-40.00"), ("Refund", o4, "ItemPrice", "Tax", "-2.80"),
        ("Refund", o4, "ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", "2.80"),
        ("Refund", o4, "ItemFees", "Commission", "6.00"), ("Refund", o4, "ItemFees", "RefundCommission", "-1.20"),
        ("other-transaction", "", "other-transaction", "Storage Fee", "-12.34"),
        ("other-transaction", "", "other-transaction", "Subscription Fee", "-39.99"),
        ("other-transaction", "", "FBA Inventory Reimbursement", "WAREHOUSE_DAMAGE", "18.50"),
        ("other-transaction", "", "other-transaction", "Previous Reserve Amount Balance", "60.00"),
        ("other-transaction", "", "other-transaction", "Current Reserve Amount", "-45.00"),
    ]  # fmt: skip
    rows = [
        SettlementRow(tt, at_, desc, Decimal(amt), at, order_id=oid,
                      adjustment_id="50000000000001" if tt == "Refund" else "",
                      marketplace_name="Amazon.com" if oid else "")
        for tt, oid, at_, desc, amt in spec
    ]  # fmt: skip
    return settlements.SimSettlement(
        settlement_id="12345678901", marketplace_id=US, currency="USD",
        start=datetime(2026, 10, 1, 8, tzinfo=timezone.utc), end=datetime(2026, 10, 15, 8, tzinfo=timezone.utc),
        deposit_date=datetime(2026, 10, 17, 8, tzinfo=timezone.utc), rows=rows,
    )  # fmt: skip


def test_a_hand_built_settlement_is_served_like_amazons(api: Api) -> None:
    api.sim.add_settlement(_example_1())
    reports = [r for r in api.settlement_reports() if r["dataStartTime"] == "2026-10-01T08:00:00+00:00"]
    assert len(reports) == 1
    _, rows = api.document(reports[0])
    assert rows[0]["settlement-id"] == "12345678901" and rows[0]["total-amount"] == "139.36"
    assert rows[0]["settlement-start-date"] == "2026-10-01 08:00:00 UTC"
    assert len(rows) == 29 and rows[1]["amount"] == "125.00" and rows[19]["adjustment-id"] == "50000000000001"
    group = next(g for g in api.groups(FinancialEventGroupStartedAfter="2026-09-30T00:00:00Z")
                 if g["FinancialEventGroupId"] == api.sim.settlement("12345678901").group_id)  # fmt: skip
    assert group["OriginalTotal"] == {"CurrencyCode": "USD", "CurrencyAmount": 139.36}
    txs, _ = api.transactions(relatedIdentifierName="FINANCIAL_EVENT_GROUP_ID",
                              relatedIdentifierValue=group["FinancialEventGroupId"])  # fmt: skip
    assert len(txs) == 4 + 5  # 3 shipments, 1 refund, 5 account-level rows
    assert round(sum(t["totalAmount"]["currencyAmount"] for t in txs), 2) == 139.36


def test_an_inconsistent_file_keeps_its_stated_total(api: Api) -> None:
    api.sim.add_settlement(settlements.reissue(_example_1(), stated_total=Decimal("140.00")))
    rep = next(r for r in api.settlement_reports() if r["dataStartTime"] == "2026-10-01T08:00:00+00:00")
    _, rows = api.document(rep)
    assert rows[0]["total-amount"] == "140.00"
    assert sum((amount(r["amount"]) for r in rows[1:]), Decimal(0)) == Decimal("139.36")


def test_other_report_flows_do_not_build_settlements(api: Api) -> None:
    body = api.get("/reports/2021-06-30/reports", "getReports", reportTypes="GET_MERCHANT_LISTINGS_ALL_DATA")
    assert body["reports"] == []
    assert not api.sim.settlements_generated  # built on the first settlement listing only (large benches stay cheap)
    assert api.settlement_reports() and api.sim.settlements_generated


def test_eu_files_use_the_local_formats() -> None:
    at = datetime(2026, 10, 5, 9, 30, tzinfo=timezone.utc)
    rows = [
        SettlementRow(
            "Order", "ItemPrice", "Principal", Decimal("1234.50"), at, order_id="302-0000005-0000005"
        ),
        SettlementRow(
            "Order", "ItemFees", "Commission", Decimal("-185.18"), at, order_id="302-0000005-0000005"
        ),
    ]
    s = settlements.SimSettlement("23456789012", DE, "EUR", datetime(2026, 10, 1, tzinfo=timezone.utc),
                                  datetime(2026, 10, 15, tzinfo=timezone.utc),
                                  datetime(2026, 10, 17, tzinfo=timezone.utc), rows=rows)  # fmt: skip
    header, first, principal, commission = (
        line.split("\t") for line in settlements.render_v2(s).decode("cp1252").splitlines()
    )
    assert first[1:6] == ["01.10.2026 00:00:00 UTC", "15.10.2026 00:00:00 UTC", "17.10.2026 00:00:00 UTC",
                          "1.049,32", "EUR"]  # fmt: skip
    assert principal[header.index("amount")] == "1.234,50" and commission[header.index("amount")] == "-185,18"
    assert principal[header.index("posted-date")] == "05.10.2026"
    assert principal[header.index("posted-date-time")] == "2026-10-05 09:30:00 UTC"
    assert settlements.format_amount(Decimal("1234"), "JPY", MARKETPLACES["JP"].marketplace_id) == "1234"


def test_an_eu_settlement_can_be_listed_once_per_eu_marketplace() -> None:
    listings = generate_listings(9, 30, ("DE", "FR"), end=NOW - timedelta(days=100))
    orders = generate_orders(9, 120, listings, NOW - timedelta(days=60), NOW - timedelta(minutes=30))
    clock = SimulatedClock(NOW)
    with SpApiSimulator(SpApiOptions(rate_limits=False), clock=clock, listings=listings, orders=orders) as sim:
        sim.settlement_listed_per_eu_marketplace = True
        a = Api(sim, clock)
        reports = a.settlement_reports(pageSize=100)
        by_doc: dict[str, list[str]] = defaultdict(list)
        for r in reports:
            by_doc[r["reportDocumentId"]] += r["marketplaceIds"]
        a.http.close()
    fr = MARKETPLACES["FR"].marketplace_id
    assert by_doc and all(sorted(mids) == sorted([DE, fr]) for mids in by_doc.values())
    published = [s for s in sim.settlements if s.report_available(NOW)]
    assert len(by_doc) == len(published) and len(reports) == 2 * len(published)
