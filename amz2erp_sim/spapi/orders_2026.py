"""Orders API 2026-01-01: searchOrders and getOrder, with ``includedData`` deciding what appears."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from amz2erp_sim.datagen import (
    PENDING_STATUSES,
    STATUS_2026,
    SimOrder,
    SimOrderItem,
    marketplace,
)
from amz2erp_sim.spapi.core import Response, SimState, _bad, _Ctx, _money26, iso


class Orders2026Api(SimState):
    """Orders API 2026-01-01: the operations of this API area, on the shared ``SimState``."""

    def order_2026_json(self, o: SimOrder, included: set[str]) -> dict[str, Any]:
        """The order as searchOrders/getOrder serve it, after ``order_2026_hook`` (if set) edited it."""
        doc = self._render_order_2026(o, included)
        if self.order_2026_hook is not None:
            self.order_2026_hook(o, doc)
        return doc

    def _render_order_2026(self, o: SimOrder, included: set[str]) -> dict[str, Any]:
        mp = marketplace(o.marketplace_id)
        cur = o.currency
        d: dict[str, Any] = {
            "orderId": o.amazon_order_id,
            "createdTime": iso(o.purchase_date),
            "lastUpdatedTime": iso(o.last_update_date),
            "programs": (["PRIME"] if o.is_prime else [])
            + (["AMAZON_BUSINESS"] if o.is_business else [])
            + (["PREORDER"] if o.order_type == "Preorder" else []),
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": o.marketplace_id,
                "marketplaceName": mp.name,
            },
        }
        if o.seller_order_id:
            d["orderAliases"] = [{"aliasId": o.seller_order_id, "aliasType": "SELLER_ORDER_ID"}]
        if o.is_replacement and o.replaced_order_id:
            d["associatedOrders"] = [
                {"orderId": o.replaced_order_id, "associationType": "REPLACEMENT_ORIGINAL_ID"}
            ]
        if "BUYER" in included and self.pii_allowed:
            buyer: dict[str, Any] = {"buyerName": o.buyer_name, "buyerEmail": o.buyer_email}
            if o.purchase_order_number:
                buyer["buyerPurchaseOrderNumber"] = o.purchase_order_number
            d["buyer"] = buyer
        if "RECIPIENT" in included and self.pii_allowed and o.status not in PENDING_STATUSES:
            a = o.shipping_address
            addr: dict[str, Any] = {"name": a.name, "addressLine1": a.line1, "city": a.city, "postalCode": a.postal_code,
                                    "countryCode": a.country_code, "addressType": a.address_type.upper()}  # fmt: skip
            if a.line2:
                addr["addressLine2"] = a.line2
            if a.state:
                addr["stateOrRegion"] = a.state
            if o.fulfillment_channel == "MFN":
                addr["phone"] = a.phone
            d["recipient"] = {"deliveryAddress": addr}
        if "PROCEEDS" in included and o.prices_visible:
            totals = {
                "ITEM": Decimal(0),
                "SHIPPING": Decimal(0),
                "GIFT_WRAP": Decimal(0),
                "TAX": Decimal(0),
                "DISCOUNT": Decimal(0),
            }
            for it in o.items:
                for k, v in self._item_breakdown(it).items():
                    totals[k] += v
            d["proceeds"] = {
                "grandTotal": _money26(o.order_total, cur),
                "breakdowns": [
                    {"type": k, "subtotal": _money26(v, cur)}
                    for k, v in totals.items()
                    if v != 0 or k == "ITEM"
                ],
            }
        if "FULFILLMENT" in included:
            d["fulfillment"] = {
                "fulfillmentStatus": STATUS_2026[o.status],
                "fulfilledBy": "AMAZON" if o.fulfillment_channel == "AFN" else "MERCHANT",
                "fulfillmentServiceLevel": "STANDARD",
                "shipByWindow": {"earliestDateTime": iso(o.earliest_ship_date), "latestDateTime": iso(o.latest_ship_date)},
                "deliverByWindow": {"earliestDateTime": iso(o.earliest_delivery_date),
                                    "latestDateTime": iso(o.latest_delivery_date)},
            }  # fmt: skip
        d["orderItems"] = [self._item_2026(o, it, included) for it in o.items]
        return d

    @staticmethod
    def _item_breakdown(it: SimOrderItem) -> dict[str, Decimal]:
        return {
            "ITEM": it.item_price,
            "SHIPPING": it.shipping_price,
            "GIFT_WRAP": it.gift_wrap_price,
            "TAX": it.tax_total,
            "DISCOUNT": -(it.promotion_discount + it.shipping_discount),
        }

    def _item_2026(self, o: SimOrder, it: SimOrderItem, included: set[str]) -> dict[str, Any]:
        cur = o.currency
        product: dict[str, Any] = {
            "asin": it.asin,
            "title": it.title,
            "sellerSku": it.sku,
            "condition": {"conditionType": it.condition.upper(), "conditionSubtype": it.condition.upper()},
        }
        if o.prices_visible:
            product["price"] = {"unitPrice": _money26(it.unit_price if it.item_price else it.item_price, cur)}
        d: dict[str, Any] = {
            "orderItemId": it.order_item_id,
            "quantityOrdered": it.quantity_ordered,
            "product": product,
        }
        if "PROCEEDS" in included and o.prices_visible:
            b = self._item_breakdown(it)
            breakdowns: list[dict[str, Any]] = []
            for k, v in b.items():
                if v == 0 and k != "ITEM":
                    continue
                entry: dict[str, Any] = {"type": k, "subtotal": _money26(v, cur)}
                if k == "TAX":
                    entry["detailedBreakdowns"] = [
                        {"subtype": s, "value": _money26(x, cur)}
                        for s, x in (("ITEM", it.item_tax), ("SHIPPING", it.shipping_tax), ("GIFT_WRAP", it.gift_wrap_tax),
                                     ("DISCOUNT", -(it.promotion_discount_tax + it.shipping_discount_tax)))
                        if x != 0
                    ]  # fmt: skip
                elif k == "DISCOUNT":
                    entry["detailedBreakdowns"] = [
                        {"subtype": s, "value": _money26(-x, cur)}
                        for s, x in (("ITEM", it.promotion_discount), ("SHIPPING", it.shipping_discount))
                        if x != 0
                    ]
                breakdowns.append(entry)
            d["proceeds"] = {"proceedsTotal": _money26(it.line_total, cur), "breakdowns": breakdowns}
        if "PROMOTION" in included and it.promotion_ids and o.prices_visible:
            d["promotion"] = {"breakdowns": [{"promotionId": p} for p in it.promotion_ids]}
        if "FULFILLMENT" in included:
            f: dict[str, Any] = {
                "quantityFulfilled": it.quantity_shipped,
                "quantityUnfulfilled": max(0, it.quantity_ordered - it.quantity_shipped),
            }
            if it.is_gift and o.prices_visible:
                f["packing"] = {"giftOption": {"giftMessage": it.gift_message, "giftWrapLevel": "CLASSIC"}}
            d["fulfillment"] = f
        if "TAX" in included and it.tax_collection_model:
            d["tax"] = {
                "taxCollections": [
                    {"model": "MARKETPLACE_FACILITATOR", "responsibleParty": "AMAZON_SERVICES_INC"}
                ]
            }
        if "CANCELLATION" in included and o.status == "Canceled":
            d["cancellation"] = {
                "cancellationExecution": {"cancelledBy": "BUYER", "cancelReason": "Buyer canceled"}
            }
        return d

    def _included(self, ctx: _Ctx) -> set[str]:
        return {v.upper() for v in ctx.list("includedData")}

    def _op_search_orders(self, ctx: _Ctx) -> Response:
        token = ctx.first("paginationToken")
        if token:
            state = self._page_tokens.get(token)
            if state is None or state.get("op") != "searchOrders":
                raise _bad("Invalid paginationToken.")
        else:
            family, after, before, echo_key = self._time_window(
                ctx, ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
            )
            mids = ctx.list("marketplaceIds")
            statuses = ctx.list("fulfillmentStatuses")
            fby = ctx.list("fulfilledBy")
            size = self._int_param(ctx, "maxResultsPerPage", 100, 1, 100)
            now = self._now()
            sel = []
            for o in self._orders.values():
                if mids and o.marketplace_id not in mids:
                    continue
                if not self._visible(o, now):
                    continue
                ts = o.purchase_date if family == "created" else o.last_update_date
                if not (after <= ts <= before):
                    continue
                if statuses and STATUS_2026[o.status] not in statuses:
                    continue
                if fby and ("AMAZON" if o.fulfillment_channel == "AFN" else "MERCHANT") not in fby:
                    continue
                sel.append(o)
            sel.sort(key=lambda o: (o.last_update_date, o.amazon_order_id))
            state = {"op": "searchOrders", "ids": [o.amazon_order_id for o in sel], "pos": 0, "size": size,
                     "echo": (echo_key, iso(before)), "included": sorted(self._included(ctx))}  # fmt: skip
        pos, size = state["pos"], state["size"]
        included = set(state["included"])
        body: dict[str, Any] = {
            "orders": [
                self.order_2026_json(self._orders[i], included)
                for i in state["ids"][pos : pos + size]
                if i in self._orders
            ]
        }
        if pos + size < len(state["ids"]):
            body["pagination"] = {"nextToken": self._new_page_token({**state, "pos": pos + size})}
        body[state["echo"][0]] = state["echo"][1]
        return self._json(200, body)

    def _op_get_order_2026(self, ctx: _Ctx) -> Response:
        o = self._get_order_or_404(ctx.params["orderId"])
        return self._json(200, {"order": self.order_2026_json(o, self._included(ctx))})
