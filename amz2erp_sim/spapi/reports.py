"""Reports API 2021-06-30: report jobs, documents and the flat files (listings, orders) they hold."""

from __future__ import annotations

import gzip
import json
import secrets
import urllib.parse
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from amz2erp.amazon import limits
from amz2erp_sim.datagen import (
    MARKETPLACES_BY_ID,
    marketplace,
)
from amz2erp_sim.spapi import settlements as sim_settlements
from amz2erp_sim.spapi.core import (
    ApiError,
    ReportJob,
    Response,
    _bad,
    _Ctx,
    _iso_offset,
    _tsv_cell,
    parse_datetime,
)
from amz2erp_sim.spapi.settlement_book import SettlementBookApi

REPORT_TYPES = (
    "GET_MERCHANT_LISTINGS_ALL_DATA",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
)


LISTINGS_COLUMNS = (
    "item-name", "item-description", "listing-id", "seller-sku", "price", "quantity", "open-date", "image-url",
    "item-is-marketplace", "product-id-type", "zshop-shipping-fee", "item-note", "item-condition",
    "zshop-category1", "zshop-browse-path", "zshop-storefront-feature", "asin1", "asin2", "asin3",
    "will-ship-internationally", "expedited-shipping", "zshop-boldface", "product-id",
    "bid-for-featured-placement", "add-delete", "pending-quantity", "fulfillment-channel",
    "merchant-shipping-group", "status",
)  # fmt: skip


ORDERS_COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "ship-service-level", "product-name", "sku", "asin",
    "item-status", "quantity", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax",
    "gift-wrap-price", "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order",
    "purchase-order-number", "price-designation", "tax-collection-model", "tax-collection-responsible-party",
)  # fmt: skip


#: the orders report's columns as Amazon documents them: no tax-collection columns
DOCUMENTED_ORDERS_COLUMNS = tuple(c for c in ORDERS_COLUMNS if not c.startswith("tax-collection-"))



class ReportsApi(SettlementBookApi):
    """Reports API 2021-06-30: the operations of this API area, on the shared ``SimState``."""

    def fail_next_reports(self, n: int = 1) -> None:
        """The next ``n`` created reports end FATAL."""
        with self._lock:
            self._fail_reports += n

    def _op_create_report(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise _bad("A JSON body is required.")
        rtype = body.get("reportType")
        mids = body.get("marketplaceIds")
        if not rtype or not isinstance(mids, list) or not mids:
            raise _bad("reportType and marketplaceIds are required.")
        if rtype == sim_settlements.REPORT_TYPE:  # Amazon publishes settlement reports itself
            raise _bad("Request for report type 1118 is not allowed at this time")
        if rtype not in REPORT_TYPES:
            raise _bad(f"Report type {rtype} is not supported by the simulator.")
        now = self._now()
        start = end = None
        try:
            if body.get("dataStartTime"):
                start = parse_datetime(str(body["dataStartTime"]))
            if body.get("dataEndTime"):
                end = parse_datetime(str(body["dataEndTime"]))
        except ValueError as exc:
            raise _bad("dataStartTime/dataEndTime must be ISO 8601 date-times.") from exc
        if rtype.startswith("GET_FLAT_FILE_ALL_ORDERS"):
            end = end or now
            start = start or end - limits.REPORT_WINDOW
            if end < start:
                raise _bad("dataEndTime must be after dataStartTime.")
            if end - start > limits.REPORT_WINDOW + timedelta(seconds=1):
                raise _bad("Date range exceeded. Report can be requested only upto 30 days.")
            content = self.orders_report(rtype, [str(m) for m in mids], start, min(end, now), now)
        else:
            content = self._listings_report(str(mids[0]))
        self._report_seq += 1
        rid = str(self._report_seq)
        if self._fail_reports > 0:
            self._fail_reports -= 1
            outcome = "FATAL"
            content = json.dumps({"errorDetails": "The report could not be generated."}).encode()
        elif content is None:
            outcome = "CANCELLED"
        else:
            outcome = "DONE"
        doc_id = None
        if content is not None:
            self._doc_seq += 1
            doc_id = f"amzn1.spdoc.1.4.na.sim{self._doc_seq:06d}.{secrets.token_hex(6)}"
            self._documents[doc_id] = gzip.compress(content, mtime=0)
        self._reports[rid] = ReportJob(rid, rtype, [str(m) for m in mids], start, end, now, outcome, doc_id)
        return self._json(202, {"reportId": rid})

    def _report_status(self, r: ReportJob) -> str:
        if r.cancelled:
            return "CANCELLED"
        elapsed = (self._now() - r.created).total_seconds()
        p = self.report_processing_seconds
        if elapsed < p * 0.25:
            return "IN_QUEUE"
        if elapsed < p:
            return "IN_PROGRESS"
        return r.outcome

    def _report_json(self, r: ReportJob) -> dict[str, Any]:
        status = self._report_status(r)
        d: dict[str, Any] = {
            "reportId": r.report_id,
            "reportType": r.report_type,
            "marketplaceIds": r.marketplace_ids,
            "createdTime": _iso_offset(r.created),
            "processingStatus": status,
        }
        if r.data_start:
            d["dataStartTime"] = _iso_offset(r.data_start)
        if r.data_end:
            d["dataEndTime"] = _iso_offset(r.data_end)
        p = self.report_processing_seconds
        if status != "IN_QUEUE" and not (
            r.cancelled and self._now() - r.created < timedelta(seconds=p * 0.25)
        ):
            d["processingStartTime"] = _iso_offset(r.created + timedelta(seconds=p * 0.25))
        if status in ("DONE", "FATAL", "CANCELLED") and not r.cancelled:
            d["processingEndTime"] = _iso_offset(r.created + timedelta(seconds=p))
        if status in ("DONE", "FATAL") and r.document_id:
            d["reportDocumentId"] = r.document_id
        return d

    def _op_get_report(self, ctx: _Ctx) -> Response:
        self._publish_settlements(generate=False)
        r = self._reports.get(ctx.params["reportId"])
        if r is None:
            raise ApiError(404, "NotFound", f"Report {ctx.params['reportId']} was not found.")
        return self._json(200, self._report_json(r))

    def _op_get_reports(self, ctx: _Ctx) -> Response:
        wanted = ctx.list("reportTypes")  # only a settlement listing builds the settlements
        first_page = not ctx.first("nextToken")
        self._publish_settlements(
            generate=first_page and (not wanted or sim_settlements.REPORT_TYPE in wanted)
        )
        token = ctx.first("nextToken")
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "getReports":
                raise _bad("Invalid nextToken.")
        else:
            types = ctx.list("reportTypes")
            statuses = ctx.list("processingStatuses")
            mids = ctx.list("marketplaceIds")
            size = self._int_param(ctx, "pageSize", 10, 1, 100)
            now = self._now()
            try:
                since = (
                    parse_datetime(ctx.first("createdSince") or "")
                    if ctx.first("createdSince")
                    else now - timedelta(days=90)
                )
                until = parse_datetime(ctx.first("createdUntil") or "") if ctx.first("createdUntil") else now
            except ValueError as exc:
                raise _bad("createdSince/createdUntil must be ISO 8601 date-times.") from exc
            since = max(since, now - limits.REPORT_RETENTION)
            sel = []
            for r in sorted(
                self._reports.values(), key=lambda r: (r.created, int(r.report_id)), reverse=True
            ):
                if types and r.report_type not in types:
                    continue
                if statuses and self._report_status(r) not in statuses:
                    continue
                if mids and not set(mids) & set(r.marketplace_ids):
                    continue
                if not (since <= r.created <= until):
                    continue
                sel.append(r.report_id)
            state = {"op": "getReports", "ids": sel, "pos": 0, "size": size}
        pos, size = state["pos"], state["size"]
        body: dict[str, Any] = {
            "reports": [self._report_json(self._reports[i]) for i in state["ids"][pos : pos + size]]
        }
        if pos + size < len(state["ids"]):
            body["nextToken"] = self._new_page_token({**state, "pos": pos + size})
        return self._json(200, body)

    def _op_cancel_report(self, ctx: _Ctx) -> Response:
        r = self._reports.get(ctx.params["reportId"])
        if r is None:
            raise ApiError(404, "NotFound", f"Report {ctx.params['reportId']} was not found.")
        if self._report_status(r) != "IN_QUEUE":
            raise _bad("Only reports with processingStatus IN_QUEUE can be cancelled.")
        r.cancelled = True
        return Response(200, b"", "application/json")

    def _op_get_report_document(self, ctx: _Ctx) -> Response:
        self._publish_settlements(generate=False)
        doc_id = ctx.params["reportDocumentId"]
        oldest = self._now() - limits.REPORT_RETENTION
        if doc_id not in self._documents or not any(
            r.document_id == doc_id and self._report_status(r) in ("DONE", "FATAL") and r.created >= oldest
            for r in self._reports.values()
        ):
            raise ApiError(404, "NotFound", f"Report document {doc_id} was not found.")
        url = f"{self.url}/documents/{urllib.parse.quote(doc_id, safe='')}?X-Amz-Expires=300&X-Amz-Signature=sim"
        body = {"reportDocumentId": doc_id, "url": url}
        if doc_id not in self._plain_documents:
            body["compressionAlgorithm"] = "GZIP"
        return self._json(200, body)

    def _op_download(self, ctx: _Ctx) -> Response:
        data = self._documents.get(ctx.params["documentId"])
        if data is None:
            return Response(404, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>",
                            "application/xml")  # fmt: skip
        return Response(200, data, "text/plain; charset=Cp1252")

    @staticmethod
    def _encode_tsv(columns: Iterable[str], rows: list[list[Any]]) -> bytes:
        lines = ["\t".join(columns)]
        lines.extend("\t".join(_tsv_cell(c) for c in row) for row in rows)
        return ("\r\n".join(lines) + "\r\n").encode("cp1252", errors="replace")

    def _listings_report(self, marketplace_id: str) -> bytes | None:
        mp = MARKETPLACES_BY_ID.get(marketplace_id)
        rows = []
        for lst in self._listings.values():
            if lst.marketplace_id != marketplace_id:
                continue
            local = lst.open_date.astimezone(mp.time_zone if mp else timezone.utc)
            # Amazon's EU reports name Central European time the way Java's legacy zone ids do (MET/MEST)
            abbrev = {"CET": "MET", "CEST": "MEST"}.get(local.tzname() or "UTC", local.tzname() or "UTC")
            if abbrev[0] in "+-":  # zones without an abbreviation ("+08"): a numeric offset instead
                abbrev = local.strftime("%z")
            opened = local.strftime("%Y-%m-%d %H:%M:%S")
            fba = lst.fulfillment_channel != "DEFAULT"
            values = {
                "item-name": lst.title, "item-description": lst.description, "listing-id": lst.listing_id,
                "seller-sku": lst.sku, "price": str(lst.price), "quantity": "" if fba else str(lst.quantity),
                "open-date": f"{opened} {abbrev}", "image-url": lst.image_url, "item-is-marketplace": "y",
                "product-id-type": "1", "item-condition": "11", "asin1": lst.asin, "product-id": lst.asin,
                "pending-quantity": "0", "fulfillment-channel": lst.fulfillment_channel,
                "merchant-shipping-group": "" if fba else "Migrated Template", "status": lst.status,
            }  # fmt: skip
            rows.append([values.get(c, "") for c in LISTINGS_COLUMNS])
        if not rows:
            return None
        return self._encode_tsv(LISTINGS_COLUMNS, rows)

    def orders_report(
        self, rtype: str, mids: list[str], start: datetime, end: datetime, now: datetime
    ) -> bytes | None:
        by_update = rtype.endswith("BY_LAST_UPDATE_GENERAL")
        sel = []
        for o in self._orders.values():
            if o.marketplace_id not in mids or not self._visible(o, now):
                continue
            ts = o.last_update_date if by_update else o.purchase_date
            if start <= ts <= end:
                sel.append(o)
        sel.sort(key=lambda o: (o.last_update_date if by_update else o.purchase_date, o.amazon_order_id))
        columns = ORDERS_COLUMNS if self.report_tax_columns else DOCUMENTED_ORDERS_COLUMNS
        rows = []
        for o in sel:
            mp = marketplace(o.marketplace_id)
            for it in o.items:
                priced = o.prices_visible
                if it.quantity_ordered == 0:
                    item_status = "Cancelled"
                elif it.quantity_shipped >= it.quantity_ordered:
                    item_status = "Shipped"
                else:
                    item_status = "Unshipped"
                values: dict[str, Any] = {
                    "amazon-order-id": o.amazon_order_id, "merchant-order-id": o.seller_order_id or "",
                    "purchase-date": _iso_offset(o.purchase_date), "last-updated-date": _iso_offset(o.last_update_date),
                    "order-status": o.status, "fulfillment-channel": "Amazon" if o.fulfillment_channel == "AFN" else "Merchant",
                    "sales-channel": mp.name, "ship-service-level": "Standard", "product-name": it.title,
                    "sku": it.sku, "asin": it.asin, "item-status": item_status, "quantity": it.quantity_ordered,
                    "currency": o.currency if priced else "",
                    "ship-city": o.shipping_address.city, "ship-state": o.shipping_address.state,
                    "ship-postal-code": o.shipping_address.postal_code, "ship-country": o.shipping_address.country_code,
                    "promotion-ids": ",".join(it.promotion_ids) if priced else "",
                    "is-business-order": "true" if o.is_business else "false",
                    "purchase-order-number": o.purchase_order_number or "",
                    "tax-collection-model": it.tax_collection_model or "",
                    "tax-collection-responsible-party": "Amazon Services, Inc." if it.tax_collection_model else "",
                }  # fmt: skip
                if priced:
                    values.update(
                        {
                            "item-price": it.item_price,
                            "item-tax": it.item_tax - it.promotion_discount_tax,
                            "shipping-price": it.shipping_price,
                            "shipping-tax": it.shipping_tax - it.shipping_discount_tax,
                            "gift-wrap-price": it.gift_wrap_price,
                            "gift-wrap-tax": it.gift_wrap_tax,
                            "item-promotion-discount": it.promotion_discount,
                            "ship-promotion-discount": it.shipping_discount,
                        }
                    )
                rows.append([values.get(c, "") for c in columns])
        if not rows:
            return None
        return self._encode_tsv(columns, rows)
