"""sync-products: Amazon listings become ERPNext Items and Item Prices.

Idempotent by content hash: a listing whose content (title, price, ASIN, status…, not the stock quantity)
is unchanged since it last landed costs no Catalog call and no ERPNext write. Failures are isolated per SKU,
kept in the ledger and retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from amz2erp import mapping
from amz2erp.amazon import limits
from amz2erp.engine.masters import Masters
from amz2erp.engine.plan import Action, PlannedWrite
from amz2erp.engine.runtime import Runtime, Writer, resolve_marketplaces
from amz2erp.engine.windows import to_utc_start
from amz2erp.errors import (
    Amz2ErpError,
    ErpNextConfigError,
    RecordError,
    RemoteAuthError,
    RemoteUnavailableError,
)
from amz2erp.models import CatalogItem, Listing
from amz2erp.state import Kind, Status

log = logging.getLogger(__name__)


class ProductRecordError(RecordError):
    pass


class ProductOutcome(str, Enum):
    """What became of one listing (counted as "listings ok" / "listings failed")."""

    OK = "ok"
    FAILED = "failed"


def listing_hash(listing: Listing) -> str:
    data = listing.model_dump(mode="json", exclude={"quantity"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class ProductsResult:
    failed: int = 0
    inactive: list[str] = field(default_factory=list)
    plans: list[PlannedWrite] = field(default_factory=list)


@dataclass
class _Work:
    listing: Listing
    item_code: str
    price_list: str
    ledger_key: str
    content_hash: str
    primary: bool  # this listing defines the Item (first marketplace that has the SKU)
    catalog: CatalogItem | None = None


class ProductWriter(Writer):
    def __init__(self, rt: Runtime, *, dry_run: bool) -> None:
        super().__init__(rt, dry_run=dry_run)
        self.masters = Masters(rt, dry_run=dry_run)

    # --- one listing ------------------------------------------------------------------------------------

    def process(self, work: _Work) -> tuple[ProductOutcome, list[PlannedWrite]]:
        plan: list[PlannedWrite] = []
        try:
            if work.primary:
                self._write_item(work, plan)
            self._write_price(work, plan)
        except (RemoteAuthError, RemoteUnavailableError, ErpNextConfigError):
            raise
        except Amz2ErpError as exc:
            return self._failed(work, str(exc), plan)
        except Exception as exc:
            log.debug("listing %s failed", work.ledger_key, exc_info=True)
            return self._failed(work, f"internal error: {type(exc).__name__}: {exc}", plan)
        self.state.mark_done(Kind.LISTING, work.ledger_key, work.item_code, work.content_hash,
                             marketplace=work.listing.marketplace_id)
        return ProductOutcome.OK, plan

    def _failed(self, work: _Work, error: str, plan: list[PlannedWrite]) -> tuple[ProductOutcome, list[PlannedWrite]]:
        log.warning("listing %s failed: %s", work.ledger_key, error)
        self.state.mark_failed(Kind.LISTING, work.ledger_key, error, marketplace=work.listing.marketplace_id)
        return ProductOutcome.FAILED, plan

    def _write_item(self, work: _Work, plan: list[PlannedWrite]) -> None:
        code = work.item_code
        mapped = work.listing.sku in self.settings.items.map
        wanted = mapping.listing_to_item(work.listing, work.catalog, self.ctx)
        if wanted.get("brand") and not self.masters.ensure_master("Brand", wanted["brand"],
                                                                  {"brand": wanted["brand"]}):
            wanted.pop("brand")
        group = wanted.get("item_group")
        if group and group != self.settings.defaults.item_group:
            self.masters.ensure_master("Item Group", group, {
                "item_group_name": group, "parent_item_group": self.settings.defaults.item_group, "is_group": 0})
        existing = self.erp.get("Item", code)
        if existing is None:
            if mapped:
                raise ProductRecordError(f"SKU {work.listing.sku!r} is mapped to Item {code!r} in [items.map], "
                                         "but ERPNext has no such Item")
            self.masters.create_item(code, wanted, plan)
            self.rt.counts.add("items created")
            return
        self.masters.settle(Kind.ITEM, code, code)
        if mapped:
            # The seller's own Item: we only add the ASIN link, never rename or regroup it.
            wanted = {"amazon_asin": wanted.get("amazon_asin")} if wanted.get("amazon_asin") else {}
        changes = mapping.item_doc_changes(existing, wanted)
        if not changes:
            self.rt.counts.add("items unchanged")
            return
        plan.append(PlannedWrite(Action.UPDATE, "Item", code, changes=changes))
        self.erp.update("Item", code, changes)
        self.rt.counts.add("items updated")

    def _write_price(self, work: _Work, plan: list[PlannedWrite]) -> None:
        wanted = mapping.listing_to_item_price(work.listing, work.item_code, work.price_list)
        if wanted is None:
            self.rt.counts.add("prices missing")
            return
        existing = self.erp.find("Item Price", [["item_code", "=", work.item_code],
                                                ["price_list", "=", work.price_list]],
                                 fields=("name", "price_list_rate", "currency"))
        if existing is None:
            plan.append(PlannedWrite(Action.CREATE, "Item Price", key=work.item_code, doc=wanted))
            self.erp.insert("Item Price", wanted, key={"item_code": work.item_code,
                                                       "price_list": work.price_list})
            self.rt.counts.add("prices created")
            return
        from decimal import Decimal

        if Decimal(str(existing["price_list_rate"])) == Decimal(str(wanted["price_list_rate"])):
            self.rt.counts.add("prices unchanged")
            return
        changes = {"price_list_rate": wanted["price_list_rate"]}
        plan.append(PlannedWrite(Action.UPDATE, "Item Price", existing["name"], changes=changes))
        self.erp.update("Item Price", existing["name"], changes)
        self.rt.counts.add("prices updated")


def sync_products(rt: Runtime, *, after: date | None = None, marketplaces: Iterable[str] = (),
                  dry_run: bool = False) -> ProductsResult:
    writer = ProductWriter(rt, dry_run=dry_run)
    result = ProductsResult()
    # Only an explicit --after filters listings: [sync] after is where order history starts, and a product
    # listed before it can still be sold after it.
    since = to_utc_start(after) if after else None
    seen_codes: set[str] = set()
    for marketplace in resolve_marketplaces(rt, marketplaces):
        with rt.reporter.progress(f"{marketplace.code}: requesting the listings report") as task:
            listings = list(rt.amazon.fetch_listings(marketplace.marketplace_id))
            task.update(description=f"{marketplace.code}: {len(listings)} listings")
        price_list = writer.masters.price_list_for(marketplace.currency, create=True)
        todo: list[_Work] = []
        for listing in listings:
            if since is not None and listing.open_date is not None and listing.open_date < since:
                rt.counts.add("listings before --after")
                continue
            key = f"{marketplace.code}|{listing.sku}"
            if not listing.is_active:
                result.inactive.append(key)
                rt.counts.add("listings inactive")
                _handle_inactive(rt, writer, listing)
                continue
            code = mapping.item_code_for(listing.sku, listing.asin, rt.settings.items)
            if code is None:
                result.failed += 1
                writer.state.mark_failed(Kind.LISTING, key, "no item code: the listing has neither SKU nor ASIN")
                continue
            primary = code not in seen_codes
            seen_codes.add(code)
            h = listing_hash(listing) + ("|primary" if primary else "")
            entry = rt.state.get(Kind.LISTING, key)
            if entry is not None and entry.status == Status.DONE and entry.content_hash == h:
                rt.counts.add("listings unchanged")
                continue
            todo.append(_Work(listing, code, price_list, key, h, primary))
        _enrich(rt, todo, marketplace.marketplace_id)
        with rt.reporter.progress(f"{marketplace.code}: writing Items and Prices", total=len(todo)) as task:
            def on_result(work: _Work, res: tuple[ProductOutcome, list[PlannedWrite]]) -> None:
                status, plan = res
                rt.counts.add(f"listings {status.value}")
                if status is ProductOutcome.FAILED:
                    result.failed += 1
                if dry_run:
                    result.plans.extend(plan)
                task.advance(1)

            # Items first (one writer per item code), then the prices of non-primary listings.
            rt.run_pool(writer.process, [w for w in todo if w.primary], on_result)
            rt.run_pool(writer.process, [w for w in todo if not w.primary], on_result)
    return result


def _enrich(rt: Runtime, todo: list[_Work], marketplace_id: str) -> None:
    if not rt.settings.items.enrich:
        return
    asins = sorted({w.listing.asin for w in todo if w.primary and w.listing.asin})
    catalog: dict[str, CatalogItem] = {}
    for i in range(0, len(asins), limits.CATALOG_BATCH):
        try:
            catalog.update(rt.amazon.fetch_catalog_items(asins[i:i + limits.CATALOG_BATCH], marketplace_id))
        except (RemoteAuthError, RemoteUnavailableError):
            raise
        except Amz2ErpError as exc:  # enrichment is optional: the listing report alone makes a good Item
            log.warning("catalog lookup failed for %d ASINs: %s", len(asins[i:i + limits.CATALOG_BATCH]), exc)
    for work in todo:
        if work.listing.asin:
            work.catalog = catalog.get(work.listing.asin)


def _handle_inactive(rt: Runtime, writer: ProductWriter, listing: Listing) -> None:
    if rt.settings.items.inactive != "disable":
        return
    code = mapping.item_code_for(listing.sku, listing.asin, rt.settings.items)
    if code is None or listing.sku in rt.settings.items.map:
        return
    existing = rt.erp.get("Item", code)
    if existing is None or existing.get("disabled"):
        return
    writer.erp.update("Item", code, {"disabled": 1})
    rt.counts.add("items disabled")
