"""Report documents: decoding (gzip, Cp1252 …) and tab-separated parsing by header name.

Two report types are parsed here:

* ``GET_MERCHANT_LISTINGS_ALL_DATA`` → `Listing` (one row per SKU; the report carries no currency, so it
  comes from the marketplace);
* ``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL`` → `Order` (one row per order item, grouped by
  ``amazon-order-id``; ``source="report"``).

Columns are looked up by (normalised) header name, never by position: Amazon adds, drops and reorders
columns, so extra columns are ignored and missing ones become None. Nothing here talks to the network.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from pydantic import ValidationError

from amz2erp.amazon import marketplaces as mp
from amz2erp.models import Address, Listing, Money, Order, OrderItem, OrderStatus, UnparsableOrder

log = logging.getLogger(__name__)

LISTINGS_REPORT = "GET_MERCHANT_LISTINGS_ALL_DATA"
ORDERS_REPORT = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"

DEFAULT_CHARSET = "cp1252"  # what Amazon documents for flat files (Content-Type: text/plain; charset=Cp1252)

# --- decoding ------------------------------------------------------------------------------------------

_CHARSET_ALIASES = {"windows-31j": "cp932", "x-sjis": "cp932", "shift_jis": "cp932", "ms932": "cp932"}


def charset_from_content_type(content_type: str | None, default: str = DEFAULT_CHARSET) -> str:
    """The Python codec for a Content-Type header (``text/plain; charset=Cp1252`` → ``cp1252``)."""
    if content_type:
        m = re.search(r"charset\s*=\s*\"?([A-Za-z0-9._:-]+)", content_type)
        if m:
            name = m.group(1).strip().lower()
            name = _CHARSET_ALIASES.get(name, name)
            try:
                return codecs.lookup(name).name
            except LookupError:
                log.warning("unknown report charset %r, decoding as %s", m.group(1), default)
    return default


def _looks_compressed(head: bytes) -> bool:
    if head[:2] == b"\x1f\x8b":  # gzip magic
        return True
    # a zlib header: deflate method, window <= 32K, header checksum divisible by 31
    return len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] * 256 + head[1]) % 31 == 0


class Decompressor:
    """Incremental gunzip/inflate that passes plain data through.

    Whether the data is compressed is sniffed from its first bytes, whatever ``compressionAlgorithm`` said:
    an HTTP layer that already undid a ``Content-Encoding: gzip`` hands us plain text under a GZIP label."""

    def __init__(self, compressed: bool | None = None) -> None:
        self.declared = compressed  # what the document metadata claimed (informational)
        self._mode: str | None = None
        self._z: Any = None
        self._head = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._mode is None:
            self._head += chunk
            if len(self._head) < 2:
                return b""
            chunk, self._head = self._head, b""
            self._mode = "z" if _looks_compressed(chunk[:2]) else "plain"
        if self._mode == "plain":
            return chunk
        if self._z is None:
            self._z = zlib.decompressobj(15 + 32)  # gzip or zlib, auto-detected
        out: bytes = self._z.decompress(chunk)
        return out

    def flush(self) -> bytes:
        """Finish; raises ``EOFError`` if a compressed stream was cut short."""
        if self._mode is None:
            data, self._head = self._head, b""
            return data
        if self._mode == "plain" or self._z is None:
            return b""
        out: bytes = self._z.flush()
        if not self._z.eof:
            raise EOFError("compressed report document is truncated")
        return out


def decompress_bytes(data: bytes) -> bytes:
    d = Decompressor()
    return d.feed(data) + d.flush()


def text_lines(binary: IO[bytes], charset: str = DEFAULT_CHARSET) -> Iterator[str]:
    """Lines of a decompressed document file, decoded (undecodable bytes become U+FFFD, never an error)."""
    wrapper = io.TextIOWrapper(binary, encoding=charset, errors="replace", newline="")
    try:
        yield from wrapper
    finally:
        # An interrupted run closes the file before this generator is collected: detaching would then flush
        # into the closed file and print "Exception ignored … I/O operation on closed file" at exit.
        if not binary.closed:
            wrapper.detach()


# --- TSV -----------------------------------------------------------------------------------------------


def normalise_header(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.replace("\ufeff", "").strip().lower())


def iter_tsv(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Rows of a tab-separated document as {normalised header: value}. Blank lines are skipped, short rows
    padded, surplus cells dropped."""
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header: list[str] | None = None
    for cells in reader:
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [normalise_header(c) for c in cells]
            continue
        row = {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(header) if h}
        yield row


def _get(row: dict[str, str], *names: str) -> str | None:
    for n in names:
        v = row.get(n)
        if v is not None:
            v = v.strip()
            if v:
                return v
    return None


# --- values --------------------------------------------------------------------------------------------

_TZ_OFFSETS: dict[str, float] = {
    "UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 1, "BST": 1, "IST": 5.5,
    "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "MEZ": 1, "MESZ": 2, "EET": 2, "EEST": 3,
    "PST": -8, "PDT": -7, "MST": -7, "MDT": -6, "CST": -6, "CDT": -5, "EST": -5, "EDT": -4,
    "AKST": -9, "AKDT": -8, "HST": -10, "BRT": -3, "JST": 9, "KST": 9, "SGT": 8, "AEST": 10,
    "AEDT": 11, "ACST": 9.5, "AWST": 8, "GST": 4, "AST": 3, "TRT": 3,
}
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)
_ZONE_RE = re.compile(r"^(?P<dt>.*?)\s*(?P<zone>[A-Z]{1,5}|[+-]\d{2}:?\d{2})$")


def parse_datetime(value: str | None) -> datetime | None:
    """Defensive date parsing for report cells and API strings; None when empty or unreadable.

    Accepts ISO 8601 (``2024-01-02T03:04:05Z``, offsets, fractions), ``2023-02-01 10:00:00 PST`` (zone
    abbreviations: PST/PDT/CET/CEST/MET/JST/GMT/UTC …), numeric offsets and naive values (taken as UTC).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) and not text.endswith(" Z") else text
    try:
        dt = datetime.fromisoformat(iso)
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)
    except ValueError:
        pass
    tz: timezone | None = None
    body = text
    m = _ZONE_RE.match(text)
    if m and m.group("dt"):
        zone = m.group("zone")
        if zone[0] in "+-":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            body = m.group("dt")
        elif zone in _TZ_OFFSETS:
            tz = timezone(timedelta(hours=_TZ_OFFSETS[zone]))
            body = m.group("dt")
    body = body.strip()
    for fmt in _DATE_FORMATS:
        try:
            naive = datetime.strptime(body, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=tz or timezone.utc)
    try:
        dt = datetime.fromisoformat(body)
    except ValueError:
        log.debug("unreadable date %r", value)
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz or timezone.utc)
    return dt


def parse_decimal(value: str | None) -> Decimal | None:
    """``"12.99"``, ``"1,234.50"``, ``"12,99"``, ``"€ 12.99"`` → Decimal; None when empty or unreadable."""
    if value is None:
        return None
    text = re.sub(r"[^\d,.\-+]", "", value.strip())
    if not text or text in "+-.,":
        return None
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = head.replace(",", "") + "." + tail if len(tail) != 3 or not head else text.replace(",", "")
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def parse_int(value: str | None) -> int | None:
    d = parse_decimal(value)
    if d is None:
        return None
    try:
        return int(d)
    except (ValueError, OverflowError):
        return None


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("true", "yes", "y", "1")


# --- listings ------------------------------------------------------------------------------------------


def parse_listings(
    rows: Iterable[dict[str, str]], marketplace_id: str, currency: str | None = None
) -> Iterator[Listing]:
    """`Listing` per row of GET_MERCHANT_LISTINGS_ALL_DATA. Rows without a SKU, or that do not fit the model,
    are logged and skipped (one bad row never stops the report)."""
    if currency is None:
        try:
            currency = mp.resolve(marketplace_id).currency
        except KeyError:
            currency = None
    for n, row in enumerate(rows, start=2):
        sku = row.get("seller-sku") or row.get("sku") or ""
        sku = sku.strip()
        if not sku:
            log.warning("listings report line %d has no seller-sku; skipped", n)
            continue
        try:
            yield Listing(
                sku=sku,
                marketplace_id=marketplace_id,
                asin=_get(row, "asin1", "asin"),
                title=_get(row, "item-name", "product-name", "title"),
                description=_get(row, "item-description", "description"),
                price=parse_decimal(row.get("price")),
                currency=currency,
                quantity=parse_int(row.get("quantity")),
                open_date=parse_datetime(row.get("open-date")),
                image_url=_get(row, "image-url"),
                status=_get(row, "status"),
                fulfillment_channel=_get(row, "fulfillment-channel"),
                listing_id=_get(row, "listing-id"),
                product_id=_get(row, "product-id"),
                product_id_type=_get(row, "product-id-type"),
            )
        except ValidationError as exc:
            log.warning("listings report line %d (SKU %s) skipped: %s", n, sku, exc.errors()[0].get("msg"))


# --- orders --------------------------------------------------------------------------------------------

_REPORT_STATUS = {
    "pendingavailability": OrderStatus.PENDING_AVAILABILITY,
    "pending": OrderStatus.PENDING,
    "unshipped": OrderStatus.UNSHIPPED,
    "partiallyshipped": OrderStatus.PARTIALLY_SHIPPED,
    "shipping": OrderStatus.PARTIALLY_SHIPPED,
    "shipped": OrderStatus.SHIPPED,
    "shipped-deliveredtobuyer": OrderStatus.SHIPPED,
    "invoiceunconfirmed": OrderStatus.INVOICE_UNCONFIRMED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "unfulfillable": OrderStatus.UNFULFILLABLE,
}


def report_status(value: str | None) -> OrderStatus:
    key = re.sub(r"[\s_]", "", (value or "").lower())
    if key in _REPORT_STATUS:
        return _REPORT_STATUS[key]
    if key.startswith("shipped"):
        return OrderStatus.SHIPPED
    raise ValueError(f"unknown order-status {value!r}")


def _channel(value: str | None) -> str:
    v = (value or "").strip().lower()
    if v in ("amazon", "afn") or v.startswith("amazon"):
        return "AFN"
    if v in ("merchant", "mfn", "seller", ""):
        return "MFN"
    raise ValueError(f"unknown fulfillment-channel {value!r}")


def charge(value: Money | None) -> Money | None:
    """Canonical form of an ancillary charge (tax, shipping, discount, gift wrap): a zero amount is "no
    charge" (None), so v0 (which sends 0.00), 2026-01-01 (which omits zero breakdowns) and the report agree."""
    return None if value is None or value.amount == 0 else value


def _money(
    value: str | None, currency: str | None, *, absolute: bool = False, zero_none: bool = True
) -> Money | None:
    amount = parse_decimal(value)
    if amount is None or not currency:
        return None
    m = Money(amount=abs(amount) if absolute else amount, currency=currency)
    return charge(m) if zero_none else m


def _marketplace_for(row: dict[str, str], default: str | None) -> str | None:
    channel = mp.BY_SALES_CHANNEL.get((row.get("sales-channel") or "").strip().lower())
    return channel.marketplace_id if channel else default


def order_from_rows(order_id: str, rows: list[dict[str, str]], default_marketplace_id: str | None) -> Order:
    """One `Order` from the report rows of one amazon-order-id (one row per item). Raises on bad data."""
    first = rows[0]
    purchase = parse_datetime(first.get("purchase-date"))
    updated = parse_datetime(first.get("last-updated-date")) or purchase
    if purchase is None or updated is None:
        raise ValueError("purchase-date is missing or unreadable")
    for r in rows[1:]:
        later = parse_datetime(r.get("last-updated-date"))
        if later is not None and later > updated:
            updated = later
    marketplace_id = _marketplace_for(first, default_marketplace_id)
    if marketplace_id is None:
        raise ValueError(f"unknown sales-channel {first.get('sales-channel')!r}")
    status = report_status(first.get("order-status"))
    # Amazon's documented column list has no tax-collection columns; files seen in the field do. With the
    # column, an empty cell means the seller collects the tax; without it, who collects is unknown and the
    # marketplace's default model stands in (the same answer the API gives for that marketplace's orders).
    has_model_column = "tax-collection-model" in first
    market = mp.BY_ID.get(marketplace_id)
    default_model = market.tax_collection_model if market is not None else None
    items: list[OrderItem] = []
    used_ids: set[str] = set()
    for idx, r in enumerate(rows):
        cur = _get(r, "currency")
        sku = _get(r, "sku", "seller-sku")
        qty = parse_int(r.get("quantity")) or 0
        item_status = (_get(r, "item-status") or "").lower()
        shipped = parse_int(r.get("quantity-shipped"))
        if shipped is None:
            shipped = qty if item_status.startswith("shipped") or status is OrderStatus.SHIPPED else 0
        item_id = _get(r, "order-item-id") or f"{order_id}-{sku or _get(r, 'asin') or idx}"
        if item_id in used_ids:
            item_id = f"{item_id}-{idx}"
        used_ids.add(item_id)
        promo_ids = tuple(p.strip() for p in (r.get("promotion-ids") or "").split(",") if p.strip())
        items.append(
            OrderItem(
                order_item_id=item_id,
                asin=_get(r, "asin"),
                sku=sku,
                title=_get(r, "product-name", "item-name", "title"),
                quantity_ordered=qty,
                quantity_shipped=shipped,
                item_price=_money(r.get("item-price"), cur, zero_none=False),
                item_tax=_money(r.get("item-tax"), cur),
                shipping_price=_money(r.get("shipping-price"), cur),
                shipping_tax=_money(r.get("shipping-tax"), cur),
                gift_wrap_price=_money(r.get("gift-wrap-price"), cur),
                gift_wrap_tax=_money(r.get("gift-wrap-tax"), cur),
                promotion_discount=_money(r.get("item-promotion-discount"), cur, absolute=True),
                shipping_discount=_money(r.get("ship-promotion-discount"), cur, absolute=True),
                tax_collection_model=_get(r, "tax-collection-model") if has_model_column else default_model,
                promotion_ids=promo_ids,
            )
        )
    city = _get(first, "ship-city")
    state = _get(first, "ship-state")
    postal = _get(first, "ship-postal-code")
    country = _get(first, "ship-country")
    address = (
        Address(city=city, state=state, postal_code=postal, country_code=country,
                address_type=_get(first, "address-type"))
        if any((city, state, postal, country))
        else None
    )
    return Order(
        amazon_order_id=order_id,
        marketplace_id=marketplace_id,
        purchase_date=purchase,
        last_update_date=updated,
        status=status,
        fulfillment_channel=_channel(first.get("fulfillment-channel")),  # type: ignore[arg-type]
        sales_channel=_get(first, "sales-channel"),
        is_business_order=parse_bool(first.get("is-business-order")),
        seller_order_id=_get(first, "merchant-order-id"),
        purchase_order_number=_get(first, "purchase-order-number"),
        shipping_address=address,
        items=tuple(items),
        source="report",
        unknown=frozenset() if "order-item-id" in first else frozenset({"order_item_ids"}),
    )


def _group_stamp(rows: list[dict[str, str]]) -> datetime | None:
    """The last update of an order from its rows (the latest last-updated-date, else the purchase-date)."""
    stamps = [d for d in (parse_datetime(r.get("last-updated-date")) for r in rows) if d is not None]
    if stamps:
        return max(stamps)
    return parse_datetime(rows[0].get("purchase-date"))


def count_order_rows(rows: Iterable[dict[str, str]]) -> dict[str, int]:
    """How many rows each amazon-order-id has in an orders report (a first pass for `parse_orders`)."""
    counts: dict[str, int] = {}
    for row in rows:
        oid = (row.get("amazon-order-id") or row.get("order-id") or "").strip()
        if oid:
            counts[oid] = counts.get(oid, 0) + 1
        else:
            log.warning("orders report row without amazon-order-id skipped")
    return counts


def parse_orders(
    rows: Iterable[dict[str, str]],
    default_marketplace_id: str | None = None,
    updated_between: tuple[datetime, datetime] | None = None,
    *,
    row_counts: dict[str, int] | None = None,
) -> Iterator[Order | UnparsableOrder]:
    """Group the rows of one orders report by amazon-order-id (rows of one order need not be adjacent) and
    yield one `Order` each; an order whose rows do not parse yields `UnparsableOrder`.

    ``updated_between=(after, before)`` keeps only orders last updated in [after, before] (an order whose
    date cannot be read is kept: it fails visibly instead of disappearing).

    Without ``row_counts`` the rows of the whole document are held until its end (orders in first-seen order).
    With ``row_counts`` (from `count_order_rows` over the same document) each order is yielded as soon as its
    last row is read, so only orders whose rows are still incomplete are held: in Amazon's files one order's
    rows are adjacent, so memory stays at one order whatever the size of the document."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        oid = (row.get("amazon-order-id") or row.get("order-id") or "").strip()
        if not oid:
            if row_counts is None:
                log.warning("orders report row without amazon-order-id skipped")
            continue
        group = grouped.setdefault(oid, [])
        group.append(row)
        if row_counts is not None and len(group) >= row_counts.get(oid, 0):
            del grouped[oid]
            yield from _order_or_error(oid, group, default_marketplace_id, updated_between)
    for oid in list(grouped):
        yield from _order_or_error(oid, grouped.pop(oid), default_marketplace_id, updated_between)


def _order_or_error(oid: str, order_rows: list[dict[str, str]], default_marketplace_id: str | None,
                    updated_between: tuple[datetime, datetime] | None) -> Iterator[Order | UnparsableOrder]:
    if updated_between is not None:
        stamp = _group_stamp(order_rows)
        if stamp is not None and not updated_between[0] <= stamp <= updated_between[1]:
            return
    try:
        yield order_from_rows(oid, order_rows, default_marketplace_id)
    except (ValueError, ValidationError) as exc:
        msg = exc.errors()[0].get("msg", str(exc)) if isinstance(exc, ValidationError) else str(exc)
        yield UnparsableOrder(
            amazon_order_id=oid,
            marketplace_id=_marketplace_for(order_rows[0], default_marketplace_id),
            error=f"orders report: {msg}",
        )
