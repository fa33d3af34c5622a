"""Pure payload parsers: Orders v0, Orders 2026-01-01 and Catalog Items JSON → the records of `amz2erp.models`.

No I/O and no client state: a payload that does not parse becomes an `UnparsableOrder` naming the field, so one
bad order never stops a run. Unit-tested on captured payloads.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from amz2erp.amazon import reports as rp
from amz2erp.models import Address, CatalogItem, Money, Order, OrderItem, OrderStatus, UnparsableOrder

INCLUDED_2026 = ("PROCEEDS", "FULFILLMENT", "PROMOTION", "TAX")
INCLUDED_2026_PII = ("BUYER", "RECIPIENT")

_STATUS_2026 = {
    "PENDING_AVAILABILITY": OrderStatus.PENDING_AVAILABILITY,
    "PENDING": OrderStatus.PENDING,
    "UNSHIPPED": OrderStatus.UNSHIPPED,
    "PARTIALLY_SHIPPED": OrderStatus.PARTIALLY_SHIPPED,
    "SHIPPED": OrderStatus.SHIPPED,
    "INVOICE_UNCONFIRMED": OrderStatus.INVOICE_UNCONFIRMED,
    "CANCELLED": OrderStatus.CANCELED,
    "CANCELED": OrderStatus.CANCELED,
    "UNFULFILLABLE": OrderStatus.UNFULFILLABLE,
}


def _date(value: Any) -> datetime | None:
    return rp.parse_datetime(value) if isinstance(value, str) else None


def _required_date(value: Any, name: str) -> datetime:
    dt = _date(value)
    if dt is None:
        raise ValueError(f"{name} missing or unreadable")
    return dt


def _money_v0(value: Any) -> Money | None:
    if not isinstance(value, dict):
        return None
    amount = value.get("Amount")
    currency = value.get("CurrencyCode")
    if amount in (None, "") or not currency:
        return None
    return Money(amount=Decimal(str(amount)), currency=str(currency))


def _money_2026(value: Any, *, absolute: bool = False) -> Money | None:
    if not isinstance(value, dict):
        return None
    amount = value.get("amount")
    currency = value.get("currencyCode")
    if amount in (None, "") or not currency:
        return None
    d = Decimal(str(amount))
    return Money(amount=abs(d) if absolute else d, currency=str(currency))


def _str(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _address_v0(value: Any) -> Address | None:
    if not isinstance(value, dict):
        return None
    addr = Address(
        name=_str(value.get("Name")),
        company=_str(value.get("CompanyName")),
        line1=_str(value.get("AddressLine1")),
        line2=_str(value.get("AddressLine2")),
        line3=_str(value.get("AddressLine3")),
        city=_str(value.get("City")),
        county=_str(value.get("County")) or _str(value.get("District")),
        state=_str(value.get("StateOrRegion")),
        postal_code=_str(value.get("PostalCode")),
        country_code=_str(value.get("CountryCode")),
        phone=_str(value.get("Phone")),
        address_type=_str(value.get("AddressType")),
    )
    return addr if any(v is not None for v in addr.model_dump().values()) else None


def _address_2026(value: Any) -> Address | None:
    if not isinstance(value, dict):
        return None
    atype = _str(value.get("addressType"))
    addr = Address(
        name=_str(value.get("name")),
        company=_str(value.get("companyName")),
        line1=_str(value.get("addressLine1")),
        line2=_str(value.get("addressLine2")),
        line3=_str(value.get("addressLine3")),
        city=_str(value.get("city")),
        county=_str(value.get("districtOrCounty")),
        state=_str(value.get("stateOrRegion")),
        postal_code=_str(value.get("postalCode")),
        country_code=_str(value.get("countryCode")),
        phone=_str(value.get("phone")),
        address_type=atype.replace("_", " ").title().replace(" ", "") if atype else None,
    )
    return addr if any(v is not None for v in addr.model_dump().values()) else None


def _unparsable(order_id: Any, marketplace_id: Any, source: str, exc: Exception) -> UnparsableOrder:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = f"{where}: {err.get('msg')}" if where else str(err.get("msg"))
    else:
        msg = f"{type(exc).__name__}: {exc}"
    return UnparsableOrder(
        amazon_order_id=str(order_id or "?"),
        marketplace_id=str(marketplace_id) if marketplace_id else None,
        error=f"{source}: {msg}"[:500],
    )


def parse_order_v0(raw: Any, raw_items: list[dict[str, Any]]) -> Order | UnparsableOrder:
    """An Orders v0 ``Order`` plus its ``OrderItem`` list → `Order` (or `UnparsableOrder`)."""
    if not isinstance(raw, dict):
        return _unparsable(None, None, "orders-v0", ValueError("order is not an object"))
    try:
        buyer = raw.get("BuyerInfo") or {}
        items = tuple(_item_v0(it) for it in raw_items)
        return Order(
            amazon_order_id=str(raw["AmazonOrderId"]),
            marketplace_id=str(raw["MarketplaceId"]),
            purchase_date=_required_date(raw.get("PurchaseDate"), "PurchaseDate"),
            last_update_date=_required_date(raw.get("LastUpdateDate"), "LastUpdateDate"),
            status=OrderStatus(raw["OrderStatus"]),
            fulfillment_channel=raw.get("FulfillmentChannel") or "MFN",
            order_total=_money_v0(raw.get("OrderTotal")),
            sales_channel=_str(raw.get("SalesChannel")),
            order_type=_str(raw.get("OrderType")),
            is_business_order=rp.parse_bool(raw.get("IsBusinessOrder")),
            is_replacement_order=rp.parse_bool(raw.get("IsReplacementOrder")),
            replaced_order_id=_str(raw.get("ReplacedOrderId")),
            seller_order_id=_str(raw.get("SellerOrderId")),
            earliest_ship_date=_date(raw.get("EarliestShipDate")),
            latest_ship_date=_date(raw.get("LatestShipDate")),
            earliest_delivery_date=_date(raw.get("EarliestDeliveryDate")),
            latest_delivery_date=_date(raw.get("LatestDeliveryDate")),
            buyer_name=_str(buyer.get("BuyerName")),
            buyer_email=_str(buyer.get("BuyerEmail")),
            purchase_order_number=_str(buyer.get("PurchaseOrderNumber")),
            shipping_address=_address_v0(raw.get("ShippingAddress")),
            items=items,
            source="orders-v0",
            # gift wrap price and tax are in the item's BuyerInfo, which only an RDT with buyerInfo unlocks
            unknown=frozenset({"gift_wrap"}) if any(rp.parse_bool(it.get("IsGift")) and "BuyerInfo" not in it
                                                    for it in raw_items) else frozenset(),
        )
    except (KeyError, ValueError, TypeError, AttributeError, ArithmeticError, ValidationError) as exc:
        return _unparsable(raw.get("AmazonOrderId"), raw.get("MarketplaceId"), "orders-v0", exc)


def _item_v0(it: dict[str, Any]) -> OrderItem:
    buyer = it.get("BuyerInfo") or {}
    tax = it.get("TaxCollection") or {}
    return OrderItem(
        order_item_id=str(it["OrderItemId"]),
        asin=_str(it.get("ASIN")),
        sku=_str(it.get("SellerSKU")),
        title=_str(it.get("Title")),
        quantity_ordered=int(it["QuantityOrdered"]),
        quantity_shipped=int(it.get("QuantityShipped") or 0),
        item_price=_money_v0(it.get("ItemPrice")),
        item_tax=rp.charge(_money_v0(it.get("ItemTax"))),
        shipping_price=rp.charge(_money_v0(it.get("ShippingPrice"))),
        shipping_tax=rp.charge(_money_v0(it.get("ShippingTax"))),
        shipping_discount=rp.charge(_money_v0(it.get("ShippingDiscount"))),
        shipping_discount_tax=rp.charge(_money_v0(it.get("ShippingDiscountTax"))),
        promotion_discount=rp.charge(_money_v0(it.get("PromotionDiscount"))),
        promotion_discount_tax=rp.charge(_money_v0(it.get("PromotionDiscountTax"))),
        gift_wrap_price=rp.charge(_money_v0(buyer.get("GiftWrapPrice"))),
        gift_wrap_tax=rp.charge(_money_v0(buyer.get("GiftWrapTax"))),
        tax_collection_model=_str(tax.get("Model")),
        promotion_ids=tuple(str(p) for p in it.get("PromotionIds") or ()),
        is_gift=rp.parse_bool(it.get("IsGift")),
    )


def _breakdown(entries: Any) -> dict[str, dict[str, Any]]:
    """Proceeds breakdowns by type: {"ITEM": {...}, "TAX": {...}, ...}."""
    out: dict[str, dict[str, Any]] = {}
    for e in entries or ():
        if isinstance(e, dict) and e.get("type"):
            out[str(e["type"]).upper()] = e
    return out


def _detailed(entry: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in (entry or {}).get("detailedBreakdowns") or ():
        if isinstance(d, dict) and d.get("subtype"):
            out[str(d["subtype"]).upper()] = d.get("value") or {}
    return out


def _tax_model_2026(value: Any) -> str | None:
    v = _str(value)
    if v is None:
        return None
    return "".join(p.capitalize() for p in v.lower().split("_")) if "_" in v or v.isupper() else v


def _item_2026(it: dict[str, Any]) -> OrderItem:
    product = it.get("product") or {}
    qty = int(it["quantityOrdered"])
    unit = _money_2026((product.get("price") or {}).get("unitPrice"))
    proceeds = _breakdown((it.get("proceeds") or {}).get("breakdowns"))
    item_total = _money_2026((proceeds.get("ITEM") or {}).get("subtotal"))
    if item_total is None and unit is not None:
        item_total = Money(amount=unit.amount * qty, currency=unit.currency)  # LINE total, as v0 gives it
    tax = _detailed(proceeds.get("TAX"))
    discount = _detailed(proceeds.get("DISCOUNT"))
    fulfillment = it.get("fulfillment") or {}
    packing = fulfillment.get("packing") or {}
    collections = (it.get("tax") or {}).get("taxCollections") or []
    promo = [str(b["promotionId"]) for b in (it.get("promotion") or {}).get("breakdowns") or ()
             if isinstance(b, dict) and b.get("promotionId")]
    return OrderItem(
        order_item_id=str(it["orderItemId"]),
        asin=_str(product.get("asin")),
        sku=_str(product.get("sellerSku")),
        title=_str(product.get("title")),
        quantity_ordered=qty,
        quantity_shipped=int(fulfillment.get("quantityFulfilled") or 0),
        item_price=item_total,
        unit_price=unit,
        item_tax=rp.charge(_money_2026(tax.get("ITEM"))),
        shipping_price=rp.charge(_money_2026((proceeds.get("SHIPPING") or {}).get("subtotal"))),
        shipping_tax=rp.charge(_money_2026(tax.get("SHIPPING"))),
        gift_wrap_price=rp.charge(_money_2026((proceeds.get("GIFT_WRAP") or {}).get("subtotal"))),
        gift_wrap_tax=rp.charge(_money_2026(tax.get("GIFT_WRAP"))),
        promotion_discount=rp.charge(_money_2026(discount.get("ITEM"), absolute=True)),
        shipping_discount=rp.charge(_money_2026(discount.get("SHIPPING"), absolute=True)),
        promotion_discount_tax=rp.charge(_money_2026(tax.get("DISCOUNT"), absolute=True)),
        tax_collection_model=_tax_model_2026(collections[0].get("model")) if collections else None,
        promotion_ids=tuple(promo),
        is_gift=bool(packing.get("giftOption")),
    )


def parse_order_2026(raw: Any) -> Order | UnparsableOrder:
    """An Orders 2026-01-01 ``Order`` (items inline) → `Order` in v0 terms (or `UnparsableOrder`)."""
    if not isinstance(raw, dict):
        return _unparsable(None, None, "orders-2026-01-01", ValueError("order is not an object"))
    channel = raw.get("salesChannel") or {}
    try:
        fulfillment = raw.get("fulfillment") or {}
        status_raw = str(fulfillment.get("fulfillmentStatus") or "")
        if status_raw not in _STATUS_2026:
            raise ValueError(f"unknown fulfillmentStatus {status_raw!r}")
        by = str(fulfillment.get("fulfilledBy") or "MERCHANT").upper()
        programs = {str(p).upper() for p in raw.get("programs") or ()}
        buyer = raw.get("buyer") or {}
        recipient = raw.get("recipient") or {}
        replaced = next((a.get("orderId") for a in raw.get("associatedOrders") or ()
                         if isinstance(a, dict) and a.get("associationType") == "REPLACEMENT_ORIGINAL_ID"), None)
        seller_order_id = next((a.get("aliasId") for a in raw.get("orderAliases") or ()
                                if isinstance(a, dict) and a.get("aliasType") == "SELLER_ORDER_ID"), None)
        ship = fulfillment.get("shipByWindow") or {}
        deliver = fulfillment.get("deliverByWindow") or {}
        items = tuple(_item_2026(it) for it in raw.get("orderItems") or ())
        total = _money_2026((raw.get("proceeds") or {}).get("grandTotal"))
        if total is not None and total.amount == 0 and _STATUS_2026[status_raw] is OrderStatus.CANCELED:
            total = None  # v0 omits OrderTotal on cancelled orders; keep both sources alike
        return Order(
            amazon_order_id=str(raw["orderId"]),
            marketplace_id=str(channel["marketplaceId"]),
            purchase_date=_required_date(raw.get("createdTime"), "createdTime"),
            last_update_date=_required_date(raw.get("lastUpdatedTime"), "lastUpdatedTime"),
            status=_STATUS_2026[status_raw],
            fulfillment_channel="AFN" if by == "AMAZON" else "MFN",
            order_total=total,
            sales_channel=_str(channel.get("marketplaceName")),
            order_type="Preorder" if "PREORDER" in programs else "StandardOrder",
            is_business_order="AMAZON_BUSINESS" in programs,
            is_replacement_order=replaced is not None,
            replaced_order_id=_str(replaced),
            seller_order_id=_str(seller_order_id),
            earliest_ship_date=_date(ship.get("earliestDateTime")),
            latest_ship_date=_date(ship.get("latestDateTime")),
            earliest_delivery_date=_date(deliver.get("earliestDateTime")),
            latest_delivery_date=_date(deliver.get("latestDateTime")),
            buyer_name=_str(buyer.get("buyerName")),
            buyer_email=_str(buyer.get("buyerEmail")),
            purchase_order_number=_str(buyer.get("buyerPurchaseOrderNumber")),
            shipping_address=_address_2026(recipient.get("deliveryAddress")),
            items=items,
            source="orders-2026-01-01",
        )
    except (KeyError, ValueError, TypeError, AttributeError, ArithmeticError, ValidationError) as exc:
        return _unparsable(raw.get("orderId"), channel.get("marketplaceId") if isinstance(channel, dict) else None,
                           "orders-2026-01-01", exc)


def _for_marketplace(entries: Any, marketplace_id: str) -> dict[str, Any] | None:
    """The entry of a per-marketplace list for this marketplace (else the first)."""
    rows = [e for e in entries or () if isinstance(e, dict)]
    for e in rows:
        if e.get("marketplaceId") == marketplace_id:
            return e
    return rows[0] if rows else None


def parse_catalog_item(raw: Any, marketplace_id: str) -> CatalogItem | None:
    """A Catalog Items 2022-04-01 ``Item`` → `CatalogItem` (None when it has no ASIN)."""
    if not isinstance(raw, dict) or not raw.get("asin"):
        return None
    summary = _for_marketplace(raw.get("summaries"), marketplace_id) or {}
    images = (_for_marketplace(raw.get("images"), marketplace_id) or {}).get("images") or []
    main = [i for i in images if isinstance(i, dict) and i.get("variant") == "MAIN" and i.get("link")]
    main.sort(key=lambda i: -int(i.get("width") or 0) * int(i.get("height") or 0))
    image = main[0]["link"] if main else next((i.get("link") for i in images if isinstance(i, dict)), None)
    classification = None
    browse = summary.get("browseClassification")
    if isinstance(browse, dict):
        classification = _str(browse.get("displayName"))
    if classification is None:
        cls = (_for_marketplace(raw.get("classifications"), marketplace_id) or {}).get("classifications") or []
        classification = next((_str(c.get("displayName")) for c in cls if isinstance(c, dict)), None)
    ptype = (_for_marketplace(raw.get("productTypes"), marketplace_id) or {}).get("productType")
    return CatalogItem(
        asin=str(raw["asin"]),
        marketplace_id=marketplace_id,
        title=_str(summary.get("itemName")),
        brand=_str(summary.get("brand")),
        manufacturer=_str(summary.get("manufacturer")),
        image_url=_str(image),
        classification=classification,
        product_type=_str(ptype),
    )


__all__ = [
    "INCLUDED_2026",
    "INCLUDED_2026_PII",
    "parse_catalog_item",
    "parse_order_2026",
    "parse_order_v0",
]

