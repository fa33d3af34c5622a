"""Orders API v0: getOrders, getOrder, getOrderItems, getOrderAddress, getOrderBuyerInfo,
getOrderItemsBuyerInfo, with the PII rules an RDT unlocks."""

from __future__ import annotations

from typing import Any

from amz2erp_sim.datagen import (
    V0_STATUSES,
    SimOrder,
    SimOrderItem,
    marketplace,
)
from amz2erp_sim.spapi.core import Response, SimState, _bad, _Ctx, _money, iso


class OrdersV0Api(SimState):
    """Orders API v0: the operations of this API area, on the shared ``SimState``."""

    def order_v0_json(self, o: SimOrder, pii: set[str]) -> dict[str, Any]:
        mp = marketplace(o.marketplace_id)
        d: dict[str, Any] = {
            "AmazonOrderId": o.amazon_order_id,
            "PurchaseDate": iso(o.purchase_date),
            "LastUpdateDate": iso(o.last_update_date),
            "OrderStatus": o.status,
            "FulfillmentChannel": o.fulfillment_channel,
            "SalesChannel": mp.name,
            "ShipServiceLevel": o.ship_service_level,
            "NumberOfItemsShipped": o.number_of_items_shipped,
            "NumberOfItemsUnshipped": o.number_of_items_unshipped,
            "PaymentMethod": "Other",
            "PaymentMethodDetails": ["Standard"],
            "MarketplaceId": o.marketplace_id,
            "ShipmentServiceLevelCategory": "Standard",
            "OrderType": o.order_type,
            "EarliestShipDate": iso(o.earliest_ship_date),
            "LatestShipDate": iso(o.latest_ship_date),
            "EarliestDeliveryDate": iso(o.earliest_delivery_date),
            "LatestDeliveryDate": iso(o.latest_delivery_date),
            "IsBusinessOrder": o.is_business,
            "IsPrime": o.is_prime,
            "IsPremiumOrder": False,
            "IsGlobalExpressEnabled": False,
            "IsReplacementOrder": o.is_replacement,
            "IsSoldByAB": False,
            "IsISPU": False,
            "IsAccessPointOrder": False,
            "HasRegulatedItems": False,
        }
        if o.seller_order_id:
            d["SellerOrderId"] = o.seller_order_id
        if o.is_replacement and o.replaced_order_id:
            d["ReplacedOrderId"] = o.replaced_order_id
        if o.prices_visible and o.status != "Canceled":
            d["OrderTotal"] = _money(o.order_total, o.currency)
        if o.status in ("Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"):
            d["ShippingAddress"] = self._address_v0(o, "shippingAddress" in pii)
        buyer: dict[str, Any] = {}
        if "buyerInfo" in pii:
            buyer = {"BuyerEmail": o.buyer_email, "BuyerName": o.buyer_name}
            if o.purchase_order_number:
                buyer["PurchaseOrderNumber"] = o.purchase_order_number
        d["BuyerInfo"] = buyer
        return d

    def _address_v0(self, o: SimOrder, full: bool) -> dict[str, Any]:
        a = o.shipping_address
        out: dict[str, Any] = {}
        if full:
            out["Name"] = a.name
            out["AddressLine1"] = a.line1
            if a.line2:
                out["AddressLine2"] = a.line2
        out["City"] = a.city
        if a.state:
            out["StateOrRegion"] = a.state
        out["PostalCode"] = a.postal_code
        out["CountryCode"] = a.country_code
        if full:
            if o.fulfillment_channel == "MFN":
                out["Phone"] = a.phone
            out["AddressType"] = a.address_type
        return out

    def item_v0_json(self, o: SimOrder, it: SimOrderItem, pii: set[str]) -> dict[str, Any]:
        cur = o.currency
        d: dict[str, Any] = {
            "ASIN": it.asin,
            "SellerSKU": it.sku,
            "OrderItemId": it.order_item_id,
            "Title": it.title,
            "QuantityOrdered": it.quantity_ordered,
            "QuantityShipped": it.quantity_shipped,
            "ProductInfo": {"NumberOfItems": "1"},
            "ConditionId": it.condition,
            "ConditionSubtypeId": it.condition,
            "IsTransparency": False,
            "SerialNumberRequired": False,
        }
        if o.prices_visible:
            d.update(
                {
                    "ItemPrice": _money(it.item_price, cur),
                    "ItemTax": _money(it.item_tax, cur),
                    "ShippingPrice": _money(it.shipping_price, cur),
                    "ShippingTax": _money(it.shipping_tax, cur),
                    "ShippingDiscount": _money(it.shipping_discount, cur),
                    "ShippingDiscountTax": _money(it.shipping_discount_tax, cur),
                    "PromotionDiscount": _money(it.promotion_discount, cur),
                    "PromotionDiscountTax": _money(it.promotion_discount_tax, cur),
                    "IsGift": "true" if it.is_gift else "false",
                }
            )
            if it.promotion_ids:
                d["PromotionIds"] = list(it.promotion_ids)
            if it.tax_collection_model:
                d["TaxCollection"] = {
                    "Model": it.tax_collection_model,
                    "ResponsibleParty": "Amazon Services, Inc.",
                }
            if "buyerInfo" in pii and it.is_gift:
                d["BuyerInfo"] = self._item_buyer_info(o, it)
        return d

    def _item_buyer_info(self, o: SimOrder, it: SimOrderItem) -> dict[str, Any]:
        return {
            "GiftWrapPrice": _money(it.gift_wrap_price, o.currency),
            "GiftWrapTax": _money(it.gift_wrap_tax, o.currency),
            "GiftMessageText": it.gift_message,
            "GiftWrapLevel": "Classic",
        }

    def _op_get_orders(self, ctx: _Ctx) -> Response:
        token = ctx.first("NextToken")
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "getOrders":
                raise _bad("Invalid NextToken.")
        else:
            mids = ctx.list("MarketplaceIds")
            if not mids:
                raise _bad("MarketplaceIds is required.")
            if len(mids) > 50:
                raise _bad("MarketplaceIds accepts at most 50 values.")
            family, after, before, echo_key = self._time_window(
                ctx, ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
            )
            statuses = ctx.list("OrderStatuses")
            bad = [s for s in statuses if s not in V0_STATUSES]
            if bad:
                self._violation(ctx, [f"OrderStatuses: invalid value(s) {bad}"])
            channels = ctx.list("FulfillmentChannels")
            if [c for c in channels if c not in ("AFN", "MFN")]:
                self._violation(ctx, [f"FulfillmentChannels: invalid value(s) {channels}"])
            ids = ctx.list("AmazonOrderIds")
            if len(ids) > 50:
                raise _bad("AmazonOrderIds accepts at most 50 values.")
            size = self._int_param(ctx, "MaxResultsPerPage", 100, 1, 100)
            now = self._now()
            sel = []
            for o in self._orders.values():
                if o.marketplace_id not in mids or not self._visible(o, now):
                    continue
                ts = o.purchase_date if family == "created" else o.last_update_date
                if not (after <= ts <= before):
                    continue
                if statuses and o.status not in statuses:
                    continue
                if channels and o.fulfillment_channel not in channels:
                    continue
                if ids and o.amazon_order_id not in ids:
                    continue
                sel.append(o)
            sel.sort(key=lambda o: (o.last_update_date, o.amazon_order_id))
            state = {"op": "getOrders", "ids": [o.amazon_order_id for o in sel], "pos": 0, "size": size,
                     "echo": (echo_key, iso(before))}  # fmt: skip
        pos, size = state["pos"], state["size"]
        page_ids = state["ids"][pos : pos + size]
        pii = self._pii(ctx)
        payload: dict[str, Any] = {
            "Orders": [self.order_v0_json(self._orders[i], pii) for i in page_ids if i in self._orders]
        }
        if pos + size < len(state["ids"]):
            payload["NextToken"] = self._new_page_token({**state, "pos": pos + size})
        payload[state["echo"][0]] = state["echo"][1]
        return self._json(200, {"payload": payload})

    def _op_get_order(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        return self._json(200, {"payload": self.order_v0_json(o, self._pii(ctx))})

    def _op_get_order_items(self, ctx: _Ctx) -> Response:
        oid = ctx.params["orderId"]
        o = self._get_order_or_404(oid)
        token = ctx.first("NextToken")
        pos = 0
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "getOrderItems" or state.get("order") != oid:
                raise _bad("Invalid NextToken.")
            pos = state["pos"]
        size = self.order_items_page_size
        pii = self._pii(ctx)
        payload: dict[str, Any] = {
            "AmazonOrderId": oid,
            "OrderItems": [self.item_v0_json(o, it, pii) for it in o.items[pos : pos + size]],
        }
        if pos + size < len(o.items):
            payload["NextToken"] = self._new_page_token(
                {"op": "getOrderItems", "order": oid, "pos": pos + size}
            )
        return self._json(200, {"payload": payload})

    def _op_get_order_items_buyer_info(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        pii = self._pii(ctx)
        rows = []
        for it in o.items:
            row: dict[str, Any] = {"OrderItemId": it.order_item_id}
            if "buyerInfo" in pii and it.is_gift and o.prices_visible:
                row.update(self._item_buyer_info(o, it))
            rows.append(row)
        return self._json(200, {"payload": {"AmazonOrderId": o.amazon_order_id, "OrderItems": rows}})

    def _op_get_order_address(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        payload: dict[str, Any] = {"AmazonOrderId": o.amazon_order_id}
        if o.status in ("Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"):
            payload["ShippingAddress"] = self._address_v0(o, "shippingAddress" in self._pii(ctx))
        return self._json(200, {"payload": payload})

    def _op_get_order_buyer_info(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        payload: dict[str, Any] = {"AmazonOrderId": o.amazon_order_id}
        if "buyerInfo" in self._pii(ctx):
            payload.update({"BuyerEmail": o.buyer_email, "BuyerName": o.buyer_name})
            if o.purchase_order_number:
                payload["PurchaseOrderNumber"] = o.purchase_order_number
        return self._json(200, {"payload": payload})
