"""Listings: every SKU of one marketplace from the GET_MERCHANT_LISTINGS_ALL_DATA report (a fresh snapshot)."""

from __future__ import annotations

from collections.abc import Iterator

from amz2erp.amazon import marketplaces as mp
from amz2erp.amazon import reports as rp
from amz2erp.amazon.marketplaces import resolve_ids
from amz2erp.models import Listing


def fetch_listings(reports: rp.ReportPipeline, marketplace_id: str) -> Iterator[Listing]:
    """The listings of one marketplace; none when Amazon cancelled the report (no data)."""
    mid = resolve_ids([marketplace_id])[0]
    doc = reports.run_report(rp.LISTINGS_REPORT, [mid])
    if doc is None:
        return
    # the report carries no currency: it is the marketplace's
    currency = mp.BY_ID[mid].currency if mid in mp.BY_ID else None
    with reports.document(doc) as lines:
        yield from rp.parse_listings(rp.iter_tsv(lines), mid, currency)
