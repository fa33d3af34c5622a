"""Deterministic settlements (Amazon payouts) consistent with the simulator's orders, and how the SP-API serves
them: V2 flat-file settlement reports, Finances v0 event groups and Finances 2024-06-19 transactions.

``generate_settlements(seed, orders, now)`` builds, per marketplace, a schedule of 14-day settlement periods
from the first settled order to two periods past ``now``. Every money event has a ``posted`` time; the
simulator shows an event only once its clock has passed it, so a period is *closed* once its end is past
and *open* while the clock is inside it (its running total is the open group's ``OriginalTotal``).

What settles (amounts in the order's currency, signs as Amazon's: money to the seller positive):

* every order with shipped units (Shipped, InvoiceUnconfirmed, PartiallyShipped; not replacements), posted at
  its ``last_update_date``: per shipped line ``ItemPrice`` Principal (= the line's ``item_price``; for a
  partly shipped line unit price × shipped units), Shipping, GiftWrap and their taxes (net of the discount
  taxes, as the orders report shows them), ``Promotion`` Principal/Shipping (negative, with promotion-id),
  for marketplace-facilitator lines the equal and opposite ``ItemWithheldTax``
  MarketplaceFacilitatorTax-Principal/-Shipping/-Giftwrap rows, ``ItemFees`` Commission (15 % of the
  line's net sale, at least 0.30) and for AFN orders FBAPerUnitFulfillmentFee per unit;
* about one settled line in ten is refunded 3–20 days later (``Refund`` rows with an adjustment-id: the
  line's principal, shipping, taxes and promotions reversed, commission refunded, RefundCommission charged);
* per period: Cost of Advertising (``ServiceFee``), Subscription Fee or Storage Fee on alternate periods, and
  at closing a reserve: ``Current Reserve Amount`` held (negative, 10 % of a positive balance) and the previous
  period's reserve released (``Previous Reserve Amount Balance``, positive);
* the first period after FBA units shipped (never the first one) carries an FBA Inventory Reimbursement
  (WAREHOUSE_DAMAGE) for one of their SKUs; the third period (in a history of two closed periods the second;
  a lone closed period never) carries enough advertising to end negative: Amazon charges the card and holds no reserve.

Formats (the V2 flat file, 24 tab-separated columns with a header line): the first data row holds
settlement-id, the three header dates, total-amount and currency and nothing else; the other rows repeat
only settlement-id. Amounts use the marketplace's local number format (EU marketplaces except the UK:
``1.234,56``; JPY: no decimals). ``posted-date-time`` is ``YYYY-MM-DD HH:MM:SS UTC`` everywhere (Amazon's
changelog); header dates and ``posted-date`` follow the region's habit, which Amazon does not pin down:
NA ``YYYY-MM-DD HH:MM:SS UTC`` / ``MM/DD/YY``, EU ``DD.MM.YYYY HH:MM:SS UTC`` / ``DD.MM.YYYY``,
JP ``YYYY/MM/DD HH:MM:SS UTC`` / ``YYYY/MM/DD``.

Finances 2024-06-19 transactions: one transaction per order shipment (``Shipment``, "Order Payment") or
refund (``Refund``, "Refund Order"), with per-item breakdown trees and the same tree aggregated at the top
level (each sums to ``totalAmount``); every other row is its own transaction (``ServiceFee``,
``ProductAdsPayment``, ``Adjustment``). Which types Amazon uses for reserve lines is not documented; the
simulator uses ``Adjustment`` / "ReserveEvent" so that a group's transactions sum to its ``OriginalTotal``.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from amz2erp_sim.datagen import MARKETPLACES, MarketplaceInfo, SimOrder, marketplace

REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
CYCLE = timedelta(days=14)
#: periods are aligned on this instant (plus a per-marketplace offset) so a later clock keeps the schedule
_EPOCH = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
V2_COLUMNS = (
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount", "currency",
    "transaction-type", "order-id", "merchant-order-id", "adjustment-id", "shipment-id", "marketplace-name",
    "amount-type", "amount-description", "amount", "fulfillment-id", "posted-date", "posted-date-time",
    "order-item-code", "merchant-order-item-id", "merchant-adjustment-item-id", "sku", "quantity-purchased",
    "promotion-id",
)  # fmt: skip
SETTLED_STATUSES = frozenset({"Shipped", "InvoiceUnconfirmed", "PartiallyShipped"})
#: rough size of account-level amounts relative to USD (keeps other currencies plausible)
_SCALE = {"USD": "1", "CAD": "1.35", "MXN": "17", "GBP": "0.8", "EUR": "0.92", "JPY": "150"}
_SUBSCRIPTION = {
    "USD": "39.99",
    "CAD": "29.99",
    "MXN": "600.00",
    "GBP": "25.00",
    "EUR": "39.00",
    "JPY": "4900",
}
BANK_TAIL = "321"
CARD_TAIL = "4242"


@dataclass(frozen=True)
class SettlementRow:
    """One line of a V2 settlement file (everything but the header columns)."""

    transaction_type: str
    amount_type: str
    amount_description: str
    amount: Decimal
    posted: datetime
    order_id: str = ""
    merchant_order_id: str = ""
    adjustment_id: str = ""
    shipment_id: str = ""
    marketplace_name: str = ""
    fulfillment_id: str = ""
    order_item_code: str = ""
    merchant_order_item_id: str = ""
    merchant_adjustment_item_id: str = ""
    sku: str = ""
    quantity: int | None = None
    promotion_id: str = ""


@dataclass
class SimSettlement:
    """One settlement period of one marketplace = one V2 report = one Finances event group."""

    settlement_id: str
    marketplace_id: str
    currency: str
    start: datetime
    end: datetime
    deposit_date: datetime
    group_id: str = ""  # default: derived from the settlement-id (a hand-built settlement needs none)
    trace_id: str = ""
    rows: list[SettlementRow] = field(default_factory=list)
    #: the header's total-amount; None = Σ rows (a test may set a wrong one: an inconsistent file)
    stated_total: Decimal | None = None
    #: hours after ``end`` at which Amazon publishes the report
    report_delay: timedelta = timedelta(hours=3)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(f"group:{self.settlement_id}".encode()).digest()
        self.group_id = self.group_id or base64.urlsafe_b64encode(digest).decode().rstrip("=")
        self.trace_id = self.trace_id or digest.hex()[:15].upper()

    @property
    def marketplace(self) -> MarketplaceInfo:
        return marketplace(self.marketplace_id)

    @property
    def report_created(self) -> datetime:
        return self.end + self.report_delay

    @property
    def fund_transfer_date(self) -> datetime:
        return self.end + timedelta(hours=1)

    def rows_until(self, now: datetime) -> list[SettlementRow]:
        return [r for r in self.rows if r.posted <= now]

    def total(self, now: datetime | None = None) -> Decimal:
        """The payout (closed) or the running balance at ``now``."""
        if now is None or now >= self.end:
            if self.stated_total is not None:
                return self.stated_total
            rows = self.rows
        else:
            rows = self.rows_until(now)
        return _q(sum((r.amount for r in rows), Decimal(0)), self.currency)

    def is_closed(self, now: datetime) -> bool:
        return self.end <= now

    def report_available(self, now: datetime) -> bool:
        return self.report_created <= now


def _q(amount: Decimal, currency: str) -> Decimal:
    exp = Decimal("1") if currency == "JPY" else Decimal("0.01")
    return Decimal(amount).quantize(exp, rounding=ROUND_HALF_UP)


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


# --------------------------------------------------------------------------- generation


@dataclass
class _Line:
    """The settled share of one order line."""

    order: SimOrder
    item_index: int
    qty: int
    principal: Decimal
    tax: Decimal
    shipping: Decimal
    shipping_tax: Decimal
    gift_wrap: Decimal
    gift_wrap_tax: Decimal
    promo: Decimal
    ship_promo: Decimal
    commission: Decimal


def _settled_lines(order: SimOrder) -> list[_Line]:
    cur = order.currency
    out = []
    for idx, it in enumerate(order.items):
        if it.quantity_shipped <= 0 or it.quantity_ordered <= 0:
            continue
        share = Decimal(it.quantity_shipped) / Decimal(it.quantity_ordered)
        full = it.quantity_shipped >= it.quantity_ordered
        principal = it.item_price if full else _q(it.unit_price * it.quantity_shipped, cur)

        def part(v: Decimal, full: bool = full, share: Decimal = share) -> Decimal:
            return v if full else _q(v * share, cur)

        tax = part(it.item_tax - it.promotion_discount_tax)
        promo = part(it.promotion_discount)
        net = principal + it.shipping_price + it.gift_wrap_price - promo - it.shipping_discount
        minimum = Decimal("30") if cur == "JPY" else Decimal("0.30")
        commission = max(_q(net * Decimal("0.15"), cur), minimum) if net > 0 else Decimal(0)
        out.append(
            _Line(order, idx, it.quantity_shipped, principal, tax, it.shipping_price,
                  it.shipping_tax - it.shipping_discount_tax, it.gift_wrap_price, it.gift_wrap_tax, promo,
                  it.shipping_discount, _q(commission, cur))
        )  # fmt: skip
    return out


def _fba_fee(sku: str, currency: str) -> Decimal:
    base = Decimal(300 + sum(map(ord, sku)) % 350) / 100  # 3.00–6.49 per unit, stable per SKU
    return _q(base * Decimal(_SCALE.get(currency, "1")), currency)


def _line_rows(line: _Line, *, refund: bool, posted: datetime, shipment_id: str, adjustment_id: str,
               adj_item_id: str) -> list[SettlementRow]:  # fmt: skip
    o = line.order
    it = o.items[line.item_index]
    mp = marketplace(o.marketplace_id)
    sign = Decimal(-1) if refund else Decimal(1)
    common: dict[str, Any] = dict(
        transaction_type="Refund" if refund else "Order",
        posted=posted,
        order_id=o.amazon_order_id,
        merchant_order_id=o.seller_order_id or "",
        adjustment_id=adjustment_id,
        shipment_id="" if refund else shipment_id,
        marketplace_name=mp.name,
        fulfillment_id="AFN" if o.fulfillment_channel == "AFN" else "MFN",
        order_item_code=it.order_item_id,
        merchant_adjustment_item_id=adj_item_id,
        sku=it.sku,
        quantity=line.qty,
    )
    rows: list[SettlementRow] = []

    def add(amount_type: str, desc: str, amount: Decimal, promotion_id: str = "") -> None:
        if amount:
            rows.append(SettlementRow(amount_type=amount_type, amount_description=desc, amount=amount,
                                      promotion_id=promotion_id, **common))  # fmt: skip

    add("ItemPrice", "Principal", sign * line.principal)
    add("ItemPrice", "Tax", sign * line.tax)
    add("ItemPrice", "Shipping", sign * line.shipping)
    add("ItemPrice", "ShippingTax", sign * line.shipping_tax)
    add("ItemPrice", "GiftWrap", sign * line.gift_wrap)
    add("ItemPrice", "GiftWrapTax", sign * line.gift_wrap_tax)
    promo_ids = [p for p in it.promotion_ids if not p.startswith("FREE-SHIP")]
    ship_ids = [p for p in it.promotion_ids if p.startswith("FREE-SHIP")]
    add("Promotion", "Principal", -sign * line.promo, promo_ids[0] if promo_ids else "")
    add("Promotion", "Shipping", -sign * line.ship_promo, ship_ids[0] if ship_ids else "")
    if it.tax_collection_model == "MarketplaceFacilitator":
        add("ItemWithheldTax", "MarketplaceFacilitatorTax-Principal", -sign * line.tax)
        add("ItemWithheldTax", "MarketplaceFacilitatorTax-Shipping", -sign * line.shipping_tax)
        add("ItemWithheldTax", "MarketplaceFacilitatorTax-Giftwrap", -sign * line.gift_wrap_tax)
    add("ItemFees", "Commission", -sign * line.commission)
    if refund:
        cap = Decimal("500") if o.currency == "JPY" else Decimal("5.00")
        add("ItemFees", "RefundCommission", -min(_q(line.commission * Decimal("0.2"), o.currency), cap))
    elif o.fulfillment_channel == "AFN":
        add("ItemFees", "FBAPerUnitFulfillmentFee", -_fba_fee(it.sku, o.currency) * line.qty)
    return rows


def _other(desc: str, amount: Decimal, posted: datetime, *, transaction_type: str = "other-transaction",
           amount_type: str = "other-transaction", sku: str = "", quantity: int | None = None) -> SettlementRow:  # fmt: skip
    return SettlementRow(transaction_type, amount_type, desc, amount, posted, sku=sku, quantity=quantity)


def generate_settlements(
    seed: int,
    orders: Iterable[SimOrder],
    now: datetime,
    *,
    refund_share: float = 0.1,
    future_periods: int = 2,
) -> list[SimSettlement]:
    """Settlements of every marketplace the orders use, oldest first (see the module docstring).

    Randomness is drawn per order and per period (seeded from ``seed`` and their keys), so a settlement's
    id and content depend only on the orders posted in it: regenerating after more orders ship, or at a
    later ``now``, leaves the earlier periods as they were."""
    by_mp: dict[str, list[SimOrder]] = {}
    for o in sorted(orders, key=lambda o: (o.last_update_date, o.amazon_order_id)):
        if o.status in SETTLED_STATUSES and not o.is_replacement and o.number_of_items_shipped > 0:
            by_mp.setdefault(o.marketplace_id, []).append(o)
    out: list[SimSettlement] = []
    for mid in sorted(by_mp):
        out.extend(_marketplace_settlements(seed, mid, by_mp[mid], now, refund_share, future_periods))
    out.sort(key=lambda s: (s.end, s.marketplace_id))
    return out


def _order_events(seed: int, o: SimOrder, refund_share: float) -> list[SettlementRow]:
    rng = random.Random(f"{seed}:order:{o.amazon_order_id}")
    shipment_id = _alnum(rng, 9)
    events: list[SettlementRow] = []
    for line in _settled_lines(o):
        events.extend(_line_rows(line, refund=False, posted=o.last_update_date, shipment_id=shipment_id,
                                 adjustment_id="", adj_item_id=""))  # fmt: skip
        if rng.random() < refund_share:
            when = o.last_update_date + timedelta(days=rng.randint(3, 20), seconds=rng.randint(0, 86399))
            events.extend(_line_rows(line, refund=True, posted=when, shipment_id="",
                                     adjustment_id=f"{rng.randint(10**13, 10**14 - 1)}",
                                     adj_item_id=f"{rng.randint(10**13, 10**14 - 1)}"))  # fmt: skip
    return events


def _marketplace_settlements(seed: int, mid: str, orders: Sequence[SimOrder], now: datetime,
                             refund_share: float, future_periods: int) -> list[SimSettlement]:  # fmt: skip
    mp = marketplace(mid)
    cur = mp.currency
    scale = Decimal(_SCALE.get(cur, "1"))
    # marketplaces close an hour apart, so settlements of one seller never share an instant
    anchor = _EPOCH + timedelta(hours=sorted(m.marketplace_id for m in MARKETPLACES.values()).index(mid))
    first = min(o.last_update_date for o in orders)
    k0 = (first - anchor) // CYCLE
    k_now = (now - anchor) // CYCLE
    events = [e for o in orders for e in _order_events(seed, o, refund_share)]
    n_closed = k_now - k0  # periods k0 … k_now - 1 have ended
    # the third period ends negative; a shorter history keeps its first settlement a deposit (the demo's month)
    negative_idx = 2 if n_closed >= 3 else n_closed - 1 if n_closed == 2 else -1
    base_id = random.Random(f"{seed}:ids:{mid}").randint(10**10, 2 * 10**10)
    settlements: list[SimSettlement] = []
    reserve = Decimal(0)
    reimbursed = False
    for idx, k in enumerate(range(k0, k_now + 1 + future_periods)):
        start, end = anchor + k * CYCLE, anchor + (k + 1) * CYCLE
        rng = random.Random(f"{seed}:period:{mid}:{k}")
        rows = [e for e in events if start <= e.posted < end]
        mid_time = start + timedelta(days=7, hours=rng.randint(0, 48))
        advertising = _q(Decimal(rng.randint(1500, 6000)) / 100 * scale, cur)
        rows.append(_other("TransactionTotalAmount", -advertising, start + timedelta(days=3, hours=5),
                           transaction_type="ServiceFee", amount_type="Cost of Advertising"))  # fmt: skip
        if idx % 2 == 0:
            rows.append(_other("Subscription Fee", -Decimal(_SUBSCRIPTION.get(cur, "39.99")), mid_time))
        else:
            storage = _q(Decimal(rng.randint(500, 2500)) / 100 * scale, cur)
            rows.append(_other("Storage Fee", -storage, mid_time))
        fba_skus = sorted({e.sku for e in events if e.fulfillment_id == "AFN" and e.posted < start + CYCLE})
        if idx >= 1 and fba_skus and not reimbursed:  # one reimbursement, once FBA units have shipped
            reimbursed = True
            amount = _q(Decimal(rng.randint(800, 3000)) / 100 * scale, cur)
            rows.append(_other("WAREHOUSE_DAMAGE", amount, mid_time + timedelta(hours=2),
                               amount_type="FBA Inventory Reimbursement", sku=rng.choice(fba_skus), quantity=1))  # fmt: skip
        closing = end - timedelta(seconds=1)
        if reserve:
            rows.append(_other("Previous Reserve Amount Balance", reserve, closing))
        running = sum((r.amount for r in rows), Decimal(0))
        if idx == negative_idx:
            extra = _q(running + Decimal(rng.randint(2000, 8000)) / 100 * scale, cur)
            if extra > 0:
                rows.append(_other("TransactionTotalAmount", -extra, start + timedelta(days=10),
                                   transaction_type="ServiceFee", amount_type="Cost of Advertising"))  # fmt: skip
            reserve = Decimal(0)
        else:
            reserve = _q(running * Decimal("0.1"), cur) if running > 0 else Decimal(0)
            if reserve:
                rows.append(_other("Current Reserve Amount", -reserve, closing))
        rows.sort(key=lambda r: r.posted)
        settlements.append(
            SimSettlement(
                settlement_id=str(base_id + (k - k0) * 104729 + rng.randint(0, 999)),
                marketplace_id=mid,
                currency=cur,
                start=start,
                end=end,
                deposit_date=end + timedelta(days=2),
                group_id=_alnum(rng, 43),
                trace_id=_alnum(rng, 15).upper(),
                rows=rows,
            )
        )
    return settlements


def reissue(settlement: SimSettlement, **changes: Any) -> SimSettlement:
    """A copy with other content (``rows=``, ``stated_total=``, …) under the same settlement-id."""
    return replace(settlement, **changes)


# --------------------------------------------------------------------------- the V2 flat file


def format_amount(amount: Decimal, currency: str, marketplace_id: str) -> str:
    """Amazon's local number format: ``1234.56`` (NA, UK), ``1.234,56`` (EU), ``1234`` (JPY)."""
    mp = marketplace(marketplace_id)
    value = _q(amount, currency)
    if currency == "JPY":
        return f"{value:.0f}"
    if mp.region == "eu" and mp.code != "UK":
        text = f"{value:,.2f}"
        return text.replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{value:.2f}"


def format_header_date(dt: datetime, marketplace_id: str) -> str:
    region = marketplace(marketplace_id).region
    utc = dt.astimezone(timezone.utc)
    if region == "eu":
        return utc.strftime("%d.%m.%Y %H:%M:%S UTC")
    if region == "fe":
        return utc.strftime("%Y/%m/%d %H:%M:%S UTC")
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_posted_date(dt: datetime, marketplace_id: str) -> str:
    region = marketplace(marketplace_id).region
    utc = dt.astimezone(timezone.utc)
    if region == "eu":
        return utc.strftime("%d.%m.%Y")
    if region == "fe":
        return utc.strftime("%Y/%m/%d")
    return utc.strftime("%m/%d/%y")


def _cell(value: Any) -> str:
    s = "" if value is None else str(value)
    return s.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def render_v2(s: SimSettlement) -> bytes:
    """The settlement as Amazon's V2 flat file (Cp1252, CRLF, unencodable characters as ``?``)."""
    mid = s.marketplace_id
    first = dict.fromkeys(V2_COLUMNS, "")
    first.update({
        "settlement-id": s.settlement_id,
        "settlement-start-date": format_header_date(s.start, mid),
        "settlement-end-date": format_header_date(s.end, mid),
        "deposit-date": format_header_date(s.deposit_date, mid),
        "total-amount": format_amount(s.total(), s.currency, mid),
        "currency": s.currency,
    })  # fmt: skip
    lines = ["\t".join(V2_COLUMNS), "\t".join(first[c] for c in V2_COLUMNS)]
    for r in s.rows:
        values = {
            "settlement-id": s.settlement_id, "transaction-type": r.transaction_type, "order-id": r.order_id,
            "merchant-order-id": r.merchant_order_id, "adjustment-id": r.adjustment_id,
            "shipment-id": r.shipment_id, "marketplace-name": r.marketplace_name, "amount-type": r.amount_type,
            "amount-description": r.amount_description, "amount": format_amount(r.amount, s.currency, mid),
            "fulfillment-id": r.fulfillment_id, "posted-date": format_posted_date(r.posted, mid),
            "posted-date-time": r.posted.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "order-item-code": r.order_item_code, "merchant-order-item-id": r.merchant_order_item_id,
            "merchant-adjustment-item-id": r.merchant_adjustment_item_id, "sku": r.sku,
            "quantity-purchased": "" if r.quantity is None else str(r.quantity), "promotion-id": r.promotion_id,
        }  # fmt: skip
        lines.append("\t".join(_cell(values.get(c, "")) for c in V2_COLUMNS))
    return ("\r\n".join(lines) + "\r\n").encode("cp1252", errors="replace")


# --------------------------------------------------------------------------- Finances JSON


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cur_v0(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"CurrencyCode": currency, "CurrencyAmount": float(amount)}


def _cur(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"currencyCode": currency, "currencyAmount": float(amount)}


def event_group(s: SimSettlement, now: datetime, conversion: tuple[str, Decimal] | None = None) -> dict[str, Any]:
    """The Finances v0 ``FinancialEventGroup`` of a settlement (Closed or Open). ``conversion`` (payout currency,
    rate): Amazon paid the closed settlement out converted, rounded to the cent."""
    total = s.total(now)
    converted, converted_currency = total, s.currency
    if conversion is not None:
        converted_currency = conversion[0]
        converted = (total * Decimal(conversion[1])).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    group: dict[str, Any] = {
        "FinancialEventGroupId": s.group_id,
        "ProcessingStatus": "Closed" if s.is_closed(now) else "Open",
        "OriginalTotal": _cur_v0(total, s.currency),
        "BeginningBalance": _cur_v0(Decimal(0), s.currency),
        "FinancialEventGroupStart": _iso(s.start),
    }
    if s.is_closed(now):
        group.update({
            "FundTransferStatus": "Succeeded",
            "ConvertedTotal": _cur_v0(converted, converted_currency),
            "FundTransferDate": _iso(s.fund_transfer_date),
            "TraceId": s.trace_id,
            "AccountTail": CARD_TAIL if total < 0 else BANK_TAIL,
            "FinancialEventGroupEnd": _iso(s.end),
        })  # fmt: skip
    return group


#: V2 (amount-type, amount-description) → breakdown path in a 2024-06-19 transaction
_PATHS = {
    ("ItemPrice", "Principal"): ("Sales", "ProductCharges", "OurPricePrincipal"),
    ("ItemPrice", "Tax"): ("Sales", "Tax", "OurPriceTax"),
    ("ItemPrice", "Shipping"): ("Sales", "Shipping", "ShippingPrincipal"),
    ("ItemPrice", "ShippingTax"): ("Sales", "Tax", "ShippingTax"),
    ("ItemPrice", "GiftWrap"): ("Sales", "GiftWrap", "GiftWrapPrincipal"),
    ("ItemPrice", "GiftWrapTax"): ("Sales", "Tax", "GiftWrapTax"),
    ("Promotion", "Principal"): ("Sales", "Promotions", "PrincipalPromotion"),
    ("Promotion", "Shipping"): ("Sales", "Promotions", "ShippingPromotion"),
}


def _path(r: SettlementRow) -> tuple[str, ...]:
    if (r.amount_type, r.amount_description) in _PATHS:
        return _PATHS[(r.amount_type, r.amount_description)]
    if r.amount_type == "ItemWithheldTax":
        return ("Expenses", "TaxWithheld", r.amount_description)
    if r.amount_type == "ItemFees":
        return ("Expenses", "AmazonFees", r.amount_description, "Base")
    return (r.amount_description.replace(" ", ""),)


def _tree(rows: Sequence[SettlementRow], currency: str, depth: int = 0) -> list[dict[str, Any]]:
    groups: dict[str, list[SettlementRow]] = {}
    for r in rows:
        p = _path(r)
        if len(p) > depth:
            groups.setdefault(p[depth], []).append(r)
    out = []
    for name, members in groups.items():
        amount = _q(sum((m.amount for m in members), Decimal(0)), currency)
        out.append({"breakdownType": name, "breakdownAmount": _cur(amount, currency),
                    "breakdowns": _tree(members, currency, depth + 1)})  # fmt: skip
    return out


def _transaction_key(r: SettlementRow) -> tuple[Any, ...]:
    if r.transaction_type in ("Order", "Refund"):
        return (r.transaction_type, r.order_id, r.adjustment_id, r.posted)
    return (id(r),)


_OTHER_TYPES = {
    "Cost of Advertising": ("ProductAdsPayment", "Cost of Advertising"),
    "FBA Inventory Reimbursement": ("Adjustment", "FBAInventoryReimbursement"),
}
_RESERVE = {"Current Reserve Amount", "Previous Reserve Amount Balance"}


def transactions(s: SimSettlement, now: datetime, seller_id: str) -> list[dict[str, Any]]:
    """Finances 2024-06-19 transactions of a settlement (posted by ``now``); they sum to its total."""
    mp = s.marketplace
    grouped: dict[tuple[Any, ...], list[SettlementRow]] = {}
    for r in s.rows_until(now):
        grouped.setdefault(_transaction_key(r), []).append(r)
    out = []
    for n, rows in enumerate(grouped.values()):
        head = rows[0]
        total = _q(sum((r.amount for r in rows), Decimal(0)), s.currency)
        related = [
            {"relatedIdentifierName": "FINANCIAL_EVENT_GROUP_ID", "relatedIdentifierValue": s.group_id}
        ]
        tx: dict[str, Any] = {
            "sellingPartnerMetadata": {"sellingPartnerId": seller_id, "accountType": "Standard Orders",
                                       "marketplaceId": s.marketplace_id},
            "transactionId": f"{s.group_id[:20]}-{n:05d}",
            "transactionStatus": "RELEASED",
            "postedDate": _iso(head.posted),
            "totalAmount": _cur(total, s.currency),
            "marketplaceDetails": {"marketplaceId": s.marketplace_id, "marketplaceName": mp.name},
            "breakdowns": _tree(rows, s.currency),
        }  # fmt: skip
        if head.transaction_type in ("Order", "Refund"):
            refund = head.transaction_type == "Refund"
            related.append({"relatedIdentifierName": "ORDER_ID", "relatedIdentifierValue": head.order_id})
            if refund:
                related.append(
                    {"relatedIdentifierName": "REFUND_ID", "relatedIdentifierValue": head.adjustment_id}
                )
            else:
                related.append(
                    {"relatedIdentifierName": "SHIPMENT_ID", "relatedIdentifierValue": head.shipment_id}
                )
            tx["transactionType"] = "Refund" if refund else "Shipment"
            tx["description"] = "Refund Order" if refund else "Order Payment"
            items: dict[str, list[SettlementRow]] = {}
            for r in rows:
                items.setdefault(r.order_item_code, []).append(r)
            tx["items"] = []
            for code, members in items.items():
                amount = _q(sum((m.amount for m in members), Decimal(0)), s.currency)
                item: dict[str, Any] = {
                    "description": members[0].sku,
                    "totalAmount": _cur(amount, s.currency),
                    # item level: the leaves' own groups (ProductCharges, Tax, AmazonFees…); only the
                    # transaction-level tree carries the Sales/Expenses aggregates, as Amazon's does
                    "breakdowns": _tree(members, s.currency, 1),
                    "contexts": [{"contextType": "ProductContext", "sku": members[0].sku,
                                  "quantityShipped": members[0].quantity or 0,
                                  "fulfillmentNetwork": members[0].fulfillment_id}],
                }  # fmt: skip
                if refund and members[0].merchant_adjustment_item_id:
                    item["relatedIdentifiers"] = [{"itemRelatedIdentifierName": "ORDER_ADJUSTMENT_ITEM_ID",
                                                   "itemRelatedIdentifierValue": members[0].merchant_adjustment_item_id}]  # fmt: skip
                elif code:
                    item["relatedIdentifiers"] = [{"itemRelatedIdentifierName": "TRANSACTION_ID",
                                                   "itemRelatedIdentifierValue": code}]  # fmt: skip
                tx["items"].append(item)
        elif head.amount_description in _RESERVE:
            tx["transactionType"], tx["description"] = "Adjustment", "ReserveEvent"
        else:
            tx["transactionType"], tx["description"] = _OTHER_TYPES.get(
                head.amount_type, ("ServiceFee", head.amount_description)
            )
        tx["relatedIdentifiers"] = related
        out.append(tx)
    return out
