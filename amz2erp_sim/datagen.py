"""Deterministic generator of Amazon seller data: listings and orders, as canonical records.

All randomness comes from ``random.Random(seed)``; the same arguments always give the same data.

Records (plain dataclasses; amounts are ``Decimal`` with the currency's exponent, datetimes aware UTC):

* ``SimListing``: one SKU offered in one marketplace (a SKU listed in two marketplaces is two records with the
  same ``sku``/``asin``).
* ``SimOrder`` with ``SimOrderItem`` lines. Item amounts follow Amazon Orders v0: ``item_price`` is the
  LINE total (unit price × quantity ordered), taxes and discounts are per line. ``SimOrder.order_total`` is
  ``Σ item_price + item_tax + shipping_price + shipping_tax + gift_wrap_price + gift_wrap_tax
  − promotion_discount − promotion_discount_tax − shipping_discount − shipping_discount_tax``; that is
  exactly the ``OrderTotal`` the simulator reports.

Modelling choices (documented so importers know what to expect):

* US orders carry marketplace-facilitator sales tax (``tax_collection_model="MarketplaceFacilitator"``: every
  US state with a sales tax has a facilitator law), CA orders seller-collected tax (``tax_collection_model=None``,
  a Canadian GST/HST-registered seller). Each follows its marketplace's default model, which is what the
  orders report without tax-collection columns relies on. EU/UK/JP orders have VAT included in the prices and
  zero tax lines, so the order-total formula holds everywhere.
* ``Pending`` / ``PendingAvailability`` orders keep their amounts here (they are the truth that appears once
  the order is authorised); the simulator hides prices while the order is pending, as Amazon does.
* ``Canceled`` orders have every line at quantity 0 and zero amounts (Amazon reports cancelled lines as
  ``QuantityOrdered: 0``); their ``order_total`` is 0 and the simulator omits ``OrderTotal``.
* Replacement orders are free (all amounts 0) and point to the original with ``replaced_order_id``.
* Some AFN orders look like FBA removal orders: ``latest_delivery_date`` in 1995.
* Mutations (``ship_order``, ``cancel_order``, ``partially_cancel``, ``set_listing_price``,
  ``set_listing_title``) change the record in place and set ``last_update_date`` to the given ``now``.
"""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from amz2erp.amazon.marketplaces import BY_ID as PRODUCT_MARKETPLACES

# --------------------------------------------------------------------------- marketplaces


@dataclass(frozen=True)
class MarketplaceInfo:
    code: str
    marketplace_id: str
    country_code: str
    currency: str
    domain: str  # "www.amazon.com"
    language: str  # "en_US"
    region: str  # na / eu / fe

    @property
    def name(self) -> str:
        """The sales channel ("Amazon.com"), from the product's marketplace table."""
        return PRODUCT_MARKETPLACES[self.marketplace_id].sales_channel

    @property
    def time_zone(self) -> ZoneInfo:
        """The zone of the marketplace's local dates (report open-date), from the product's marketplace table."""
        return ZoneInfo(PRODUCT_MARKETPLACES[self.marketplace_id].time_zone)

    @property
    def exponent(self) -> Decimal:
        return Decimal("1") if self.currency == "JPY" else Decimal("0.01")

    @property
    def afn_channel(self) -> str:
        return {"na": "AMAZON_NA", "eu": "AMAZON_EU", "fe": "AMAZON_FE"}[self.region]


MARKETPLACES: dict[str, MarketplaceInfo] = {
    m.code: m
    for m in (
        MarketplaceInfo("US", "ATVPDKIKX0DER", "US", "USD", "www.amazon.com", "en_US", "na"),
        MarketplaceInfo("CA", "A2EUQ1WTGCTBG2", "CA", "CAD", "www.amazon.ca", "en_CA", "na"),
        MarketplaceInfo("MX", "A1AM78C64UM0Y8", "MX", "MXN", "www.amazon.com.mx", "es_MX", "na"),
        MarketplaceInfo("UK", "A1F83G8C2ARO7P", "GB", "GBP", "www.amazon.co.uk", "en_GB", "eu"),
        MarketplaceInfo("DE", "A1PA6795UKMFR9", "DE", "EUR", "www.amazon.de", "de_DE", "eu"),
        MarketplaceInfo("FR", "A13V1IB3VIYZZH", "FR", "EUR", "www.amazon.fr", "fr_FR", "eu"),
        MarketplaceInfo("IT", "APJ6JRA9NG5V4", "IT", "EUR", "www.amazon.it", "it_IT", "eu"),
        MarketplaceInfo("ES", "A1RKKUPIHCS9HS", "ES", "EUR", "www.amazon.es", "es_ES", "eu"),
        MarketplaceInfo("JP", "A1VC38T7YXB528", "JP", "JPY", "www.amazon.co.jp", "ja_JP", "fe"),
    )
}
MARKETPLACES_BY_ID: dict[str, MarketplaceInfo] = {m.marketplace_id: m for m in MARKETPLACES.values()}

V0_STATUSES = (
    "PendingAvailability",
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "InvoiceUnconfirmed",
    "Canceled",
    "Unfulfillable",
)
PENDING_STATUSES = frozenset({"Pending", "PendingAvailability"})
#: v0 status -> Orders 2026-01-01 fulfillmentStatus
STATUS_2026 = {
    "PendingAvailability": "PENDING_AVAILABILITY",
    "Pending": "PENDING",
    "Unshipped": "UNSHIPPED",
    "PartiallyShipped": "PARTIALLY_SHIPPED",
    "Shipped": "SHIPPED",
    "InvoiceUnconfirmed": "SHIPPED",
    "Canceled": "CANCELLED",
    "Unfulfillable": "UNFULFILLABLE",
}


def marketplace(code_or_id: str) -> MarketplaceInfo:
    """Look a marketplace up by code (``US``) or id (``ATVPDKIKX0DER``)."""
    if code_or_id in MARKETPLACES:
        return MARKETPLACES[code_or_id]
    if code_or_id == "GB":
        return MARKETPLACES["UK"]
    return MARKETPLACES_BY_ID[code_or_id]


def quantize(amount: Decimal | float | int | str, currency: str = "USD") -> Decimal:
    """``amount`` rounded half-up to the currency's minor unit (whole yen)."""
    exp = Decimal("1") if currency == "JPY" else Decimal("0.01")
    return Decimal(str(amount)).quantize(exp, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------- records


@dataclass
class SimListing:
    sku: str
    asin: str
    marketplace_id: str
    title: str
    description: str
    price: Decimal
    quantity: int
    open_date: datetime
    image_url: str
    status: str = "Active"  # Active | Inactive
    fulfillment_channel: str = "DEFAULT"  # DEFAULT (MFN) | AMAZON_NA | AMAZON_EU | AMAZON_FE
    brand: str = ""
    product_type: str = "PRODUCT"
    classification: str = ""  # browse node display name
    classification_id: str = ""
    listing_id: str = ""
    last_update_date: datetime | None = None

    @property
    def currency(self) -> str:
        return marketplace(self.marketplace_id).currency

    @property
    def is_fba(self) -> bool:
        return self.fulfillment_channel != "DEFAULT"


@dataclass
class Address:
    name: str
    line1: str
    line2: str
    city: str
    state: str
    postal_code: str
    country_code: str
    phone: str
    address_type: str = "Residential"


@dataclass
class SimOrderItem:
    order_item_id: str
    asin: str
    sku: str
    title: str
    quantity_ordered: int
    quantity_shipped: int
    unit_price: Decimal
    item_price: Decimal  # LINE total = unit_price × quantity_ordered
    item_tax: Decimal
    shipping_price: Decimal
    shipping_tax: Decimal
    shipping_discount: Decimal
    shipping_discount_tax: Decimal
    promotion_discount: Decimal
    promotion_discount_tax: Decimal
    gift_wrap_price: Decimal
    gift_wrap_tax: Decimal
    tax_collection_model: str | None = None  # "MarketplaceFacilitator" | None
    promotion_ids: list[str] = field(default_factory=list)
    is_gift: bool = False
    gift_message: str = ""
    condition: str = "New"

    @property
    def line_total(self) -> Decimal:
        return (
            self.item_price
            + self.item_tax
            + self.shipping_price
            + self.shipping_tax
            + self.gift_wrap_price
            + self.gift_wrap_tax
            - self.promotion_discount
            - self.promotion_discount_tax
            - self.shipping_discount
            - self.shipping_discount_tax
        )

    @property
    def tax_total(self) -> Decimal:
        return (
            self.item_tax
            + self.shipping_tax
            + self.gift_wrap_tax
            - self.promotion_discount_tax
            - self.shipping_discount_tax
        )


@dataclass
class SimOrder:
    amazon_order_id: str
    marketplace_id: str
    purchase_date: datetime
    last_update_date: datetime
    status: str
    fulfillment_channel: str  # AFN | MFN
    currency: str
    buyer_name: str
    buyer_email: str
    shipping_address: Address
    earliest_ship_date: datetime
    latest_ship_date: datetime
    earliest_delivery_date: datetime
    latest_delivery_date: datetime
    items: list[SimOrderItem] = field(default_factory=list)
    is_business: bool = False
    is_prime: bool = False
    is_replacement: bool = False
    replaced_order_id: str | None = None
    ship_service_level: str = "Std US D2D Dom"
    order_type: str = "StandardOrder"  # StandardOrder | Preorder
    seller_order_id: str | None = None
    purchase_order_number: str | None = None

    @property
    def order_total(self) -> Decimal:
        total = sum((i.line_total for i in self.items), Decimal("0"))
        return quantize(total, self.currency)

    @property
    def prices_visible(self) -> bool:
        """Amazon returns no prices, taxes, shipping or promotions while an order is pending."""
        return self.status not in PENDING_STATUSES

    @property
    def number_of_items_shipped(self) -> int:
        return sum(i.quantity_shipped for i in self.items)

    @property
    def number_of_items_unshipped(self) -> int:
        return sum(max(0, i.quantity_ordered - i.quantity_shipped) for i in self.items)

    @property
    def marketplace(self) -> MarketplaceInfo:
        return marketplace(self.marketplace_id)

    def item(self, order_item_id: str) -> SimOrderItem:
        for it in self.items:
            if it.order_item_id == order_item_id:
                return it
        raise KeyError(order_item_id)


# --------------------------------------------------------------------------- vocabularies

_ADJ = [
    "Classic",
    "Premium",
    "Eco",
    "Compact",
    "Deluxe",
    "Rustic",
    "Smart",
    "Vintage",
    "Ultra",
    "Mini",
    "Pro",
]
_NOUN = [
    "Coffee Mug",
    "Water Bottle",
    "Desk Lamp",
    "Yoga Mat",
    "Phone Case",
    "Backpack",
    "Notebook",
    "Tea Kettle",
    "Cutting Board",
    "Headphones",
    "Candle",
    "Wall Clock",
    "Plant Pot",
    "Scarf",
]
_UNICODE_TITLES = [
    "Café Crème Tasse – Größe XL ☕ (Porzellan, spülmaschinenfest)",
    "Kaffeebecher »Müller & Söhne« – Édition spéciale",
    "日本製 ステンレス ボトル 500ml",
    "Ñandú piñata — fiesta edition 🎉",
    "Zażółć gęślą jaźń notebook",
    "Smörgåsbord Cutting Board Ø 30 cm",
]
_BRANDS = ["Acme", "Nordwind", "Sakura Home", "Bärenstark", "LumenCo", "Þór Goods", "Kaffeehaus"]
_PRODUCT_TYPES = [
    ("DRINKING_CUP", "Mugs"),
    ("BOTTLE", "Water Bottles"),
    ("LAMP", "Desk Lamps"),
    ("SPORTING_GOODS", "Yoga Mats"),
    ("CELLULAR_PHONE_CASE", "Cases"),
    ("BACKPACK", "Backpacks"),
    ("NOTEBOOK", "Notebooks"),
    ("KITCHEN", "Kettles"),
    ("HOME", "Home Decor"),
]
_FIRST = [
    "John",
    "Anna",
    "Jürgen",
    "Zoë",
    "Miguel",
    "Søren",
    "Chloé",
    "Li",
    "Émile",
    "Olga",
    "Priya",
    "Tomás",
]
_LAST = [
    "Smith",
    "Müller",
    "O'Brien",
    "García",
    "Nakamura",
    "Dvořák",
    "Łukasz",
    "Ng",
    "Fernández",
    "Østergaard",
]
_CITIES = {
    "US": [
        ("Seattle", "WA", "98101"),
        ("Austin", "TX", "73301"),
        ("New York", "NY", "10001"),
        ("Portland", "OR", "97201"),
    ],
    "CA": [("Toronto", "ON", "M5H 2N2"), ("Montréal", "QC", "H2Y 1C6")],
    "MX": [("Ciudad de México", "CDMX", "06000")],
    "GB": [("London", "", "SW1A 1AA"), ("Manchester", "", "M1 1AE")],
    "DE": [("München", "Bayern", "80331"), ("Berlin", "Berlin", "10115"), ("Köln", "NRW", "50667")],
    "FR": [("Paris", "", "75001"), ("Lyon", "", "69001")],
    "IT": [("Roma", "RM", "00100")],
    "ES": [("Madrid", "Madrid", "28001")],
    "JP": [("東京都", "東京都", "100-0001")],
}
_STREETS = ["Main Street", "Hauptstraße", "Rue de la Paix", "Elm Ave", "Königsallee", "Calle Mayor"]
_SERVICE = {"na": "Std US D2D Dom", "eu": "Std DE Dom", "fe": "Std JP Dom"}

# status weights for generate_orders
_DEFAULT_STATUS_WEIGHTS = {
    "Shipped": 45,
    "Unshipped": 14,
    "PartiallyShipped": 6,
    "Pending": 8,
    "PendingAvailability": 2,
    "InvoiceUnconfirmed": 4,
    "Canceled": 8,
    "Unfulfillable": 2,
}


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(8))


def _sku(rng: random.Random, i: int) -> str:
    kind = i % 7
    base = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
    num = rng.randint(100, 9999)
    if kind == 3:
        return f"{base}/{num}-RED"  # slash
    if kind == 5:
        return f"{base} {num} XL"  # spaces
    if kind == 6:
        return f"{base}-{num}/B 2"  # both
    return f"{base}-{num}-{i:05d}"


def _title(rng: random.Random, i: int) -> str:
    kind = i % 9
    if kind == 4:
        return rng.choice(_UNICODE_TITLES)
    base = f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    if kind == 7:  # very long title (> 140 chars)
        extra = ", ".join(
            rng.sample(
                [
                    "BPA-free",
                    "dishwasher safe",
                    "stainless steel",
                    "double-walled vacuum insulation",
                    "leak-proof lid",
                    "ergonomic handle",
                    "gift box included",
                    "set of 2",
                    "350 ml / 12 oz",
                    "for home, office and travel",
                    "matte black finish",
                ],
                8,
            )
        )
        return f"{base} – {extra}"
    return base


# --------------------------------------------------------------------------- listings


def generate_listings(
    seed: int,
    n: int,
    marketplaces: Sequence[str] = ("US", "DE"),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    fba_share: float = 0.3,
    inactive_share: float = 0.1,
    shared_share: float = 0.25,
) -> list[SimListing]:
    """``n`` listings spread over ``marketplaces`` (codes or ids). About ``shared_share`` of them repeat an
    earlier SKU/ASIN in another marketplace (same product sold in two marketplaces). ``open_date`` falls in
    [start, end] (default: the two years before 2026-01-01)."""
    rng = random.Random(seed)
    mps = [marketplace(m) for m in marketplaces]
    if not mps:
        raise ValueError("need at least one marketplace")
    end = end or datetime(2026, 1, 1, tzinfo=timezone.utc)
    start = start or end - timedelta(days=730)
    span = max(1, int((end - start).total_seconds()))
    out: list[SimListing] = []
    products: list[tuple[str, str, str, str, str, str, str, Decimal]] = []
    used: set[tuple[str, str]] = set()
    for i in range(n):
        reuse = None
        if products and len(mps) > 1 and rng.random() < shared_share:
            cand = rng.choice(products)
            free = [m for m in mps if (cand[0], m.marketplace_id) not in used]
            if free:
                reuse = (cand, rng.choice(free))
        if reuse is not None:
            (sku, asin, title, desc, brand, ptype, pclass, base_usd), mp = reuse
        else:
            mp = mps[i % len(mps)]
            sku = _sku(rng, i)
            while any(p[0] == sku for p in products):
                sku = f"{sku}-{i}"
            asin = _asin(rng)
            title = _title(rng, i)
            brand = rng.choice(_BRANDS)
            ptype, pclass = rng.choice(_PRODUCT_TYPES)
            desc = f"{title}. Made by {brand}. Quality you can trust – 100% satisfaction."
            base_usd = Decimal(rng.randint(399, 19999)) / 100
            products.append((sku, asin, title, desc, brand, ptype, pclass, base_usd))
        used.add((sku, mp.marketplace_id))
        if mp.currency == "JPY":
            price = quantize(base_usd * 150, "JPY")
        elif mp.currency == "MXN":
            price = quantize(base_usd * 17)
        else:
            price = quantize(base_usd)
        fba = rng.random() < fba_share
        opened = start + timedelta(seconds=rng.randrange(span))
        opened = opened.replace(microsecond=0)
        out.append(
            SimListing(
                sku=sku,
                asin=asin,
                marketplace_id=mp.marketplace_id,
                title=title,
                description=desc,
                price=price,
                quantity=0 if fba else rng.randint(0, 250),
                open_date=opened,
                image_url=f"https://m.media-amazon.com/images/I/{asin}.jpg",
                status="Inactive" if rng.random() < inactive_share else "Active",
                fulfillment_channel=mp.afn_channel if fba else "DEFAULT",
                brand=brand,
                product_type=ptype,
                classification=pclass,
                classification_id=str(1000000 + sum(map(ord, pclass)) * 97),
                listing_id=f"{rng.randint(10**9, 10**10 - 1)}{i % 10}",
                last_update_date=opened,
            )
        )
    return out


# --------------------------------------------------------------------------- orders


def _order_id(rng: random.Random, mp: MarketplaceInfo) -> str:
    prefix = {
        "na": rng.choice(["111", "112", "113", "114"]),
        "eu": rng.choice(["302", "303", "304", "305", "306"]),
        "fe": rng.choice(["249", "250", "503"]),
    }[mp.region]
    return f"{prefix}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}"


def _address(rng: random.Random, mp: MarketplaceInfo, name: str, business: bool) -> Address:
    city, state, postal = rng.choice(_CITIES[mp.country_code])
    return Address(
        name=name,
        line1=f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",
        line2=rng.choice(["", "", f"Apt {rng.randint(1, 99)}", "c/o Büro 3"]),
        city=city,
        state=state,
        postal_code=postal,
        country_code=mp.country_code,
        phone=f"+{rng.randint(1, 99)} {rng.randint(100, 999)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        address_type="Commercial" if business else "Residential",
    )


def _make_item(
    rng: random.Random, order_item_id: str, listing: SimListing, qty: int, mp: MarketplaceInfo, features: dict
) -> SimOrderItem:
    cur = mp.currency
    zero = quantize(0, cur)
    unit = listing.price
    item_price = quantize(unit * qty, cur)
    tax_rate = features["tax_rate"]
    ship = quantize(Decimal(rng.choice([0, 0, 3.99, 4.99, 7.5])) * (150 if cur == "JPY" else 1), cur)
    ship_disc = ship if features["free_shipping_promo"] and ship > 0 else zero
    promo = zero
    promo_ids: list[str] = []
    if features["promo"]:
        promo = quantize(item_price * Decimal(rng.choice(["0.10", "0.15", "0.20"])), cur)
        promo_ids.append(f"PLM-{rng.randint(10**6, 10**7 - 1)}")
    if ship_disc > 0:
        promo_ids.append(f"FREE-SHIP-{mp.code}")
    gift = features["gift"]
    gw = quantize(Decimal("2.99") * (150 if cur == "JPY" else 1), cur) if gift else zero
    return SimOrderItem(
        order_item_id=order_item_id,
        asin=listing.asin,
        sku=listing.sku,
        title=listing.title,
        quantity_ordered=qty,
        quantity_shipped=0,
        unit_price=unit,
        item_price=item_price,
        item_tax=quantize(item_price * tax_rate, cur),
        shipping_price=ship,
        shipping_tax=quantize(ship * tax_rate, cur),
        shipping_discount=ship_disc,
        shipping_discount_tax=quantize(ship_disc * tax_rate, cur),
        promotion_discount=promo,
        promotion_discount_tax=quantize(promo * tax_rate, cur),
        gift_wrap_price=gw,
        gift_wrap_tax=quantize(gw * tax_rate, cur),
        tax_collection_model=features["tax_model"],
        promotion_ids=promo_ids,
        is_gift=gift,
        gift_message="Alles Gute zum Geburtstag! 🎂" if gift else "",
    )


def _zero_item(it: SimOrderItem, currency: str) -> None:
    z = quantize(0, currency)
    it.item_price = it.item_tax = it.shipping_price = it.shipping_tax = z
    it.shipping_discount = it.shipping_discount_tax = it.promotion_discount = it.promotion_discount_tax = z
    it.gift_wrap_price = it.gift_wrap_tax = z


def generate_orders(
    seed: int,
    n: int,
    listings: Sequence[SimListing],
    start: datetime,
    end: datetime,
    *,
    status_weights: dict[str, float] | None = None,
    afn_share: float = 0.35,
    replacement_share: float = 0.03,
    removal_share: float = 0.02,
    max_lines: int = 4,
) -> list[SimOrder]:
    """``n`` orders over the given listings, with purchase and last-update dates inside [start, end].

    Every status in ``V0_STATUSES`` is produced when ``n`` is at least their count (the first orders cycle
    through all statuses, later ones follow ``status_weights``). Returned in purchase-date order."""
    if not listings:
        raise ValueError("generate_orders needs listings")
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise ValueError("start/end must be aware datetimes with start < end")
    rng = random.Random(seed)
    weights = status_weights or _DEFAULT_STATUS_WEIGHTS
    wkeys = list(weights)
    wvals = [weights[k] for k in wkeys]
    by_mp: dict[str, list[SimListing]] = {}
    for lst in listings:
        by_mp.setdefault(lst.marketplace_id, []).append(lst)
    mp_ids = sorted(by_mp)
    span = (end - start).total_seconds()
    orders: list[SimOrder] = []
    used_ids: set[str] = set()
    item_counter = rng.randint(10**12, 5 * 10**12)
    for idx in range(n):
        status = V0_STATUSES[idx] if idx < len(V0_STATUSES) else rng.choices(wkeys, wvals)[0]
        mp_id = mp_ids[idx % len(mp_ids)] if idx < 2 * len(mp_ids) else rng.choice(mp_ids)
        mp = marketplace(mp_id)
        pool = by_mp[mp_id]
        afn = status == "Unfulfillable" or (idx % 2 == 1 if idx < 4 else rng.random() < afn_share)
        oid = _order_id(rng, mp)
        while oid in used_ids:
            oid = _order_id(rng, mp)
        used_ids.add(oid)
        purchase = start + timedelta(seconds=rng.random() * span * 0.9)
        purchase = purchase.replace(microsecond=0)
        remaining = (end - purchase).total_seconds()
        last_update = purchase + timedelta(seconds=int(rng.random() * remaining * 0.8))
        if last_update > end:
            last_update = end
        business = rng.random() < 0.12
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        # tax
        if mp.code in ("US", "CA"):
            rng.random()  # was a per-order MF draw; kept so every seed still generates the same orders
            tax_rate = Decimal(rng.choice(["0.0625", "0.0825", "0.1025", "0.06"]))
            tax_model = "MarketplaceFacilitator" if mp.code == "US" else None
        else:
            tax_rate = Decimal("0")
            tax_model = None
        n_lines = 1 if rng.random() < 0.55 else rng.randint(2, max(2, max_lines))
        chosen = rng.sample(pool, min(n_lines, len(pool)))
        items: list[SimOrderItem] = []
        order_gift = rng.random() < 0.08
        for lst in chosen:
            item_counter += rng.randint(1, 9999)
            qty = 1 if rng.random() < 0.6 else rng.randint(2, 6)
            feats = {
                "tax_rate": tax_rate,
                "tax_model": tax_model,
                "promo": rng.random() < 0.18,
                "free_shipping_promo": rng.random() < 0.15,
                "gift": order_gift and rng.random() < 0.8,
            }
            items.append(_make_item(rng, f"{item_counter:014d}", lst, qty, mp, feats))
        ship_early = purchase + timedelta(hours=rng.randint(1, 24))
        ship_late = ship_early + timedelta(days=rng.randint(1, 3))
        del_early = ship_late + timedelta(days=rng.randint(1, 3))
        del_late = del_early + timedelta(days=rng.randint(1, 5))
        order = SimOrder(
            amazon_order_id=oid,
            marketplace_id=mp.marketplace_id,
            purchase_date=purchase,
            last_update_date=last_update,
            status=status,
            fulfillment_channel="AFN" if afn else "MFN",
            currency=mp.currency,
            buyer_name=name,
            buyer_email=f"{''.join(rng.choice(string.ascii_lowercase) for _ in range(12))}@marketplace.amazon.{'com' if mp.region == 'na' else 'de'}",
            shipping_address=_address(rng, mp, name, business),
            earliest_ship_date=ship_early,
            latest_ship_date=ship_late,
            earliest_delivery_date=del_early,
            latest_delivery_date=del_late,
            items=items,
            is_business=business,
            is_prime=afn and rng.random() < 0.7,
            ship_service_level=_SERVICE[mp.region],
            order_type="Preorder" if status == "PendingAvailability" else "StandardOrder",
            purchase_order_number=f"PO-{rng.randint(1000, 99999)}" if business else None,
        )
        _apply_status(rng, order)
        if afn and rng.random() < removal_share:
            order.latest_delivery_date = datetime(1995, 1, 1, 8, tzinfo=timezone.utc)
            order.earliest_delivery_date = datetime(1995, 1, 1, 7, tzinfo=timezone.utc)
        orders.append(order)
    # replacement orders: reuse an earlier shipped order, free of charge
    shipped = [o for o in orders if o.status == "Shipped"]
    n_repl = max(1 if n >= 20 else 0, int(n * replacement_share))
    candidates = [o for o in orders[len(V0_STATUSES) :] if o.status in ("Unshipped", "Shipped")]
    for o in rng.sample(candidates, min(n_repl, len(candidates))):
        originals = [
            s for s in shipped if s.purchase_date < o.purchase_date and s.marketplace_id == o.marketplace_id
        ]
        if not originals:
            continue
        orig = rng.choice(originals)
        o.is_replacement = True
        o.replaced_order_id = orig.amazon_order_id
        for it in o.items:
            _zero_item(it, o.currency)
            it.promotion_ids = []
    orders.sort(key=lambda o: (o.purchase_date, o.amazon_order_id))
    return orders


def _apply_status(rng: random.Random, order: SimOrder) -> None:
    st = order.status
    if st in ("Shipped", "InvoiceUnconfirmed"):
        for it in order.items:
            it.quantity_shipped = it.quantity_ordered
    elif st == "PartiallyShipped":
        if len(order.items) == 1 and order.items[0].quantity_ordered == 1:
            it = order.items[0]
            it.quantity_ordered = 2
            it.item_price = quantize(it.unit_price * 2, order.currency)
            rate = (it.item_tax / (it.item_price / 2)) if it.item_price and it.item_tax else Decimal(0)
            it.item_tax = quantize(it.item_price * rate, order.currency)
            if it.promotion_discount:
                it.promotion_discount = quantize(it.promotion_discount * 2, order.currency)
                it.promotion_discount_tax = quantize(it.promotion_discount * rate, order.currency)
        first = order.items[0]
        first.quantity_shipped = max(1, first.quantity_ordered - 1)
    elif st == "Canceled":
        for it in order.items:
            it.quantity_ordered = 0
            _zero_item(it, order.currency)


# --------------------------------------------------------------------------- mutations


def ship_order(order: SimOrder, now: datetime) -> None:
    """Ship everything that is left: status Shipped, quantity_shipped = quantity_ordered."""
    if order.status == "Canceled":
        raise ValueError(f"order {order.amazon_order_id} is canceled")
    for it in order.items:
        it.quantity_shipped = it.quantity_ordered
    order.status = "Shipped"
    order.last_update_date = now


def cancel_order(order: SimOrder, now: datetime) -> None:
    """Cancel the whole order: status Canceled, every line quantity 0 with zero amounts."""
    if order.status in ("Shipped", "InvoiceUnconfirmed"):
        raise ValueError(f"order {order.amazon_order_id} is already shipped")
    order.status = "Canceled"
    for it in order.items:
        it.quantity_ordered = 0
        it.quantity_shipped = 0
        _zero_item(it, order.currency)
    order.last_update_date = now


def partially_cancel(order: SimOrder, order_item_id: str, qty: int, now: datetime) -> None:
    """Cancel ``qty`` units of one line: quantity_ordered drops by ``qty`` and the line's amounts are
    re-priced (item price = unit × new quantity; tax and promotion scale proportionally; shipping and gift
    wrap are dropped when the line reaches 0)."""
    it = order.item(order_item_id)
    if qty <= 0 or qty > it.quantity_ordered - it.quantity_shipped:
        raise ValueError(f"cannot cancel {qty} unit(s) of line {order_item_id}")
    cur = order.currency
    old_qty = it.quantity_ordered
    new_qty = old_qty - qty
    ratio = Decimal(new_qty) / Decimal(old_qty)
    if it.item_price:
        it.item_price = quantize(it.unit_price * new_qty, cur)
    it.item_tax = quantize(it.item_tax * ratio, cur)
    it.promotion_discount = quantize(it.promotion_discount * ratio, cur)
    it.promotion_discount_tax = quantize(it.promotion_discount_tax * ratio, cur)
    it.quantity_ordered = new_qty
    if new_qty == 0:
        _zero_item(it, cur)
    if all(i.quantity_ordered == 0 for i in order.items):
        order.status = "Canceled"
    elif all(i.quantity_shipped >= i.quantity_ordered for i in order.items):
        order.status = "Shipped"
    order.last_update_date = now


def set_listing_price(listing: SimListing, price: Decimal | str | float, now: datetime) -> None:
    listing.price = quantize(price, listing.currency)
    listing.last_update_date = now


def set_listing_title(listing: SimListing, title: str, now: datetime) -> None:
    listing.title = title
    listing.last_update_date = now


def copy_order(order: SimOrder) -> SimOrder:
    """A deep copy (fast: amounts and datetimes are immutable)."""
    new = copy.copy(order)
    new.shipping_address = copy.copy(order.shipping_address)
    new.items = []
    for it in order.items:
        c = copy.copy(it)
        c.promotion_ids = list(it.promotion_ids)
        new.items.append(c)
    return new


def copy_listing(listing: SimListing) -> SimListing:
    return copy.copy(listing)


def orders_by_id(orders: Iterable[SimOrder]) -> dict[str, SimOrder]:
    return {o.amazon_order_id: o for o in orders}
