"""Amazon's global facts, in one place (lags, windows, horizon, batch sizes, the rate-limit table): the product (engine, backfill, the access layer's report planner)
and the SP-API simulator both read them, so the two can only disagree with Amazon together.

The per-marketplace facts (time zone, sales channel, the two-year exemption) are in the marketplace table,
`amz2erp.amazon.marketplaces`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from amz2erp.amazon.marketplaces import Marketplace

#: getOrders/searchOrders refuse a LastUpdatedBefore/CreatedBefore later than now − 2 minutes
ORDERS_LAG = timedelta(minutes=2)
#: the flat-file orders reports cover at most 30 days per request ("Date range exceeded")
REPORT_WINDOW = timedelta(days=30)
#: getOrders/searchOrders take at most 50 MarketplaceIds; v0 getOrders at most 50 AmazonOrderIds
MAX_MARKETPLACES_PER_CALL = 50
MAX_ORDER_IDS_PER_CALL = 50
#: Amazon returns no order older than two years (except where `Marketplace.full_history`)
ORDERS_HORIZON = timedelta(days=730)
#: searchCatalogItems takes at most 20 identifiers per call (and pages of at most 20)
CATALOG_BATCH = 20
#: "Reports are retained for a maximum of 90 days": settlement reports older than that are no longer listed
REPORT_RETENTION = timedelta(days=90)

#: operation → (rate per second, burst). Sources: the "Usage Plan" tables of ordersV0.json,
#: orders_2026-01-01.json, reports_2021-06-30.json, catalogItems_2022-04-01.json, sellers.json,
#: tokens_2021-03-01.json, finances_v0.json, finances_2024-06-19.json.
RATE_LIMITS: dict[str, tuple[float, int]] = {
    # Orders v0
    "getOrders": (0.0167, 20),
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getOrderAddress": (0.5, 30),
    "getOrderBuyerInfo": (0.5, 30),
    "getOrderItemsBuyerInfo": (0.5, 30),
    # Orders 2026-01-01
    "searchOrders": (0.0056, 20),
    "getOrder2026": (0.5, 30),
    # Reports 2021-06-30
    "createReport": (0.0167, 15),
    "getReport": (2.0, 15),
    "getReports": (0.0222, 10),
    "cancelReport": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
    # Catalog Items 2022-04-01
    "searchCatalogItems": (2.0, 2),
    "getCatalogItem": (2.0, 2),
    # Tokens, Sellers
    "createRestrictedDataToken": (1.0, 10),
    "getMarketplaceParticipations": (0.016, 15),
    "getAccount": (0.016, 15),
    # Finances v0 / 2024-06-19 (settlements)
    "listFinancialEventGroups": (0.5, 30),
    "listTransactions": (0.5, 10),
}


def orders_horizon(now: datetime, marketplaces: Iterable[Marketplace]) -> datetime | None:
    """The oldest moment Amazon still returns orders for, read across these marketplaces together; None when
    one of them keeps its whole history (a read that includes JP, AU or SG can reach anything)."""
    if any(m.full_history for m in marketplaces):
        return None
    return now - ORDERS_HORIZON
