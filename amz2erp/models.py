"""Normalised Amazon records: what the Amazon access layer (amz2erp/amazon/) yields and mapping.py consumes.

Orders v0, Orders 2026-01-01 and the flat-file orders report are all parsed into these models, so the
mapping and the exactly-once path never know which API a record came from. Money is Decimal, datetimes are
timezone-aware.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class OrderStatus(str, Enum):
    """v0 spelling; 2026-01-01 and report statuses are translated to these."""

    PENDING_AVAILABILITY = "PendingAvailability"
    PENDING = "Pending"
    UNSHIPPED = "Unshipped"
    PARTIALLY_SHIPPED = "PartiallyShipped"
    SHIPPED = "Shipped"
    INVOICE_UNCONFIRMED = "InvoiceUnconfirmed"
    CANCELED = "Canceled"
    UNFULFILLABLE = "Unfulfillable"

    @property
    def is_pending(self) -> bool:
        return self in (OrderStatus.PENDING, OrderStatus.PENDING_AVAILABILITY)

    @property
    def is_canceled(self) -> bool:
        return self is OrderStatus.CANCELED


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value


class Money(_Model):
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)


class Address(_Model):
    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    line3: str | None = None
    city: str | None = None
    county: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country_code: str | None = None  # ISO 3166-1 alpha-2
    phone: str | None = None
    address_type: str | None = None  # Residential | Commercial


class OrderItem(_Model):
    order_item_id: str
    asin: str | None = None
    sku: str | None = None
    title: str | None = None
    quantity_ordered: int
    quantity_shipped: int = 0
    item_price: Money | None = None  # LINE TOTAL (unit price × quantity), not the unit price
    unit_price: Money | None = None  # only Orders 2026-01-01 gives it
    item_tax: Money | None = None
    shipping_price: Money | None = None
    shipping_tax: Money | None = None
    shipping_discount: Money | None = None
    shipping_discount_tax: Money | None = None
    promotion_discount: Money | None = None
    promotion_discount_tax: Money | None = None
    gift_wrap_price: Money | None = None
    gift_wrap_tax: Money | None = None
    tax_collection_model: str | None = None  # "MarketplaceFacilitator" when Amazon collects/remits the tax
    promotion_ids: tuple[str, ...] = ()
    is_gift: bool = False


class Order(_Model):
    amazon_order_id: str
    marketplace_id: str
    purchase_date: datetime
    last_update_date: datetime
    status: OrderStatus
    fulfillment_channel: Literal["AFN", "MFN"] = "MFN"
    order_total: Money | None = None
    sales_channel: str | None = None
    order_type: str | None = None
    is_business_order: bool = False
    is_replacement_order: bool = False
    replaced_order_id: str | None = None
    seller_order_id: str | None = None
    earliest_ship_date: datetime | None = None
    latest_ship_date: datetime | None = None
    earliest_delivery_date: datetime | None = None
    latest_delivery_date: datetime | None = None
    buyer_name: str | None = None  # only with PII access
    buyer_email: str | None = None
    purchase_order_number: str | None = None
    shipping_address: Address | None = None
    items: tuple[OrderItem, ...] = ()
    source: Literal["orders-v0", "orders-2026-01-01", "report"] = "orders-v0"
    #: facts this read does not carry, so they are unknown rather than absent (mapping's module doc):
    #: "order_item_ids" (the report's item ids are grouping keys), "gift_wrap" (Orders v0 without buyerInfo)
    unknown: frozenset[str] = frozenset()

    _check_dates = field_validator(
        "purchase_date",
        "last_update_date",
        "earliest_ship_date",
        "latest_ship_date",
        "earliest_delivery_date",
        "latest_delivery_date",
    )(_aware)

    @property
    def currency(self) -> str | None:
        if self.order_total is not None:
            return self.order_total.currency
        for item in self.items:
            if item.item_price is not None:
                return item.item_price.currency
        return None

    def content_hash(self) -> str:
        """Stable hash of everything that matters for ERPNext; ignores where the record came from."""
        data = self.model_dump(mode="json", exclude={"source", "last_update_date", "unknown"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class Listing(_Model):
    """One row of GET_MERCHANT_LISTINGS_ALL_DATA for one marketplace."""

    sku: str
    marketplace_id: str
    asin: str | None = None
    title: str | None = None
    description: str | None = None
    price: Decimal | None = None
    currency: str | None = None  # from the marketplace: the report itself carries none
    quantity: int | None = None
    open_date: datetime | None = None
    image_url: str | None = None
    status: str | None = None  # Active | Inactive | Incomplete …
    fulfillment_channel: str | None = None  # DEFAULT (MFN) or AMAZON_* (FBA)
    listing_id: str | None = None
    product_id: str | None = None
    product_id_type: str | None = None

    _check_dates = field_validator("open_date")(_aware)

    @property
    def is_active(self) -> bool:
        return (self.status or "Active").lower() == "active"


class CatalogItem(_Model):
    """What Catalog Items 2022-04-01 adds to a listing."""

    asin: str
    marketplace_id: str | None = None
    title: str | None = None
    brand: str | None = None
    manufacturer: str | None = None
    image_url: str | None = None
    classification: str | None = None  # display name of the browse classification
    product_type: str | None = None


class UnparsableOrder(_Model):
    """An order Amazon returned that does not fit our model: yielded instead of raising, so one bad payload
    is recorded as a failed order (and pins the cursor) without stopping the window."""

    amazon_order_id: str
    marketplace_id: str | None = None
    error: str
