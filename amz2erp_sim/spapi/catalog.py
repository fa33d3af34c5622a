"""Catalog Items API 2022-04-01: searchCatalogItems and getCatalogItem."""

from __future__ import annotations

from typing import Any

from amz2erp.amazon import limits
from amz2erp_sim.spapi.core import ApiError, Response, SimState, _bad, _Ctx


class CatalogApi(SimState):
    """Catalog Items API 2022-04-01: the operations of this API area, on the shared ``SimState``."""

    def _catalog_item(self, asin: str, mid: str, included: set[str]) -> dict[str, Any] | None:
        cands = [lst for lst in self._listings.values() if lst.asin == asin]
        if not cands:
            return None
        lst = next((c for c in cands if c.marketplace_id == mid), cands[0])
        item: dict[str, Any] = {"asin": asin}
        browse = {
            "displayName": lst.classification or lst.product_type,
            "classificationId": lst.classification_id or "0",
        }
        if "summaries" in included:
            item["summaries"] = [{
                "marketplaceId": mid, "brand": lst.brand, "browseClassification": browse,
                "itemClassification": "BASE_PRODUCT", "itemName": lst.title, "manufacturer": lst.brand,
            }]  # fmt: skip
        if "images" in included:
            item["images"] = [
                {
                    "marketplaceId": mid,
                    "images": [{"variant": "MAIN", "link": lst.image_url, "height": 500, "width": 500}],
                }
            ]
        if "classifications" in included:
            item["classifications"] = [{"marketplaceId": mid, "classifications": [browse]}]
        if "productTypes" in included:
            item["productTypes"] = [{"marketplaceId": mid, "productType": lst.product_type}]
        if "identifiers" in included:
            item["identifiers"] = [
                {"marketplaceId": mid, "identifiers": [{"identifierType": "ASIN", "identifier": asin}]}
            ]
        if "attributes" in included:
            item["attributes"] = {
                "item_name": [{"value": lst.title, "marketplace_id": mid}],
                "brand": [{"value": lst.brand, "marketplace_id": mid}],
                "product_description": [{"value": lst.description, "marketplace_id": mid}],
            }
        if "salesRanks" in included:
            item["salesRanks"] = [{"marketplaceId": mid, "classificationRanks": [], "displayGroupRanks": []}]
        if "dimensions" in included:
            item["dimensions"] = [{"marketplaceId": mid}]
        if "relationships" in included:
            item["relationships"] = [{"marketplaceId": mid, "relationships": []}]
        return item

    def _catalog_included(self, ctx: _Ctx) -> set[str]:
        return set(ctx.list("includedData")) or {"summaries"}

    def _op_search_catalog(self, ctx: _Ctx) -> Response:
        mids = ctx.list("marketplaceIds")
        if not mids:
            raise _bad("marketplaceIds is required.")
        if len(mids) > 1:
            raise _bad("Only one marketplaceId is supported.")
        mid = mids[0]
        included = self._catalog_included(ctx)
        identifiers = ctx.list("identifiers")
        keywords = ctx.list("keywords")
        if identifiers and keywords:
            raise _bad("Cannot search by both identifiers and keywords.")
        if not identifiers and not keywords:
            raise _bad("One of identifiers or keywords is required.")
        items: list[dict[str, Any]] = []
        pagination: dict[str, Any] = {}
        if identifiers:
            if len(identifiers) > limits.CATALOG_BATCH:
                raise _bad(f"identifiers accepts at most {limits.CATALOG_BATCH} values.")
            itype = ctx.first("identifiersType")
            if not itype:
                raise _bad("identifiersType is required when identifiers are given.")
            if itype == "SKU" and not ctx.first("sellerId"):
                raise _bad("sellerId is required when identifiersType is SKU.")
            seen: set[str] = set()
            for ident in identifiers:
                if itype == "ASIN":
                    asin: str | None = ident
                elif itype == "SKU":
                    lst = self._listings.get((ident, mid))
                    asin = lst.asin if lst else None
                else:
                    asin = None
                if asin and asin not in seen:
                    it = self._catalog_item(asin, mid, included)
                    if it is not None:
                        seen.add(asin)
                        items.append(it)
        else:
            size = self._int_param(ctx, "pageSize", 10, 1, limits.CATALOG_BATCH)
            pos = 0
            tok = ctx.first("pageToken")
            if tok:
                state = self._page_tokens.get(tok)
                if state is None or state.get("op") != "searchCatalogItems":
                    raise _bad("Invalid pageToken.")
                pos = state["pos"]
            words = [k.lower() for k in keywords]
            asins: list[str] = []
            for lst in sorted(self._listings.values(), key=lambda x: x.asin):
                if lst.asin not in asins and all(w in lst.title.lower() for w in words):
                    asins.append(lst.asin)
            for a in asins[pos : pos + size]:
                it = self._catalog_item(a, mid, included)
                if it is not None:
                    items.append(it)
            if pos + size < len(asins):
                pagination["nextToken"] = self._new_page_token(
                    {"op": "searchCatalogItems", "pos": pos + size}
                )
            if pos > 0:
                pagination["previousToken"] = self._new_page_token(
                    {"op": "searchCatalogItems", "pos": max(0, pos - size)}
                )
        body: dict[str, Any] = {
            "numberOfResults": len(items),
            "items": items,
            "refinements": {"brands": [], "classifications": []},
        }
        if pagination:
            body["pagination"] = pagination
        return self._json(200, body)

    def _op_get_catalog_item(self, ctx: _Ctx) -> Response:
        mids = ctx.list("marketplaceIds")
        if not mids:
            raise _bad("marketplaceIds is required.")
        item = self._catalog_item(ctx.params["asin"], mids[0], self._catalog_included(ctx))
        if item is None:
            raise ApiError(
                404,
                "NotFound",
                f"Requested item '{ctx.params['asin']}' not found in marketplace '{mids[0]}'.",
            )
        return self._json(200, item)
