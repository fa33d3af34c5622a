"""Finances APIs: v0 listFinancialEventsByOrderId and listFinancialEventGroups, 2024-06-19
listTransactions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from amz2erp_sim.datagen import marketplace
from amz2erp_sim.spapi import settlements as sim_settlements
from amz2erp_sim.spapi.core import Response, _bad, _Ctx, _currency_fin, iso, parse_datetime
from amz2erp_sim.spapi.settlement_book import SettlementBookApi


class FinancesApi(SettlementBookApi):
    """Finances APIs: the operations of this API area, on the shared ``SimState``."""

    def _op_financial_events(self, ctx: _Ctx) -> Response:
        self._int_param(ctx, "MaxResultsPerPage", 100, 1, 100)
        o = self._orders.get(ctx.params["orderId"])
        events: dict[str, Any] = {"ShipmentEventList": [], "RefundEventList": [], "GuaranteeClaimEventList": [],
                                  "ChargebackEventList": [], "AdjustmentEventList": [], "ServiceFeeEventList": []}  # fmt: skip
        if o is not None and o.number_of_items_shipped > 0 and o.prices_visible:
            cur = o.currency
            items = []
            for it in o.items:
                if it.quantity_shipped <= 0:
                    continue
                charges = [("Principal", it.item_price), ("Tax", it.item_tax), ("ShippingCharge", it.shipping_price),
                           ("ShippingTax", it.shipping_tax), ("GiftWrap", it.gift_wrap_price), ("GiftWrapTax", it.gift_wrap_tax)]  # fmt: skip
                commission = -(it.item_price * Decimal("0.15")).quantize(Decimal("0.01"))
                fees = [("Commission", commission)]
                if o.fulfillment_channel == "AFN":
                    fees.append(("FBAPerUnitFulfillmentFee", Decimal("-3.22") * it.quantity_shipped))
                entry: dict[str, Any] = {
                    "SellerSKU": it.sku,
                    "OrderItemId": it.order_item_id,
                    "QuantityShipped": it.quantity_shipped,
                    "ItemChargeList": [
                        {"ChargeType": t, "ChargeAmount": _currency_fin(a, cur)} for t, a in charges
                    ],
                    "ItemFeeList": [{"FeeType": t, "FeeAmount": _currency_fin(a, cur)} for t, a in fees],
                    "PromotionList": [],
                }
                if it.promotion_discount or it.shipping_discount:
                    pid = it.promotion_ids[0] if it.promotion_ids else "PROMO"
                    entry["PromotionList"] = [
                        {"PromotionType": t, "PromotionId": pid, "PromotionAmount": _currency_fin(-a, cur)}
                        for t, a in (("PromotionMetaDataDefinitionValue", it.promotion_discount),
                                     ("ShippingDiscount", it.shipping_discount)) if a
                    ]  # fmt: skip
                if it.tax_collection_model:
                    withheld = it.item_tax + it.shipping_tax + it.gift_wrap_tax
                    entry["ItemTaxWithheldList"] = [{
                        "TaxCollectionModel": it.tax_collection_model,
                        "TaxesWithheld": [{"ChargeType": "MarketplaceFacilitatorTax-Principal",
                                           "ChargeAmount": _currency_fin(-withheld, cur)}],
                    }]  # fmt: skip
                items.append(entry)
            events["ShipmentEventList"].append({
                "AmazonOrderId": o.amazon_order_id,
                "MarketplaceName": marketplace(o.marketplace_id).name,
                "PostedDate": iso(o.last_update_date),
                "ShipmentItemList": items,
            })  # fmt: skip
        return self._json(200, {"payload": {"FinancialEvents": events}})

    def _op_list_event_groups(self, ctx: _Ctx) -> Response:
        now = self._now()
        state = self._paged(ctx, "listFinancialEventGroups", "NextToken")
        if state is None:
            size = self._int_param(ctx, "MaxResultsPerPage", 10, 1, 100)
            after, before = self._window(
                ctx, "FinancialEventGroupStartedAfter", "FinancialEventGroupStartedBefore"
            )
            ids: list[str] = []
            if after is None or before - after <= timedelta(days=180):  # wider: Amazon returns nothing
                ids = [
                    s.settlement_id
                    for s in sorted(self._settlement_book(), key=lambda s: (s.start, s.settlement_id))
                    if s.start <= now and (after is None or s.start >= after) and s.start < before
                ]
            state = {"op": "listFinancialEventGroups", "ids": ids, "pos": 0, "size": size}
        pos, size = state["pos"], state["size"]
        by_id = {s.settlement_id: s for s in self._settlement_book()}
        payload: dict[str, Any] = {
            "FinancialEventGroupList": [
                sim_settlements.event_group(by_id[i], now,
                                            (self.options.payout_conversions or {}).get(by_id[i].currency))
                for i in state["ids"][pos : pos + size]
                if i in by_id
            ]
        }
        if pos + size < len(state["ids"]):
            payload["NextToken"] = self._new_page_token({**state, "pos": pos + size})
        return self._json(200, {"payload": payload})

    def _op_list_transactions(self, ctx: _Ctx) -> Response:
        now = self._now()
        state = self._paged(ctx, "listTransactions", "nextToken")
        if state is None:
            name, value = ctx.first("relatedIdentifierName"), ctx.first("relatedIdentifierValue")
            if name and name not in ("FINANCIAL_EVENT_GROUP_ID", "ORDER_ID"):
                raise _bad("relatedIdentifierName must be FINANCIAL_EVENT_GROUP_ID or ORDER_ID.")
            if bool(name) != bool(value):
                raise _bad("relatedIdentifierName and relatedIdentifierValue must be given together.")
            if not name and not ctx.first("postedAfter"):
                raise _bad("postedAfter is required if you do not specify a related identifier.")
            after, before = self._window(ctx, "postedAfter", "postedBefore")
            mid, status = ctx.first("marketplaceId"), ctx.first("transactionStatus")
            found: list[dict[str, Any]] = []
            if after is None or before - after <= timedelta(days=180):  # wider: Amazon answers empty
                for s in self._settlement_book():
                    if s.start > now or (mid and s.marketplace_id != mid):
                        continue
                    if name == "FINANCIAL_EVENT_GROUP_ID" and s.group_id != value:
                        continue
                    for tx in sim_settlements.transactions(s, now, self.seller_id):
                        posted = parse_datetime(tx["postedDate"])
                        if (after is not None and posted < after) or (not name and posted >= before):
                            continue
                        if status and tx["transactionStatus"] != status:
                            continue
                        if name == "ORDER_ID" and not any(
                            r["relatedIdentifierName"] == "ORDER_ID" and r["relatedIdentifierValue"] == value
                            for r in tx["relatedIdentifiers"]
                        ):
                            continue
                        found.append(tx)
            state = {"op": "listTransactions", "items": found, "pos": 0, "size": self.transactions_page_size}
        pos, size = state["pos"], state["size"]
        payload: dict[str, Any] = {"transactions": state["items"][pos : pos + size]}
        if pos + size < len(state["items"]):
            payload["nextToken"] = self._new_page_token({**state, "pos": pos + size})
        return self._json(200, {"payload": payload})
