"""Catalog Items 2022-04-01: product details (title, brand, image, classification) for ASINs, in batches."""

from __future__ import annotations

from typing import Any

from amz2erp.amazon import limits
from amz2erp.amazon.calls import Caller
from amz2erp.amazon.marketplaces import resolve_ids
from amz2erp.amazon.parse import parse_catalog_item
from amz2erp.amazon.transport import ApiResponse, Transport
from amz2erp.models import CatalogItem


def fetch_catalog_items(caller: Caller, transport: Transport, asins: list[str], marketplace_id: str) -> dict[str, CatalogItem]:
    """Catalog Items 2022-04-01 searchCatalogItems, 20 ASINs per call. ASINs Amazon does not know are
    simply absent from the result."""
    mid = resolve_ids([marketplace_id])[0]
    catalog = transport.api("catalog")
    unique = list(dict.fromkeys(a.strip() for a in asins if a and a.strip()))
    out: dict[str, CatalogItem] = {}
    for i in range(0, len(unique), limits.CATALOG_BATCH):
        batch = unique[i : i + limits.CATALOG_BATCH]
        params = {
            "identifiers": ",".join(batch),
            "identifiersType": "ASIN",
            "marketplaceIds": mid,
            "includedData": "summaries,images,classifications,productTypes",
            "pageSize": limits.CATALOG_BATCH,
        }

        def fetch(token: str | None, params: dict[str, Any] = params) -> ApiResponse:
            extra = {"pageToken": token} if token else {}
            return catalog.search_catalog_items(**params, **extra)

        for page in caller.pages("searchCatalogItems", fetch,
                                lambda r: (r.pagination or {}).get("nextToken") or r.payload.get("nextToken"),
                                lambda r: isinstance(r.payload.get("items"), list), max_pages=10):
            for raw in page.payload["items"]:
                item = parse_catalog_item(raw, mid)
                if item is not None:
                    out[item.asin] = item
    return out
