"""Pure functions from Amazon records (``amz2erp.models``) to ERPNext v15 documents (plain dicts).

No HTTP, no clock, no globals beyond constant tables: the sync engine builds one :class:`MappingContext` per
run and passes it in. Every returned document is JSON-serialisable and ready for ``POST /api/resource/...``
or ``frappe.client.insert_many`` (each carries its ``doctype``).

Money and rounding (the part that must be exact)
------------------------------------------------
* Amounts are computed with ``Decimal`` and written as JSON **floats** that are already quantised to the
  currency precision (2). The recordings only show floats (045, 047, 050), and a float of a two-decimal
  value round-trips exactly (``repr(float(Decimal("3.33"))) == "3.33"``), so ERPNext stores what we computed.
  Quantities are ints.
* ERPNext rounds ``rate`` to 2 decimals and then computes ``amount = rate × qty`` (recording 045: 12.345 × 2 →
  24.68). Amazon's ``ItemPrice`` is the LINE total, so the unit rate is ``ItemPrice / qty``; when that does
  not divide evenly, the Amazon line becomes two ERPNext lines (``q-r`` units at the lower rate, ``r`` units
  one step higher) whose amounts add up to ``ItemPrice`` exactly. The step is the currency's minor unit
  (1 for JPY, so yen lines keep whole-yen rates), never finer than the site precision.
* Charges become ``Actual`` rows in ``taxes``; ERPNext keeps their ``tax_amount`` as given (047/048), and
  ``disable_rounded_total = 1`` keeps ``grand_total`` unrounded, so ``grand_total == Σ amounts + Σ taxes``.
  :func:`sales_order_total` re-computes that sum the way ERPNext does (round-half-even, the recorded site's
  "Banker's rounding"); :func:`expected_grand_total` gives Amazon's side.

One order, one Sales Order, whatever the read path
--------------------------------------------------
An order can be read by Orders v0, Orders 2026-01-01 or the flat-file orders report (with or without the
``tax-collection-model``/``tax-collection-responsible-party`` columns), first by one and later by another.
The paths differ in what they carry:

=================================  ===========  ===========  ===========================
fact                               v0           2026-01-01   orders report
=================================  ===========  ===========  ===========================
who collects the tax (MF model)    yes          yes          only with the extra columns
discount taxes as separate figures yes          yes          no (netted into the taxes)
order-item ids                     yes          yes          no
buyer name, street (PII roles)     with roles   with roles   no
ship/delivery promise dates        yes          yes          no
OrderTotal                         yes          yes          no
InvoiceUnconfirmed vs Shipped      yes          no           yes
gift wrap price and tax            with roles   yes          yes
titles outside the file charset    exact        exact        replaced by "?"
=================================  ===========  ===========  ===========================

The rule: **a fact a path lacks is unknown, not different.**

* Content — company, currency, conversion rate, dates of purchase, warehouse, status, every item line's
  item_code/qty/rate/warehouse and every taxes row (one per account, its description and amount), hence the
  total — is built only from facts every path has, so it is identical from every path (:func:`sales_order_content`).
  Who collects the tax is made such a fact: where the report has no tax-collection columns the parser takes
  the marketplace's default model (``Marketplace.tax_collection_model``: Amazon.com orders are all
  marketplace-facilitator orders; an order that breaks its marketplace's rule, first read from such a report,
  is booked by the rule and a later API read reports the difference as drift, because the booking is wrong).
  How one tax splits between item, shipping, gift wrap and the discount
  taxes is not such a fact (Orders 2026-01-01 lumps the discount taxes, the report nets them into its item
  and shipping tax), so the seller's tax is one row, its total, on the ``item_tax`` account.
  InvoiceUnconfirmed is written as Shipped (:func:`canonical_status`).
* Annotations (:data:`ANNOTATIONS`) — customer and shipping address (buyer PII), ``delivery_date`` (promise
  dates), ``amazon_order_item_id`` (written only when known), item_name/description texts — are written when
  the Sales Order is created from what that read knows, and never compared or rewritten afterwards.
* Drift (:func:`sales_order_drift`) compares content only (not the conversion rate), and the seller's tax as one sum over the tax
  accounts (item, shipping, gift wrap: Sales Orders created before the tax became one row split it). Where
  the fresh read lacks a fact the content depends on (``Order.unknown``: Orders v0 shows gift wrap only to
  the buyerInfo role), the keys that depend on it are not compared (:func:`unknown_drift_keys`). A difference
  that only the read path makes is therefore never drift.

Marketplace-facilitator tax and the settlement: with ``marketplace_facilitator_tax = "exclude"`` the Sales
Order carries neither the tax nor a row for it, so its total is what Amazon owes the seller for the order;
the settlement's ``ItemPrice/Tax`` row and its equal and opposite ``ItemWithheldTax`` row then net to zero
among themselves. With ``"book"`` the tax is a row on the marketplace-facilitator account, which the
``ItemWithheldTax`` row clears. Either way the Sales Order is never touched again for it.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from amz2erp.amazon import marketplaces as mp
from amz2erp.config import ItemsSettings, OrdersSettings, Settings
from amz2erp.countries import country_name
from amz2erp.errors import RecordError
from amz2erp.models import CatalogItem, Listing, Money, Order, OrderItem, OrderStatus

__all__ = [
    "ADDRESS_LINE1_WITHOUT_PII",
    "ANNOTATIONS",
    "CREATE_ONLY_ITEM_FIELDS",
    "NAME_MAX",
    "TAX_ACCOUNT_KINDS",
    "MappingContext",
    "MappingError",
    "OrderSkipped",
    "address_key",
    "canonical_status",
    "erpnext_safe_code",
    "expected_grand_total",
    "item_code_for",
    "item_doc_changes",
    "item_group_doc",
    "item_group_for",
    "listing_to_item",
    "listing_to_item_price",
    "marketplace_date",
    "marketplace_facilitator_tax",
    "order_currency",
    "order_customer_name",
    "order_item_ids_known",
    "order_line_to_item",
    "order_skip_reason",
    "order_to_address",
    "order_to_customer",
    "order_to_sales_order",
    "sales_order_content",
    "sales_order_drift",
    "sales_order_total",
    "submitted_order_status",
    "unknown_drift_keys",
]

#: ERPNext document names and Data fields are VARCHAR(140).
NAME_MAX = 140
#: ``address_line1`` is mandatory in ERPNext (recording 039). Without Amazon's restricted roles the shipping
#: address has only city/state/postcode/country (research §5), so this honest placeholder goes there.
ADDRESS_LINE1_WITHOUT_PII = "Not provided by Amazon"
#: Item fields that are written when the Item is created and never changed by an update: ERPNext refuses to
#: change ``stock_uom``/``is_stock_item`` once stock transactions exist, and ``item_group`` belongs to the
#: user after creation (they regroup items; Amazon's classification churns).
CREATE_ONLY_ITEM_FIELDS = frozenset({"doctype", "item_code", "stock_uom", "is_stock_item", "item_group"})
MARKETPLACE_FACILITATOR = "MarketplaceFacilitator"

# Currencies without minor units (ISO 4217 exponent 0); 3-digit currencies are capped by the site's
# precision of 2 anyway, so only these differ from the default of 2.
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "VND", "ISK", "UGX", "PYG", "XOF", "XAF"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ANGLE = re.compile(r"[<>]")  # frappe's validate_name refuses names containing < or >
_WS = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
# frappe.utils.validate_phone_number: what a Data field with options "Phone" (Address.phone) accepts.
_PHONE = re.compile(r"[0-9 +_\-,.*#()]{1,20}")


class MappingError(RecordError):
    """An Amazon record that cannot be turned into a correct ERPNext document (one record, reported)."""


class OrderSkipped(RecordError):
    """The order is deliberately not mapped (pending without ``import_pending``, nothing left to order).

    Not a failure: the engine should test :func:`order_skip_reason` first and record a skip. It subclasses
    ``RecordError`` only so that an engine which forgets that still isolates the order instead of crashing.
    """

    def __init__(self, amazon_order_id: str, reason: str) -> None:
        super().__init__(f"order {amazon_order_id} skipped: {reason}")
        self.amazon_order_id = amazon_order_id
        self.reason = reason


# --------------------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class MappingContext:
    """Everything the mapping needs from settings and ERPNext, resolved once per run by the engine."""

    company: str
    company_currency: str
    company_abbr: str
    warehouse: str
    fba_warehouse: str | None
    price_list: str
    customer_group: str
    territory: str
    customer_type: str
    accounts: Mapping[str, str]  # AccountsSettings field name → full account name "<name> - <abbr>"
    items: ItemsSettings
    orders: OrdersSettings
    stock_uom: str = "Nos"
    item_group: str = "Products"
    currency_precision: int = 2  # System Settings → currency precision (2 on the recorded site)

    @classmethod
    def from_settings(
        cls, settings: Settings, company_currency: str, company_abbr: str, *, currency_precision: int = 2
    ) -> MappingContext:
        d = settings.defaults
        accounts = {kind: f"{name} - {company_abbr}" for kind, name in settings.accounts.model_dump().items()}
        return cls(
            company=d.company,
            company_currency=company_currency.upper(),
            company_abbr=company_abbr,
            warehouse=d.warehouse,
            fba_warehouse=d.fba_warehouse,
            price_list=d.price_list,
            customer_group=d.customer_group,
            territory=d.territory,
            customer_type=d.customer_type,
            accounts=accounts,
            items=settings.items,
            orders=settings.orders,
            stock_uom=d.stock_uom,
            item_group=d.item_group,
            currency_precision=currency_precision,
        )

    def account(self, kind: str) -> str:
        """Full account name for a charge kind (an ``AccountsSettings`` field name)."""
        return self.accounts[kind]

    def tax_accounts(self) -> frozenset[str]:
        """The seller's tax accounts (:data:`TAX_ACCOUNT_KINDS`), which drift compares as one sum."""
        return frozenset(self.accounts[kind] for kind in TAX_ACCOUNT_KINDS if kind in self.accounts)

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.currency_precision)


# --------------------------------------------------------------------------------------------- helpers


def _clean_text(value: str | None) -> str:
    """Control characters and runs of blanks → one space, stripped."""
    if not value:
        return ""
    return _WS.sub(" ", _CONTROL.sub(" ", value)).strip()


def _clean_name(value: str | None, limit: int = NAME_MAX) -> str:
    """A value usable as an ERPNext document name: no ``<``/``>``, no control chars, ≤ ``limit`` chars."""
    return _clean_text(_ANGLE.sub(" ", value or ""))[:limit].rstrip()


def _truncate(text: str, limit: int = NAME_MAX) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when something was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _html(text: str) -> str:
    """Plain text for an ERPNext Text Editor field: HTML-escaped (``<`` and ``&`` would otherwise be read as
    markup by frappe's sanitiser), line breaks as ``<br>``."""
    lines = [html.escape(line.strip(), quote=False) for line in text.strip().splitlines()]
    return "<br>".join(lines)


def _html_to_text(value: Any) -> str:
    """What a Text Editor value says, ignoring markup, entities and whitespace (for change detection)."""
    text = _TAG.sub(" ", str(value or ""))
    return _WS.sub(" ", html.unescape(text)).strip()


def _dec(value: Any, what: str = "value") -> Decimal:
    """A number from a document (float, int, str, Decimal; None → 0) as an exact Decimal."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{what}: {value!r} is not a number") from None


def _round(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_EVEN)


def _exact(value: Decimal, step: Decimal, what: str) -> Decimal:
    if value != value.quantize(step):
        raise MappingError(f"{what} {value} has more decimals than ERPNext keeps ({step})")
    return value.quantize(step)


def _num(value: Decimal) -> float:
    """JSON number for ERPNext: a float of an already-quantised Decimal (exact, see the module doc)."""
    return float(value)


def marketplace_date(moment: datetime, marketplace_id: str) -> date:
    """The calendar date of ``moment`` in the marketplace's local time (UTC for unknown marketplaces): the
    date an order "happened" as Seller Central shows it."""
    market = mp.BY_ID.get(marketplace_id)
    return moment.astimezone(ZoneInfo(market.time_zone if market else "UTC")).date()


# --------------------------------------------------------------------------------------------- items


def erpnext_safe_code(raw: str) -> str:
    """``raw`` as an ERPNext document name, unchanged when it already is one.

    ERPNext (frappe v15) refuses names with ``<`` or ``>``, strips surrounding blanks, and stores at most
    140 characters. Spaces and ``/`` are kept: spaces are recorded (``Buyer - …`` customers) and frappe v15
    routes ``/api/resource/<doctype>/<path:name>``, so a percent-encoded ``/`` reaches the document. When
    ``raw`` has to change, the cleaned text is followed by ``~`` and 8 hex digits of SHA-256 of the original,
    so two SKUs that clean to the same text (``"A<1>"`` and ``"A 1"``, or ``"X "`` and ``"X"``) stay distinct,
    and the result is deterministic.
    """
    cleaned = _clean_name(raw, limit=10_000)
    if cleaned == raw and len(raw) <= NAME_MAX:
        return raw
    suffix = "~" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return cleaned[: NAME_MAX - len(suffix)].rstrip() + suffix


def item_code_for(sku: str | None, asin: str | None, items: ItemsSettings) -> str | None:
    """The ERPNext item_code for an Amazon product.

    ``[items.map]`` (seller SKU → existing item_code) wins and is returned verbatim. Otherwise the SKU or the
    ASIN per ``items.code``; when that one is missing the other is used (a listing without ASIN still gets a
    code). ``None`` when neither exists. The code passes through :func:`erpnext_safe_code`.
    """
    if sku is not None:
        for key in (sku, sku.strip()):
            if key in items.map:
                return items.map[key]
    first, second = (sku, asin) if items.code == "sku" else (asin, sku)
    for candidate in (first, second):
        if candidate is not None and candidate.strip():
            return erpnext_safe_code(candidate)
    return None


def item_group_for(catalog: CatalogItem | None, ctx: MappingContext) -> str:
    """``ctx.item_group``, or the Amazon classification's own group (a child of it) when
    ``items.classification_groups`` is on and the catalog gives one."""
    if ctx.items.classification_groups and catalog is not None:
        name = _clean_name(catalog.classification)
        if name:
            return name
    return ctx.item_group


def item_group_doc(catalog: CatalogItem | None, ctx: MappingContext) -> dict[str, Any] | None:
    """The Item Group the engine must ensure before writing the item, or None when it is ``ctx.item_group``."""
    group = item_group_for(catalog, ctx)
    if group == ctx.item_group:
        return None
    return {
        "doctype": "Item Group",
        "item_group_name": group,
        "parent_item_group": ctx.item_group,
        "is_group": 0,
    }


def _item_description(title: str, extra: str | None) -> str:
    parts = [_html(title)]
    if extra and _clean_text(extra) and _clean_text(extra) != _clean_text(title):
        parts.append(_html(extra))
    return "".join(f"<p>{p}</p>" for p in parts)


def _item_doc(
    code: str,
    title: str,
    ctx: MappingContext,
    *,
    description: str | None = None,
    asin: str | None = None,
    image: str | None = None,
    brand: str | None = None,
    item_group: str | None = None,
) -> dict[str, Any]:
    name = _clean_text(title) or code
    doc: dict[str, Any] = {
        "doctype": "Item",
        "item_code": code,
        "item_name": _truncate(name),
        "description": _item_description(name, description),
        "item_group": item_group or ctx.item_group,
        "stock_uom": ctx.stock_uom,
        "is_stock_item": 1 if ctx.items.is_stock_item else 0,
    }
    if asin:
        doc["amazon_asin"] = asin
    if image:
        doc["image"] = image
    if brand and _clean_text(brand):
        doc["brand"] = _clean_text(brand)[:NAME_MAX]
    return doc


def listing_to_item(listing: Listing, catalog: CatalogItem | None, ctx: MappingContext) -> dict[str, Any]:
    """The ERPNext Item for a listing, enriched by the catalog when given.

    ``item_name`` is the title cut to 140 characters; ``description`` carries the full title and the
    listing description, HTML-escaped. ``brand``/``image``/``amazon_asin`` appear only when known, so an
    update never blanks them. With ``items.inactive = "disable"`` the doc carries ``disabled`` (1 for an
    inactive listing, 0 for an active one); with ``"leave"`` it does not.
    """
    asin = listing.asin or (catalog.asin if catalog else None)
    code = item_code_for(listing.sku, asin, ctx.items)
    if code is None:  # pragma: no cover - Listing.sku is a required str
        raise MappingError(f"listing {listing.sku!r}: no SKU or ASIN to name the item")
    title = listing.title or (catalog.title if catalog else None) or listing.sku
    doc = _item_doc(
        code,
        title,
        ctx,
        description=listing.description,
        asin=asin,
        image=(catalog.image_url if catalog else None) or listing.image_url,
        brand=catalog.brand if catalog else None,
        item_group=item_group_for(catalog, ctx),
    )
    if ctx.items.inactive == "disable":
        doc["disabled"] = 0 if listing.is_active else 1
    return doc


def listing_to_item_price(listing: Listing, item_code: str, price_list: str) -> dict[str, Any] | None:
    """The Item Price for the listing's price in ``price_list``; None when the listing has no price.

    No ``currency``: ERPNext takes it from the price list, so the engine must pass a price list in the
    listing's currency (``listing.currency``) — a DE listing's EUR price in a USD list would be wrong.
    """
    if listing.price is None:
        return None
    return {
        "doctype": "Item Price",
        "item_code": item_code,
        "price_list": price_list,
        "price_list_rate": _num(listing.price),
    }


def order_line_to_item(item: OrderItem, item_code: str, ctx: MappingContext) -> dict[str, Any]:
    """An Item for an order line whose SKU ERPNext does not know (``items.unknown_sku = "create"``)."""
    title = item.title or item.sku or item.asin or item_code
    return _item_doc(item_code, title, ctx, asin=item.asin)


def _same(field: str, old: Any, new: Any) -> bool:
    if field == "description":
        return _html_to_text(old) == _html_to_text(new)
    if isinstance(new, bool | int | float | Decimal) and not isinstance(old, str | list | dict):
        return _dec(old) == _dec(new)
    if isinstance(new, str) or new is None:
        return (old or "") == (new or "")
    return bool(old == new)


def item_doc_changes(existing: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``wanted`` that differ from ``existing`` (a stored Item), for a sparse PUT.

    Numbers compare by value (ERPNext returns 1.0 for 1), ``None`` equals ``""``, descriptions compare by their
    text (frappe's sanitiser may re-serialise markup). Fields in :data:`CREATE_ONLY_ITEM_FIELDS` are never
    returned. Fields absent from ``wanted`` are left alone.
    """
    return {
        field: value
        for field, value in wanted.items()
        if field not in CREATE_ONLY_ITEM_FIELDS and not _same(field, existing.get(field), value)
    }


# --------------------------------------------------------------------------------------------- customers


def order_customer_name(order: Order, ctx: MappingContext) -> str:
    """The Customer for an order.

    ``orders.customer = "marketplace"``: one customer per marketplace, ``"Amazon <code>"`` (``"Amazon US"``).
    ``"buyer"``: the buyer's name when Amazon shared it (PII roles), cleaned for ERPNext (no ``<``/``>``,
    ≤ 140 chars), else ``"Buyer - <AmazonOrderId>"``. ERPNext renames a second customer with the same
    name to ``"<name> - 1"`` (recording 029), so the engine looks customers up by ``customer_name``.
    """
    if ctx.orders.customer == "marketplace":
        market = mp.BY_ID.get(order.marketplace_id)
        return f"Amazon {market.code if market else order.marketplace_id}"
    name = _clean_name(order.buyer_name)
    return name or f"Buyer - {order.amazon_order_id}"


def order_to_customer(order: Order, ctx: MappingContext) -> dict[str, Any]:
    """The Customer document. ``customer_type`` is "Company" for the per-marketplace customer and for
    Amazon Business orders, else ``ctx.customer_type``."""
    business = ctx.orders.customer == "marketplace" or order.is_business_order
    return {
        "doctype": "Customer",
        "customer_name": order_customer_name(order, ctx),
        "customer_type": "Company" if business else ctx.customer_type,
        "customer_group": ctx.customer_group,
        "territory": ctx.territory,
    }


def order_to_address(order: Order, customer: str, ctx: MappingContext) -> dict[str, Any] | None:
    """The shipping Address, linked to ``customer``; None when the order carries no address at all.

    * ``country``: ERPNext Country name from ``CountryCode`` (``countries.py``), else the marketplace's
      country; an unknown code is a :class:`MappingError` (ERPNext would refuse the link, recording 040).
    * ``address_line1``: the street when Amazon shares it, else :data:`ADDRESS_LINE1_WITHOUT_PII`;
      ``city`` (also mandatory in ERPNext) falls back to the same text.
    * ``address_title``: the recipient's name when shared, else the customer; cut to 120 characters because
      ERPNext names the address ``"<title>-Shipping[-n]"`` within 140.
    * ``phone`` only when frappe's phone validation would accept it (digits and ``+-.,()*#_``, ≤ 20
      characters); otherwise it is left out rather than failing the address.
    """
    a = order.shipping_address
    if a is None:
        return None
    values = (
        a.name,
        a.company,
        a.line1,
        a.line2,
        a.line3,
        a.city,
        a.county,
        a.state,
        a.postal_code,
        a.country_code,
    )
    if not any(_clean_text(v) for v in values):
        return None
    if _clean_text(a.country_code):
        country = country_name(a.country_code)
        if country is None:
            raise MappingError(f"order {order.amazon_order_id}: unknown country code {a.country_code!r}")
    else:
        market = mp.BY_ID.get(order.marketplace_id)
        if market is None:
            raise MappingError(f"order {order.amazon_order_id}: address without country, unknown marketplace")
        country = market.country
    street = [_clean_text(v) for v in (a.line1, a.line2, a.line3) if _clean_text(v)]
    line1 = street[0] if street else ADDRESS_LINE1_WITHOUT_PII
    doc: dict[str, Any] = {
        "doctype": "Address",
        "address_title": _clean_name(a.name, 120) or _clean_name(customer, 120),
        "address_type": "Shipping",
        "address_line1": line1[:NAME_MAX],
        "city": (_clean_text(a.city) or ADDRESS_LINE1_WITHOUT_PII)[:NAME_MAX],
        "country": country,
        "links": [{"link_doctype": "Customer", "link_name": customer}],
    }
    if len(street) > 1:
        doc["address_line2"] = ", ".join(street[1:])[:NAME_MAX]
    optional = {"state": a.state, "county": a.county, "pincode": a.postal_code}
    for field, value in optional.items():
        if _clean_text(value):
            doc[field] = _clean_text(value)[:NAME_MAX]
    phone = _clean_text(a.phone)
    if phone and _PHONE.fullmatch(phone):  # frappe refuses the whole Address for an invalid phone
        doc["phone"] = phone
    return doc


def address_key(address_doc: Mapping[str, Any]) -> str:
    """A natural key for an Address (ours or one read back from ERPNext), so re-runs find it.

    Built from the linked customers, type, street lines, city, state, postcode and country (case- and
    blank-insensitive, as MariaDB compares them) and hashed (SHA-256, 32 hex digits) so no PII lands in logs
    or state. Title, phone and county are not part of it: Amazon drops the phone later, and a stored Address
    read through a list call (as the engine does) carries only these fields.
    """
    links = sorted(
        _clean_text(str(link.get("link_name"))).casefold()
        for link in address_doc.get("links") or ()
        if isinstance(link, Mapping) and link.get("link_doctype", "Customer") == "Customer"
    )
    fields = ("address_type", "address_line1", "address_line2", "city", "state", "pincode", "country")
    parts = ["|".join(links)] + [_clean_text(str(address_doc.get(f) or "")).casefold() for f in fields]
    return "addr-" + hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class _Charge:
    field: str  # OrderItem attribute
    account: str  # AccountsSettings field
    description: str
    negative: bool  # discounts: booked as −|amount| whatever sign the source used
    is_tax: bool  # part of the marketplace-facilitator tax when the item is MF


# The charges, in the order of their rows (one row per account). Every tax kind goes to one row on the
# ``item_tax`` account: Amazon's read paths split one tax between item, shipping and discounts differently
# (Orders 2026-01-01 gives the promotion and shipping discount taxes as one figure, the orders report nets them
# into its item and shipping tax columns), so only the order's total tax is the same fact from every path.
_CHARGES: tuple[_Charge, ...] = (
    _Charge("item_tax", "item_tax", "Tax", False, True),
    _Charge("shipping_price", "shipping", "Shipping", False, False),
    _Charge("shipping_tax", "item_tax", "Shipping tax", False, True),
    _Charge("gift_wrap_price", "gift_wrap", "Gift wrap", False, False),
    _Charge("gift_wrap_tax", "item_tax", "Gift wrap tax", False, True),
    _Charge("promotion_discount", "promotion_discount", "Promotion discount", True, False),
    _Charge("promotion_discount_tax", "item_tax", "Promotion discount tax", True, True),
    _Charge("shipping_discount", "shipping_discount", "Shipping discount", True, False),
    _Charge("shipping_discount_tax", "item_tax", "Shipping discount tax", True, True),
)
_MF_DESCRIPTION = "Marketplace facilitator tax"
#: Accounts (``AccountsSettings`` fields) whose rows drift compares as one sum: Sales Orders created before
#: the tax became one row carry it split over these accounts, split differently by the report and the API.
TAX_ACCOUNT_KINDS = ("item_tax", "shipping_tax", "gift_wrap_tax")

#: Fields written from what the first read knows and never compared (see the module doc): header fields and
#: item-line fields.
ANNOTATIONS: dict[str, frozenset[str]] = {
    "header": frozenset({"customer", "title", "shipping_address_name", "delivery_date"}),
    "items": frozenset({"item_name", "description", "amazon_order_item_id"}),
}


def sales_order_content(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without its :data:`ANNOTATIONS`: what every read path of one order maps to identically."""
    out = {k: v for k, v in doc.items() if k not in ANNOTATIONS["header"]}
    out["items"] = [{k: v for k, v in row.items() if k not in ANNOTATIONS["items"]} for row in doc.get("items") or ()]
    return out


def _money_fields(item: OrderItem) -> Iterable[Money]:
    for field in ("item_price", "unit_price", *(c.field for c in _CHARGES)):
        value = getattr(item, field)
        if value is not None:
            yield value


def order_currency(order: Order) -> str:
    """The order's currency: OrderTotal's, else the first amount on a line, else the marketplace's.

    A :class:`MappingError` when amounts disagree (one order is always in one currency on Amazon).
    """
    found = {order.order_total.currency.upper()} if order.order_total else set()
    for item in order.items:
        found.update(m.currency.upper() for m in _money_fields(item))
    if len(found) > 1:
        raise MappingError(f"order {order.amazon_order_id}: amounts in several currencies {sorted(found)}")
    if found:
        return found.pop()
    market = mp.BY_ID.get(order.marketplace_id)
    if market is None:
        raise MappingError(f"order {order.amazon_order_id}: no amounts and unknown marketplace, no currency")
    return market.currency


def _amount(item: OrderItem, field: str) -> Decimal:
    money: Money | None = getattr(item, field)
    return Decimal(0) if money is None else money.amount


def _is_mf(item: OrderItem) -> bool:
    return (item.tax_collection_model or "").strip().lower() == MARKETPLACE_FACILITATOR.lower()


def _charge_amount(item: OrderItem, charge: _Charge) -> Decimal:
    value = _amount(item, charge.field)
    return -abs(value) if charge.negative else value


def marketplace_facilitator_tax(order: Order) -> Decimal:
    """The tax Amazon collects and remits itself: every tax kind (item, shipping, gift wrap, less the
    discount taxes) of the lines whose ``tax_collection_model`` is MarketplaceFacilitator."""
    return sum(
        (_charge_amount(i, c) for i in order.items if _is_mf(i) for c in _CHARGES if c.is_tax), Decimal(0)
    )


def order_skip_reason(order: Order, ctx: MappingContext) -> str | None:
    """Why the order is not mapped to a Sales Order, or None when it is.

    * Pending/PendingAvailability orders (Amazon gives no prices yet) unless ``orders.import_pending``.
    * Orders with no line of quantity > 0 (fully cancelled orders: Amazon zeroes QuantityOrdered), since
      ERPNext cannot hold a Sales Order without items.
    """
    if order.status.is_pending and not ctx.orders.import_pending:
        return f"{order.status.value}: Amazon gives no prices until payment is authorised (orders.import_pending)"
    if not any(item.quantity_ordered > 0 for item in order.items):
        return f"{order.status.value}: no line with a quantity above 0"
    return None


def expected_grand_total(order: Order, ctx: MappingContext) -> Decimal | None:
    """What the Sales Order's grand_total must be according to Amazon: OrderTotal, less the
    marketplace-facilitator tax when ``orders.marketplace_facilitator_tax = "exclude"``. None without
    OrderTotal (pending and cancelled orders)."""
    if order.order_total is None:
        return None
    total = order.order_total.amount
    if ctx.orders.marketplace_facilitator_tax == "exclude":
        total -= marketplace_facilitator_tax(order)
    return _round(total, ctx.step)


def sales_order_total(doc: Mapping[str, Any], *, precision: int = 2) -> Decimal:
    """grand_total as ERPNext will compute it for ``doc`` (ours or a stored one): each line's rate rounded to
    ``precision`` (half-even), times qty, rounded; plus each taxes row's ``tax_amount``, rounded; no rounded
    total. Additional discounts are not modelled (the mapping never sets them)."""
    step = Decimal(1).scaleb(-precision)
    net = sum(
        (
            _round(_round(_dec(row.get("rate"), "rate"), step) * _dec(row.get("qty"), "qty"), step)
            for row in doc.get("items") or ()
        ),
        Decimal(0),
    )
    taxes = sum(
        (_round(_dec(row.get("tax_amount"), "tax_amount"), step) for row in doc.get("taxes") or ()),
        Decimal(0),
    )
    return _round(net + taxes, step)


def _split_step(currency: str, ctx: MappingContext) -> Decimal:
    digits = min(0 if currency in _ZERO_DECIMAL_CURRENCIES else 2, ctx.currency_precision)
    return Decimal(1).scaleb(-digits)


def _line_parts(total: Decimal, qty: int, step: Decimal) -> list[tuple[int, Decimal]]:
    """(qty, rate) pairs — one, or two when ``total / qty`` is not a whole number of steps — whose
    ``Σ qty × rate == total`` exactly and whose rates differ by one step."""
    units = int(total / step)
    base, rest = divmod(units, qty)
    if rest == 0:
        return [(qty, base * step)]
    return [(qty - rest, base * step), (rest, (base + 1) * step)]


def _line_rates(
    order: Order, item: OrderItem, currency: str, ctx: MappingContext
) -> list[tuple[int, Decimal]]:
    qty = item.quantity_ordered
    where = f"order {order.amazon_order_id} line {item.order_item_id}"
    if item.item_price is not None:
        total = _exact(item.item_price.amount, ctx.step, f"{where}: ItemPrice")
        step = _split_step(currency, ctx)
        if total != total.quantize(step):  # e.g. a fractional yen: fall back to the site precision
            step = ctx.step
        return _line_parts(total, qty, step)
    if item.unit_price is not None:
        return [(qty, _exact(item.unit_price.amount, ctx.step, f"{where}: unit price"))]
    if order.status.is_pending:
        return [(qty, Decimal(0))]
    raise MappingError(f"{where}: no ItemPrice although the order is {order.status.value}")


def _line_description(title: str, line_key: str, part: str | None) -> str:
    # The SKU (numbered when one order repeats it) and the part of a split line make every line's description
    # unique, so ERPNext's duplicate-item check (item_code + description + warehouse when Selling Settings
    # allow_multiple_items = 0) never trips on a split or repeated SKU. Not the order-item id: the orders
    # report has none, and the line must read the same whatever the read path.
    tail = f"Amazon {html.escape(line_key, quote=False)}"
    if part:
        tail += f", {part}"
    return f"{_html(title)}<br>{tail}" if title else tail


def _line_keys(order: Order) -> dict[str, str]:
    """order_item_id → "SKU <sku>" (or "ASIN <asin>"), numbered "#2", "#3" … when the order repeats it."""
    seen: dict[str, int] = {}
    keys: dict[str, str] = {}
    for item in order.items:
        base = f"SKU {item.sku}" if item.sku else f"ASIN {item.asin}" if item.asin else "line"
        seen[base] = seen.get(base, 0) + 1
        keys[item.order_item_id] = base if seen[base] == 1 else f"{base} #{seen[base]}"
    return keys


def order_item_ids_known(order: Order) -> bool:
    """Whether the order's ``order_item_id`` values are Amazon's (the APIs) or only grouping keys (the report)."""
    return "order_item_ids" not in order.unknown


def unknown_drift_keys(order: Order, ctx: MappingContext) -> frozenset[str]:
    """Drift keys a Sales Order mapped from ``order`` cannot speak for, because the read lacked a fact they
    depend on (``Order.unknown``): without the gift wrap (Orders v0 without buyerInfo) its row, the tax it
    carries and the total are unknown."""
    if "gift_wrap" not in order.unknown:
        return frozenset()
    keys = {f"taxes[{ctx.account('gift_wrap')}]", "tax", "grand_total"}
    if ctx.orders.marketplace_facilitator_tax == "book":
        keys.add(f"taxes[{ctx.account('marketplace_facilitator_tax')}]")
    return frozenset(keys)


def canonical_status(status: OrderStatus) -> str:
    """The ``amazon_order_status`` written to ERPNext: v0 and the report say InvoiceUnconfirmed where Orders
    2026-01-01 says Shipped for the same order, so both are written as Shipped."""
    return OrderStatus.SHIPPED.value if status is OrderStatus.INVOICE_UNCONFIRMED else status.value


#: The statuses ERPNext v15 gives a Sales Order that was just submitted (nothing delivered or billed yet).
SO_TO_DELIVER_AND_BILL = "To Deliver and Bill"
SO_TO_BILL = "To Bill"


def submitted_order_status(doc: Mapping[str, Any]) -> str:
    """The status ERPNext computes for ``doc`` once it is submitted, before anything is delivered or billed, so
    that an insert with ``docstatus = 1`` can carry it: ERPNext's ``set_status`` skips new documents and keeps
    whatever status the payload brings ("Draft" without one), while a later ``update_status`` costs as much
    server time as half the insert (recordings 090-093, 096/097).

    ERPNext's rule (its status map for Sales Order) with 0 % delivered and billed: "To Bill" when the order
    skips the delivery note, else "To Deliver and Bill" — also for an order of non-stock items only, whose
    ``skip_delivery_note`` ERPNext leaves at 0 (recordings 098-102). An amendment is the exception: ERPNext
    resets a new document with ``amended_from`` to "Draft" whatever it carries, so the engine recomputes those.
    """
    return SO_TO_BILL if _truthy(doc.get("skip_delivery_note")) else SO_TO_DELIVER_AND_BILL


def _truthy(value: Any) -> bool:
    """A Check field's value as Frappe reads it (0/1, "0"/"1", bools, None)."""
    try:
        return int(value or 0) != 0
    except (TypeError, ValueError):
        return bool(value)


def _taxes(order: Order, ctx: MappingContext) -> list[dict[str, Any]]:
    """One row per account, in :data:`_CHARGES` order, named after the account's first charge kind: the
    seller's tax (every kind, less the discount taxes) is one row, the charges one row each."""
    step = ctx.step
    totals: dict[str, Decimal] = {}
    descriptions: dict[str, str] = {}
    for charge in _CHARGES:
        descriptions.setdefault(charge.account, charge.description)
        for item in order.items:
            if charge.is_tax and _is_mf(item):
                continue
            totals[charge.account] = totals.get(charge.account, Decimal(0)) + _charge_amount(item, charge)
    rows: list[dict[str, Any]] = []
    for kind, total in totals.items():
        total = _exact(total, step, f"order {order.amazon_order_id}: {descriptions[kind]}")
        if total:
            rows.append(_tax_row(ctx.account(kind), descriptions[kind], total))
    if ctx.orders.marketplace_facilitator_tax == "book":
        mf = _exact(marketplace_facilitator_tax(order), step, f"order {order.amazon_order_id}: MF tax")
        if mf:
            rows.append(_tax_row(ctx.account("marketplace_facilitator_tax"), _MF_DESCRIPTION, mf))
    return rows


def _tax_row(account: str, description: str, amount: Decimal) -> dict[str, Any]:
    return {
        "charge_type": "Actual",
        "account_head": account,
        "description": description,
        "tax_amount": _num(amount),
    }


def order_to_sales_order(
    order: Order,
    ctx: MappingContext,
    *,
    customer: str,
    conversion_rate: Decimal | None,
    item_codes: dict[str, str],
    shipping_address_name: str | None = None,
) -> dict[str, Any]:
    """The Sales Order for an Amazon order (see the module doc for the money rules).

    Raises :class:`OrderSkipped` when :func:`order_skip_reason` gives a reason, :class:`MappingError` when the
    order cannot be mapped correctly (missing exchange rate, unresolved item code, impossible amounts).

    * ``transaction_date``: PurchaseDate as a date in the marketplace's time zone (:func:`marketplace_date`).
    * ``delivery_date``: LatestDeliveryDate, else LatestShipDate, else the purchase date (same zone), never
      before ``transaction_date`` (FBA removal orders carry 1995 dates; recording 051).
    * ``conversion_rate``: 1 for the company currency (the argument is ignored); otherwise required.
    * ``title`` = ``customer`` (ERPNext otherwise stores the literal "{customer_name}");
      ``shipping_address_name`` is set when the engine passes the Address it created (ERPNext picks *a*
      linked address by itself, which is the wrong one for a per-marketplace customer).
    * Lines: qty 0 skipped (recording 053); ``ignore_pricing_rule = 1`` so pricing rules cannot replace
      Amazon's prices; pending orders (with ``import_pending``) take the unit price when Amazon gives one
      (Orders 2026-01-01), else rate 0 and no charges — the engine should keep such orders as drafts.
    """
    reason = order_skip_reason(order, ctx)
    if reason is not None:
        raise OrderSkipped(order.amazon_order_id, reason)
    oid = order.amazon_order_id
    currency = order_currency(order)
    if currency == ctx.company_currency:
        rate = Decimal(1)
    elif conversion_rate is None:
        raise MappingError(
            f"order {oid}: no exchange rate {currency}:{ctx.company_currency} "
            f'(add a Currency Exchange record in ERPNext or [orders.exchange_rates] "{currency}:{ctx.company_currency}")'
        )
    elif conversion_rate <= 0:
        raise MappingError(f"order {oid}: exchange rate {currency}:{ctx.company_currency} must be positive")
    else:
        rate = conversion_rate

    warehouse = (ctx.fba_warehouse or ctx.warehouse) if order.fulfillment_channel == "AFN" else ctx.warehouse
    keys = _line_keys(order)
    ids_known = order_item_ids_known(order)
    lines: list[dict[str, Any]] = []
    for item in order.items:
        where = f"order {oid} line {item.order_item_id}"
        if item.quantity_ordered < 0:
            raise MappingError(f"{where}: negative quantity {item.quantity_ordered}")
        if item.quantity_ordered == 0:
            if item.item_price is not None and item.item_price.amount != 0:
                raise MappingError(f"{where}: quantity 0 but ItemPrice {item.item_price.amount}")
            continue
        code = item_codes.get(item.order_item_id)
        if not code:
            raise MappingError(f"{where}: no item code resolved for SKU {item.sku!r} / ASIN {item.asin!r}")
        title = _clean_text(item.title)
        parts = _line_rates(order, item, currency, ctx)
        for n, (qty, unit) in enumerate(parts, start=1):
            note = None
            if len(parts) > 1:
                price = item.item_price.amount if item.item_price else Decimal(0)
                split = " + ".join(f"{q} × {r}" for q, r in parts)
                note = f"part {n} of {len(parts)}: {price} for {item.quantity_ordered} split as {split}"
            line: dict[str, Any] = {
                "item_code": code,
                "qty": qty,
                "rate": _num(unit),
                "warehouse": warehouse,
                "description": _line_description(title, keys[item.order_item_id], note),
            }
            if ids_known:
                line["amazon_order_item_id"] = item.order_item_id
            if title:
                line["item_name"] = _truncate(title)
            lines.append(line)

    transaction_date = marketplace_date(order.purchase_date, order.marketplace_id)
    promised = order.latest_delivery_date or order.latest_ship_date or order.purchase_date
    delivery_date = max(marketplace_date(promised, order.marketplace_id), transaction_date)
    doc: dict[str, Any] = {
        "doctype": "Sales Order",
        "company": ctx.company,
        "customer": customer,
        "title": customer,
        "transaction_date": transaction_date.isoformat(),
        "delivery_date": delivery_date.isoformat(),
        "currency": currency,
        "conversion_rate": _num(rate),
        "selling_price_list": ctx.price_list,
        "ignore_pricing_rule": 1,
        "set_warehouse": warehouse,
        "po_no": oid,
        "amazon_order_id": oid,
        "amazon_marketplace_id": order.marketplace_id,
        "amazon_fulfillment_channel": order.fulfillment_channel,
        "amazon_order_status": canonical_status(order.status),
        "disable_rounded_total": 1,
        "items": lines,
        "taxes": _taxes(order, ctx),
    }
    if shipping_address_name:
        doc["shipping_address_name"] = shipping_address_name
    return doc


# --------------------------------------------------------------------------------------------- drift


def _lines(doc: Mapping[str, Any], step: Decimal) -> dict[str, str]:
    """Quantity and amount per item code. Keyed by item, not by Amazon's order-item id, because the orders
    report carries no order-item ids: the same order read from the report and from the API must compare
    equal, and split lines (2 × 3.33 + 1 × 3.34) must compare equal to their total."""
    qty: dict[str, Decimal] = {}
    amount: dict[str, Decimal] = {}
    for row in doc.get("items") or ():
        code = str(row.get("item_code"))
        q = _dec(row.get("qty"), "qty")
        qty[code] = qty.get(code, Decimal(0)) + q
        amount[code] = amount.get(code, Decimal(0)) + _round(_round(_dec(row.get("rate"), "rate"), step) * q, step)
    return {code: f"{qty[code].normalize():f} for {amount[code]}" for code in qty}


def _tax_totals(doc: Mapping[str, Any], step: Decimal, tax_accounts: Collection[str]) -> dict[str, Decimal]:
    """Charges per account, the ``tax_accounts`` together under the key ``tax`` (descriptions differ between
    sources and Sales Orders made before rows were merged per account carry several rows per account)."""
    totals: dict[str, Decimal] = {}
    for row in doc.get("taxes") or ():
        account = str(row.get("account_head"))
        key = "tax" if account in tax_accounts else f"taxes[{account}]"
        totals[key] = totals.get(key, Decimal(0)) + _round(_dec(row.get("tax_amount"), "tax_amount"), step)
    return {k: v for k, v in totals.items() if v}


def sales_order_drift(
    existing: Mapping[str, Any],
    wanted: Mapping[str, Any],
    *,
    precision: int = 2,
    tax_accounts: Collection[str] = (),
    unknown: Collection[str] = (),
) -> dict[str, tuple[Any, Any]]:
    """Differences that matter between a stored Sales Order and a freshly mapped one: ``{key: (old, new)}``.

    Keys: ``currency``; ``amazon_order_status`` (only when the stored doc has that field); ``items[<code>]``
    per item code (``"<qty> for <amount>"``, None when absent on one side); ``taxes[<account>]`` per account
    not in ``tax_accounts`` and ``tax`` for the sum over ``tax_accounts`` (Decimal, None when absent);
    ``grand_total`` (Decimal, computed with :func:`sales_order_total`, or the stored value when the stored doc
    has no items). :data:`ANNOTATIONS` and the conversion rate are deliberately not compared: they depend on
    the read path or change without the order changing (see the module doc). Pass the full names of the
    :data:`TAX_ACCOUNT_KINDS` accounts (:meth:`MappingContext.tax_accounts`) as ``tax_accounts``, and the keys
    the fresh read cannot speak for (:func:`unknown_drift_keys`) as ``unknown``: they are never drift.
    """
    step = Decimal(1).scaleb(-precision)
    drift: dict[str, tuple[Any, Any]] = {}
    if existing.get("currency") and wanted.get("currency") and existing["currency"] != wanted["currency"]:
        drift["currency"] = (existing["currency"], wanted["currency"])
    if "amazon_order_status" in existing and existing.get("amazon_order_status") != wanted.get(
        "amazon_order_status"
    ):
        drift["amazon_order_status"] = (
            existing.get("amazon_order_status"),
            wanted.get("amazon_order_status"),
        )

    old_lines, new_lines = _lines(existing, step), _lines(wanted, step)
    for key in sorted(old_lines.keys() | new_lines.keys()):
        if old_lines.get(key) != new_lines.get(key):
            drift[f"items[{key}]"] = (old_lines.get(key), new_lines.get(key))

    old_taxes, new_taxes = _tax_totals(existing, step, tax_accounts), _tax_totals(wanted, step, tax_accounts)
    for key in sorted(old_taxes.keys() | new_taxes.keys()):
        if old_taxes.get(key) != new_taxes.get(key):
            drift[key] = (old_taxes.get(key), new_taxes.get(key))

    if "items" in existing or existing.get("grand_total") is None:
        old_total = sales_order_total(existing, precision=precision)
    else:
        old_total = _round(_dec(existing.get("grand_total"), "grand_total"), step)
    new_total = sales_order_total(wanted, precision=precision)
    if old_total != new_total:
        drift["grand_total"] = (old_total, new_total)
    return {key: change for key, change in drift.items() if key not in unknown}
