"""Amazon's global facts, in one place: the product (engine, backfill, the access layer's report planner)
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
#: Amazon returns no order older than two years (except where `Marketplace.full_history`)
ORDERS_HORIZON = timedelta(days=730)
#: searchCatalogItems takes at most 20 identifiers per call (and pages of at most 20)
CATALOG_BATCH = 20
#: "Reports are retained for a maximum of 90 days": settlement reports older than that are no longer listed
REPORT_RETENTION = timedelta(days=90)


def orders_horizon(now: datetime, marketplaces: Iterable[Marketplace]) -> datetime | None:
    """The oldest moment Amazon still returns orders for, read across these marketplaces together; None when
    one of them keeps its whole history (a read that includes JP, AU or SG can reach anything)."""
    if any(m.full_history for m in marketplaces):
        return None
    return now - ORDERS_HORIZON
