"""Reports: the jobs (create or reuse, poll, streamed download), the orders-report windows and plans, and the
flat files they bring.

The I/O half (`ReportPipeline`, at the end): Amazon takes minutes to process a report and allows one
createReport and one getReportDocument a minute after a burst of 15, so windows are never created, polled and
downloaded strictly one after another: the reports of the next windows are asked for while the current one
is read (only when a createReport token is free, also between polls), and polls start when this run's
reports have taken to process. A newest-first walk that backfill announces (`plan_orders_reports`) is
served from 30-day reports on a fixed grid, kept on disk until the walk has passed them, whatever the walk's
chunk size; any other read gets its own windows of ≤ 30 days. Finished reports are listed once per client
for reuse (a resumed backfill meets the same grid windows); documents are parsed in two streaming passes, so
memory holds one order, not one document. The pacing knobs are one `ReportTuning`.

The parsing half (pure, no network): decoding (gzip, Cp1252 …) and tab-separated parsing by header name.

* ``GET_MERCHANT_LISTINGS_ALL_DATA`` → `Listing` (one row per SKU; the report carries no currency, so it
  comes from the marketplace);
* ``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL`` → `Order` (one row per order item, grouped by
  ``amazon-order-id``; ``source="report"``).

Columns are looked up by (normalised) header name, never by position: Amazon adds, drops and reorders
columns, so extra columns are ignored and missing ones become None.

Importing this module stays light (no python-amazon-sp-api): the parsers are used without a client.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any

from pydantic import ValidationError

from amz2erp.amazon import limits
from amz2erp.amazon import marketplaces as mp
from amz2erp.amazon.marketplaces import resolve_ids
from amz2erp.errors import AmazonBadRequestError, AmazonError, AmazonReportError
from amz2erp.models import Address, Listing, Money, Order, OrderItem, OrderStatus, UnparsableOrder

if TYPE_CHECKING:  # the pipeline is handed these; importing them would load python-amazon-sp-api
    from amz2erp.amazon.calls import Caller
    from amz2erp.amazon.transport import ApiResponse, Transport
    from amz2erp.clock import Clock
    from amz2erp.config import AmazonSettings

REPORT_WAIT_SLICE = 15.0  # seconds: prefetching looks for a createReport token this often while waiting
_GRID_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # planned report windows are cut on a 30-day grid
_MIN_DATE = datetime.min.replace(tzinfo=timezone.utc)

log = logging.getLogger("amz2erp.amazon")

LISTINGS_REPORT = "GET_MERCHANT_LISTINGS_ALL_DATA"
ORDERS_REPORT = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
ORDERS_BY_DATE_REPORT = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"  # same columns, by purchase date

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


def iso(dt: datetime) -> str:
    """The UTC second-precision timestamp every SP-API query parameter takes (`parse_datetime` reads it)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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


# --- report jobs, plans, reuse and download (the I/O half of this module) ----------------------------------------------------------------------


@dataclass(eq=False)
class _ReportJob:
    """One report window: asked for (report_id), finished (document_id) or empty (cancelled); its document is
    kept in a temporary file while reads still need it."""

    start: datetime | None
    end: datetime | None
    report_id: str | None = None
    created_at: float | None = None
    document_id: str | None = None
    cancelled: bool = False
    fatal: int = 0
    spool: IO[bytes] | None = None
    charset: str = DEFAULT_CHARSET
    unparsable: set[str] = field(default_factory=set)
    row_counts: dict[str, int] | None = None

    def close(self) -> None:
        self.row_counts = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None


@dataclass(eq=False)
class _OrdersPlan:
    """The windows of an announced newest-first walk (backfill), newest first."""

    jobs: list[_ReportJob]
    created: float

    def covers(self, after: datetime, end: datetime) -> bool:
        if not self.jobs:
            return False
        top, floor = self.jobs[0].end, self.jobs[-1].start
        return top is not None and floor is not None and floor <= after and end <= top

    def close(self) -> None:
        for job in self.jobs:
            job.close()


def _whole(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)


def _window_key(dt: datetime | None) -> str:
    return "" if dt is None else dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ReportTuning:
    """How the report pipeline paces itself (tests and benchmarks shorten these; the defaults suit Amazon).

    ``poll_initial``: first getReport after this long (None: ``[amazon] report_poll_initial``); polls then back
    off ×1.5 up to ``poll_max``. A FATAL report is asked for again after ``fatal_cooldown`` seconds, at most
    ``fatal_retries`` times. A planned walk has at most ``plan_windows`` windows; plans and the list of
    reusable reports are kept ``cache_ttl`` seconds."""

    fatal_cooldown: float = 1800.0
    fatal_retries: int = 1
    poll_initial: float | None = None
    poll_max: float = 60.0
    plan_windows: int = 25
    cache_ttl: float = 24 * 3600.0


class ReportPipeline:
    """Report jobs for one `AmazonClient`: create or reuse, poll, download (streamed), and the orders-report
    windows of one-off reads and of announced newest-first walks."""

    def __init__(self, settings: AmazonSettings, clock: Clock, caller: Caller, transport: Transport,
                 tuning: ReportTuning) -> None:
        self.settings = settings
        self.clock = clock
        self.caller = caller
        self.transport = transport
        self.tuning = tuning
        self.poll_initial = settings.report_poll_initial if tuning.poll_initial is None else tuning.poll_initial
        self._plans: dict[tuple[str, ...], _OrdersPlan] = {}
        self._done_reports: dict[tuple[str, tuple[str, ...]], dict[tuple[str, str], str]] = {}
        self._processing_seen: list[float] = []

    def close(self) -> None:
        for plan in self._plans.values():
            plan.close()
        self._plans.clear()

    def _reusable_reports(self, report_type: str, mids: list[str]) -> dict[tuple[str, str], str]:
        """Finished reports of this type and marketplaces that Amazon still holds: (dataStartTime, dataEndTime)
        → document id. Listed once per client (one getReports page instead of one call per window); the
        reports this client finishes itself are added as they finish."""
        key = (report_type, tuple(sorted(mids)))
        known = self._done_reports.get(key)
        if known is not None:
            return known
        known = {}
        reports = self.transport.api("reports")
        params = {"reportTypes": report_type, "processingStatuses": "DONE", "marketplaceIds": ",".join(mids[:10]),
                  "pageSize": 100}

        def fetch(token: str | None) -> ApiResponse:
            return reports.get_reports(nextToken=token) if token else reports.get_reports(**params)

        try:
            for page in self.caller.pages("getReports", fetch, lambda r: r.next_token,
                                    lambda r: isinstance(r.payload.get("reports"), list), max_pages=3):
                for rep in page.payload["reports"]:
                    if rep.get("reportType") != report_type or not rep.get("reportDocumentId"):
                        continue
                    if sorted(rep.get("marketplaceIds") or []) != sorted(mids):
                        continue
                    window = (_window_key(parse_datetime(rep.get("dataStartTime"))),
                              _window_key(parse_datetime(rep.get("dataEndTime"))))
                    known.setdefault(window, str(rep["reportDocumentId"]))  # newest first: keep the newest
        except AmazonBadRequestError as exc:  # reuse is an optimisation: never fail the run on it
            log.info("could not look for reusable %s reports: %s", report_type, exc)
        self._done_reports[key] = known
        return known

    def _find_done_report(self, report_type: str, mids: list[str], start: datetime | None,
                          end: datetime | None) -> str | None:
        """A finished report of this type/marketplaces/window that we can reuse (its document id)."""
        doc = self._reusable_reports(report_type, mids).get((_window_key(start), _window_key(end)))
        if doc is not None:
            log.info("reusing finished %s report for %s → %s", report_type, _window_key(start), _window_key(end))
        return doc

    def _remember_done(self, report_type: str, mids: list[str], start: datetime | None, end: datetime | None,
                       document_id: str) -> None:
        self._reusable_reports(report_type, mids)[(_window_key(start), _window_key(end))] = document_id

    def _create_report(self, report_type: str, mids: list[str], start: datetime | None = None,
                       end: datetime | None = None) -> str:
        reports = self.transport.api("reports")
        body: dict[str, Any] = {"reportType": report_type, "marketplaceIds": list(mids)}
        if start is not None:
            body["dataStartTime"] = iso(start)
        if end is not None:
            body["dataEndTime"] = iso(end)
        created = self.caller.call("createReport", lambda: reports.create_report(**body),
                             lambda r: bool(r.payload.get("reportId")))
        return str(created.payload["reportId"])

    def run_report(self, report_type: str, mids: list[str], start: datetime | None = None,
                    end: datetime | None = None, *, reuse: bool = False) -> str | None:
        """createReport → poll getReport → the DONE report's document id; None when CANCELLED (no data).
        FATAL is retried after ``ReportTuning.fatal_cooldown`` up to ``ReportTuning.fatal_retries`` times."""
        job = _ReportJob(start, end)
        self._start_job(report_type, mids, job, reuse=reuse)
        self._finish_job(report_type, mids, job)
        return job.document_id

    def _start_job(self, report_type: str, mids: list[str], job: _ReportJob, *, reuse: bool) -> None:
        """Reuse a finished report of the job's window, or ask Amazon for one (without waiting for it)."""
        if job.report_id is not None or job.document_id is not None or job.cancelled:
            return
        if reuse:
            doc = self._find_done_report(report_type, mids, job.start, job.end)
            if doc is not None:
                job.document_id = doc
                return
        job.report_id = self._create_report(report_type, mids, job.start, job.end)
        job.created_at = self.clock.monotonic()

    def _finish_job(self, report_type: str, mids: list[str], job: _ReportJob,
                    between_polls: Callable[[], None] | None = None) -> None:
        """Wait until the job's report is DONE (document id), CANCELLED (no data) or FATAL (after
        ``ReportTuning.fatal_cooldown``, asked for again, up to ``ReportTuning.fatal_retries`` times)."""
        while job.document_id is None and not job.cancelled:
            if job.report_id is None:
                self._start_job(report_type, mids, job, reuse=False)
                continue
            final = self._poll_report(job.report_id, job.created_at, between_polls)
            status = final.get("processingStatus")
            if status == "DONE":
                doc = final.get("reportDocumentId")
                if not doc:
                    raise AmazonReportError(f"report {job.report_id} ({report_type}) is DONE without a document")
                job.document_id = str(doc)
                if job.start is not None or job.end is not None:
                    self._remember_done(report_type, mids, job.start, job.end, job.document_id)
                return
            if status == "CANCELLED":
                log.info("report %s (%s) was cancelled by Amazon: no data", job.report_id, report_type)
                job.cancelled = True
                return
            job.fatal += 1
            if job.fatal > self.tuning.fatal_retries:
                raise AmazonReportError(f"report {job.report_id} ({report_type}) ended FATAL "
                                        f"{job.fatal} time(s); giving up")
            log.warning("report %s (%s) ended FATAL; trying again in %.0fs", job.report_id, report_type,
                        self.tuning.fatal_cooldown)
            self.clock.sleep(self.tuning.fatal_cooldown)
            job.report_id = None

    def _poll_report(self, report_id: str, created_at: float | None = None,
                     between_polls: Callable[[], None] | None = None) -> dict[str, Any]:
        """getReport until DONE/CANCELLED/FATAL, with backoff. A report asked for a while ago (prefetched) is
        polled at once; a fresh one first after ``poll_initial`` (``[amazon] report_poll_initial``).
        ``between_polls`` runs before each wait (prefetching other windows' reports)."""
        reports = self.transport.api("reports")
        started = self.clock.monotonic() if created_at is None else created_at
        delay = self.poll_initial
        if created_at is not None:
            # the first poll when the report can be done: after report_poll_initial, or after the processing
            # time Amazon took for this run's earlier reports (fewer getReport calls, no blind backoff)
            first = max(self.poll_initial, self._expected_processing())
            age = self.clock.monotonic() - started
            if age < first:
                self._wait(first - age, between_polls)
                delay = min(delay * 1.5, self.tuning.poll_max)
        while True:
            res = self.caller.call("getReport", lambda: reports.get_report(report_id),
                             lambda r: bool(r.payload.get("processingStatus")))
            payload: dict[str, Any] = res.payload
            if payload["processingStatus"] in ("DONE", "CANCELLED", "FATAL"):
                self._observe_processing(payload)
                return payload
            if self.clock.monotonic() - started + delay > self.settings.report_poll_ceiling:
                raise AmazonReportError(
                    f"report {report_id} still {payload['processingStatus']} after "
                    f"{self.clock.monotonic() - started:.0f}s (report_poll_ceiling)")
            self._wait(delay, between_polls)
            delay = min(delay * 1.5, self.tuning.poll_max)

    def _wait(self, seconds: float, between: Callable[[], None] | None) -> None:
        """Sleep on the clock; with ``between``, in slices of at most ``REPORT_WAIT_SLICE`` seconds with
        ``between`` before each (so prefetching uses rate-limit tokens as soon as they refill)."""
        until = self.clock.monotonic() + seconds
        while True:
            left = until - self.clock.monotonic()
            if left <= 0:
                return
            if between is None:
                self.clock.sleep(left)
                return
            between()
            self.clock.sleep(min(left, REPORT_WAIT_SLICE))

    def _observe_processing(self, payload: dict[str, Any]) -> None:
        created = parse_datetime(payload.get("createdTime"))
        ended = parse_datetime(payload.get("processingEndTime"))
        if created is not None and ended is not None and ended >= created:
            self._processing_seen.append((ended - created).total_seconds())
            del self._processing_seen[:-10]

    def _expected_processing(self) -> float:
        """How long this run's reports took to process (the median of the last ten), 0 before the first."""
        seen = sorted(self._processing_seen)
        return seen[len(seen) // 2] if seen else 0.0

    def _download_document(self, document_id: str) -> tuple[IO[bytes], str]:
        """The report document, decompressed into a temporary file (rewound), and its charset."""
        reports = self.transport.api("reports")

        def document_meta() -> ApiResponse:
            return self.caller.call("getReportDocument", lambda: reports.get_report_document(document_id),
                                    lambda r: bool(r.payload.get("url")))

        meta = document_meta()
        refreshed = False

        def fresh_url(error: AmazonError) -> bool:
            """``recover`` policy: the presigned URL expired (after 5 minutes): ask for a fresh one, once."""
            nonlocal meta, refreshed
            if refreshed:
                raise AmazonReportError(f"report document {document_id} could not be downloaded") from None
            refreshed = True
            meta = document_meta()
            return True

        return self.caller.call(
            "downloadReportDocument",
            lambda: self.transport.download(str(meta.payload["url"]),
                                            bool(meta.payload.get("compressionAlgorithm")) or None),
            limited=False, recover=fresh_url)

    @contextlib.contextmanager
    def raw_document(self, document_id: str) -> Iterator[tuple[IO[bytes], str]]:
        """The report document as a rewound binary temporary file and its charset, for a parser that decodes
        and sniffs the bytes itself (the settlement report)."""
        spool, charset = self._download_document(document_id)
        try:
            yield spool, charset
        finally:
            spool.close()

    @contextlib.contextmanager
    def document(self, document_id: str) -> Iterator[Iterator[str]]:
        """The report document as decoded text lines, streamed to a temporary file (one document at a time)."""
        spool, charset = self._download_document(document_id)
        try:
            yield text_lines(spool, charset)
        finally:
            spool.close()

    def plan_orders_reports(self, marketplace_ids: list[str], start: datetime, end: datetime) -> None:
        """Announce a newest-first walk over [start, end] (backfill does, before its first chunk): the reports
        of its ≤ 30-day grid windows are then asked for ahead of the reads and each document serves every read
        that falls into its window, whatever the read's size. Nothing is guessed: without it, every read gets
        its own windows."""
        mids = resolve_ids(marketplace_ids)
        plan = self._backward_plan(mids, _whole(end), _whole(start))
        old = self._plans.pop(tuple(mids), None)
        if old is not None:
            old.close()
        self._plans[tuple(mids)] = plan

    def _backward_plan(self, mids: list[str], top: datetime, floor: datetime) -> _OrdersPlan:
        """Windows from ``top`` down to ``floor`` (``ReportTuning.plan_windows`` at most), cut on a fixed 30-day
        grid so that a resumed run meets the same windows and reuses their reports."""
        jobs: list[_ReportJob] = []
        upper = top
        while upper > floor and len(jobs) < self.tuning.plan_windows:
            window = limits.REPORT_WINDOW
            grid = _GRID_EPOCH + ((upper - _GRID_EPOCH - timedelta(seconds=1)) // window) * window
            lower = max(floor, grid)
            jobs.append(_ReportJob(lower, upper))
            upper = lower
        return _OrdersPlan(jobs=jobs, created=self.clock.monotonic())

    def _jobs_for(self, mids: list[str], after: datetime, end: datetime, *,
                  planned: bool = True) -> tuple[list[_ReportJob], list[_ReportJob]]:
        """(the windows serving the read [after, end], in serving order; the sequence they belong to, in the
        same order, whose later windows are asked for ahead). A read inside the announced walk is served
        from its windows; any other read (sync-orders, retry) gets its own windows of ≤ 30 days."""
        key = tuple(mids)
        plan = self._plans.get(key)
        if plan is not None and self.clock.monotonic() - plan.created > self.tuning.cache_ttl:
            plan.close()
            self._plans.pop(key, None)
            plan = None
        if planned and plan is not None and plan.covers(after, end):
            serving = [j for j in plan.jobs if j.start is not None and j.end is not None
                       and j.start < end and j.end > after]
            return serving, plan.jobs
        # a one-off read (sync-orders): its own windows of ≤ 30 days, oldest first
        jobs: list[_ReportJob] = []
        start = after
        while start < end:
            stop = min(start + limits.REPORT_WINDOW, end)
            jobs.append(_ReportJob(start, stop))
            start = stop
        return jobs, jobs

    def fetch_orders_report(
        self, marketplace_ids: list[str], updated_after: datetime, updated_before: datetime, *,
        by_order_date: bool = False,
    ) -> Iterator[Order | UnparsableOrder]:
        """Orders last updated in [updated_after, updated_before] from
        GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL, in windows of ≤ 30 days, each order once.

        The reports of the next windows are asked for while the current one is read (Amazon processes them in
        parallel); a finished report of the same window is reused; CANCELLED windows have no data; FATAL ones
        are asked for again after Amazon's cooldown. Reads of a newest-first walk (backfill chunks of any
        size) are served from 30-day documents kept on disk until the walk has passed them.
        ``source="report"``.

        ``by_order_date``: orders *placed* in the range instead (GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL,
        what `audit` reads), each window its own report, nothing filtered by last update."""
        report_type = ORDERS_BY_DATE_REPORT if by_order_date else ORDERS_REPORT
        if updated_after.tzinfo is None or updated_before.tzinfo is None:
            raise ValueError("updated_after/updated_before must be timezone-aware")
        mids = resolve_ids(marketplace_ids)
        # whole seconds: Amazon echoes report windows to the second, and reuse compares them
        end = _whole(min(updated_before, self.clock.now() - limits.ORDERS_LAG))
        after = _whole(updated_after)
        if after >= end:
            return
        default_mid = mids[0] if len(mids) == 1 else None
        serving, sequence = self._jobs_for(mids, after, end, planned=not by_order_date)
        planned = None if by_order_date else self._plans.get(tuple(mids))
        previous: dict[str, datetime] = {}  # the orders of the previous window (boundary duplicates)
        try:
            for job in serving:
                self._start_job(report_type, mids, job, reuse=True)
                here = next(i for i, j in enumerate(sequence) if j is job)
                # every window of a one-off read or of an announced walk will be read: keep all of them asked for
                # (within the createReport burst, then as tokens refill)
                ahead = sequence[here + 1:]

                def prefetch(ahead: list[_ReportJob] = ahead) -> None:
                    # keep the next windows' reports processing on Amazon's side, but never wait for a
                    # createReport token: called again between polls, when the bucket has refilled
                    for other in ahead:
                        if other.report_id is None and other.document_id is None and not other.cancelled:
                            if not self.caller.limiter.ready("createReport"):
                                return
                            self._start_job(report_type, mids, other, reuse=True)

                prefetch()
                self._finish_job(report_type, mids, job, prefetch)
                current: dict[str, datetime] = {}
                if job.document_id is not None:
                    if job.spool is None:
                        job.spool, job.charset = self._download_document(job.document_id)
                        # first pass: rows per order, so the second streams orders out as they complete
                        job.row_counts = count_order_rows(iter_tsv(text_lines(job.spool, job.charset)))
                    job.spool.seek(0)
                    whole_window = by_order_date or (job.start is not None and after <= job.start
                                                     and job.end is not None and job.end <= end)
                    for record in parse_orders(iter_tsv(text_lines(job.spool, job.charset)), default_mid,
                                                  None if whole_window else (after, end),
                                                  row_counts=job.row_counts):
                        stamp = record.last_update_date if isinstance(record, Order) else None
                        key = record.amazon_order_id
                        if stamp is None:
                            if key in job.unparsable:
                                continue  # an unreadable order is reported once per window
                            job.unparsable.add(key)
                        if key in previous and (stamp is None or stamp <= previous[key]):
                            continue  # the same order on a window boundary
                        current[key] = stamp or _MIN_DATE
                        yield record
                previous = current
                if planned is None or not any(j is job for j in planned.jobs) or \
                        (job.start is not None and job.start >= after):
                    job.close()  # a newest-first walk never comes back to a window it has passed
        finally:
            if planned is None or self._plans.get(tuple(mids)) is not planned:
                for job in serving:
                    job.close()
