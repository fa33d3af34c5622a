"""Amazon settlements as typed data: the V2 flat-file settlement report and Finances transactions.

A settlement is what Amazon pays out (or charges) for one period; its rows must add up to its
``total-amount`` to the cent, or it is not posted. Two sources produce the same :class:`Settlement`:

* :func:`parse_settlement_report` streams a ``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2`` document (a file
  the user downloaded from Seller Central, or the Reports API document): gzip or plain, UTF-8 (with or
  without BOM), Cp1252 or UTF-16 with BOM; tab-separated with a header line; columns found by NAME; the
  settlement header values (dates, total, currency) only on the first data row; local number formats
  (``95,00``, ``1.234,56``) and the date formats Amazon uses.
* :func:`settlement_from_transactions` rebuilds a closed financial event group from Finances 2024-06-19
  ``listTransactions`` answers, and accepts it only when the transactions add up to the group's
  ``OriginalTotal`` to the cent; otherwise the settlement file is needed.

Amounts are integers in the currency's minor unit (cents; yen for JPY), so every sum is exact. Nothing here
talks to the network, reads the clock or writes anything.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import IO, Any

from amz2erp.amazon.reports import Decompressor, charset_from_content_type, normalise_header
from amz2erp.errors import RecordError
from amz2erp.mapping import _ZERO_DECIMAL_CURRENCIES

__all__ = [
    "REPORT_TYPE",
    "MissingColumnError",
    "NeedsSettlementFileError",
    "NotASettlementFileError",
    "Settlement",
    "SettlementError",
    "SettlementFileError",
    "SettlementImbalanceError",
    "SettlementOpenError",
    "SettlementRow",
    "SettlementSource",
    "SettlementValueError",
    "TruncatedSettlementFileError",
    "UnknownEncodingError",
    "currency_exponent",
    "format_minor",
    "parse_amount",
    "parse_settlement_report",
    "rows_from_transactions",
    "settlement_from_transactions",
    "to_minor",
]

REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"

#: Columns without which a V2 file cannot be turned into a balanced settlement.
REQUIRED_COLUMNS = (
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
    "transaction-type",
    "order-id",
    "amount-type",
    "amount-description",
    "amount",
)

_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------- errors


class SettlementError(RecordError):
    """A settlement that cannot be posted. One settlement (or file) fails; the others of the run go on."""


class SettlementFileError(SettlementError):
    """The document cannot be read as a V2 settlement report."""


class NotASettlementFileError(SettlementFileError):
    pass


class TruncatedSettlementFileError(SettlementFileError):
    pass


class MissingColumnError(SettlementFileError):
    pass


class UnknownEncodingError(SettlementFileError):
    pass


class SettlementValueError(SettlementFileError):
    """A cell that cannot be read (amount, date, currency) or rows that contradict the header."""


class SettlementOpenError(SettlementError):
    """The financial event group is still open: its total is a running balance, not a payout."""


class SettlementImbalanceError(SettlementError):
    """The rows do not add up to the total Amazon reported: the settlement is reported, never posted."""

    def __init__(self, message: str, *, settlement_id: str, currency: str, reported: Decimal, rows_sum: Decimal) -> None:
        super().__init__(message)
        self.settlement_id = settlement_id
        self.currency = currency
        self.reported = reported
        self.rows_sum = rows_sum

    @property
    def difference(self) -> Decimal:
        return self.reported - self.rows_sum


class NeedsSettlementFileError(SettlementImbalanceError):
    """Finances transactions of a closed group do not add up to the group total: only the V2 file will do."""


# --------------------------------------------------------------------------------------------- money


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in amounts of ``currency`` (2, or 0 for JPY and friends)."""
    return 0 if currency.upper() in _ZERO_DECIMAL_CURRENCIES else 2


def format_minor(minor: int, currency: str) -> str:
    """``13936, "USD"`` → ``"139.36"``."""
    return f"{Decimal(minor).scaleb(-currency_exponent(currency)):.{currency_exponent(currency)}f}"


def to_minor(value: Decimal | int | float | str, currency: str) -> int:
    """An API amount (JSON number or string) → minor units; a ValueError when it has finer digits than the
    currency allows (an amount we could not post exactly)."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a number")
    scaled = amount.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more decimals than {currency.upper()} allows")
    return int(scaled)


_AMOUNT_CHARS = re.compile(r"^[+-]?[0-9][0-9.,']*$")
_PLAIN_AMOUNT = re.compile(r"(-?)(\d{1,15})[.,](\d{2})\Z")


def parse_amount(text: str, currency: str) -> int:
    """A settlement amount in any of Amazon's local formats → minor units.

    ``139.36``, ``-10.00``, ``95,00``, ``1.234,56``, ``1,234.56``, ``1'234.56``, ``1234`` (JPY). The decimal
    separator is the last ``.`` or ``,`` when one or two digits follow it (or when both separators appear);
    a single separator followed by exactly three digits groups thousands (no marketplace currency has three
    decimals), and so does a repeated one (``1.234.567``, Indian ``12,34,567``). A ValueError for anything
    else, including digits finer than the currency's minor unit.
    """
    m = _PLAIN_AMOUNT.match(text)
    if m is not None and len(m.group(3)) == currency_exponent(currency):  # the common case, quickly
        value = int(m.group(2) + m.group(3))
        return -value if m.group(1) else value
    s = text.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if s.endswith("-") and s[:-1] and s[0] not in "+-":  # "12,50-" (some locales write the sign last)
        s = "-" + s[:-1]
    if not _AMOUNT_CHARS.match(s):
        raise ValueError(f"{text!r} is not an amount")
    sign = -1 if s[0] == "-" else 1
    body = s.lstrip("+-").replace("'", "")
    last = max(body.rfind("."), body.rfind(","))
    integer, fraction = body, ""
    if last >= 0:
        sep = body[last]
        tail = body[last + 1 :]
        other = "," if sep == "." else "."
        decimal_sep = other in body or (body.count(sep) == 1 and len(tail) != 3)
        if decimal_sep:
            integer, fraction = body[:last], tail
            if not fraction.isdigit():
                raise ValueError(f"{text!r} is not an amount")
        groups = re.split(r"[.,]", integer)
        # thousands (1.234.567) or Indian lakh grouping (12,34,567); "0.005" is no grouping of 5
        if len(groups) > 1 and (
            not 1 <= len(groups[0]) <= 3
            or groups[0] == "0"
            or len(groups[-1]) != 3
            or any(len(g) not in (2, 3) for g in groups[1:-1])
        ):
            raise ValueError(f"{text!r} is not an amount (digit grouping)")
        integer = "".join(groups)
    if not integer.isdigit():
        raise ValueError(f"{text!r} is not an amount")
    exp = currency_exponent(currency)
    if len(fraction) > exp and fraction[exp:].strip("0"):
        raise ValueError(f"{text!r} has more decimals than {currency.upper()} allows")
    fraction = (fraction[:exp]).ljust(exp, "0")
    return sign * int(integer + fraction)


# --------------------------------------------------------------------------------------------- models


class SettlementSource(str, Enum):
    REPORT = "report"  # the Reports API document
    FILE = "file"  # a V2 file the user gave
    TRANSACTIONS = "transactions"  # Finances 2024-06-19 listTransactions, one financial event group


@dataclass(frozen=True, slots=True)
class SettlementRow:
    """One money row of a settlement. ``amount_minor`` is signed as Amazon signs it: positive = to the
    seller. From listTransactions, ``amount_type`` is the top breakdown and ``amount_description`` the path
    below it (``AmazonFees`` / ``Commission/Base``)."""

    settlement_id: str
    source: SettlementSource
    transaction_type: str
    amount_type: str
    amount_description: str
    amount_minor: int
    currency: str
    order_id: str = ""
    adjustment_id: str = ""
    shipment_id: str = ""
    marketplace_name: str = ""
    sku: str = ""
    order_item_code: str = ""
    qty: int | None = None
    posted_at: datetime | None = None
    fulfillment_id: str = ""
    line: int = 0  # line in the file (1 = header line), or 1-based transaction index

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-currency_exponent(self.currency))

    @property
    def key(self) -> str:
        """``transaction-type|amount-type|amount-description``: what the category table matches."""
        return f"{self.transaction_type}|{self.amount_type}|{self.amount_description}"


@dataclass(frozen=True, slots=True)
class Settlement:
    """A settlement header and all its rows. ``total_minor`` is the payout (negative: Amazon charges)."""

    settlement_id: str
    source: SettlementSource
    start: datetime
    end: datetime
    deposit_at: datetime
    total_minor: int
    currency: str
    rows: tuple[SettlementRow, ...]
    marketplaces: tuple[str, ...] = ()
    group_id: str | None = None
    converted_total: Decimal | None = None
    converted_currency: str | None = None
    fund_transfer_status: str | None = None
    trace_id: str | None = None
    file_sha256: str | None = None

    @property
    def deposit_date(self) -> date:
        """The posting date: the deposit's UTC date."""
        return self.deposit_at.astimezone(timezone.utc).date()

    @property
    def total(self) -> Decimal:
        return Decimal(self.total_minor).scaleb(-currency_exponent(self.currency))

    @property
    def rows_sum_minor(self) -> int:
        return sum(r.amount_minor for r in self.rows)

    def check_balance(self) -> None:
        """Raise :class:`SettlementImbalanceError` unless Σ rows = total-amount to the cent."""
        rows_sum = self.rows_sum_minor
        if rows_sum != self.total_minor:
            reported, summed = format_minor(self.total_minor, self.currency), format_minor(rows_sum, self.currency)
            diff = format_minor(self.total_minor - rows_sum, self.currency)
            raise SettlementImbalanceError(
                f"settlement {self.settlement_id} does not balance: Amazon reported {reported} {self.currency}, "
                f"rows sum to {summed} (difference {diff}); not posted — ask Amazon to reissue the file",
                settlement_id=self.settlement_id,
                currency=self.currency,
                reported=Decimal(reported),
                rows_sum=Decimal(summed),
            )


# --------------------------------------------------------------------------------------------- dates

_ZONE = re.compile(r"^(?P<body>.*?)\s*(?:(?P<name>UTC|GMT|Z)|(?P<offset>[+-]\d{2}:?\d{2}))?$", re.IGNORECASE)
_DATE_PARTS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y")
_TIME_PARTS = (" %H:%M:%S", "T%H:%M:%S", " %H:%M", "")
#: Every date layout seen in V2 files (US/ISO, JP slashes, EU dots, day- or month-first slashes).
DATE_FORMATS = tuple(d + t for d in _DATE_PARTS for t in _TIME_PARTS)


def _split_zone(text: str) -> tuple[str, timezone] | None:
    m = _ZONE.match(text.strip())
    if m is None:
        return None
    body = m.group("body").strip()
    body = re.sub(r"(:\d\d)\.\d+$", r"\1", body)  # fractional seconds carry no meaning here
    offset = m.group("offset")
    if offset:
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        return body, timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return body, timezone.utc  # settlement times are UTC; a missing zone means UTC too


def _parse_with(text: str, fmt: str) -> datetime | None:
    split = _split_zone(text)
    if split is None:
        return None
    body, tz = split
    try:
        return datetime.strptime(body, fmt).replace(tzinfo=tz)
    except ValueError:
        return None


def _header_dates(start: str, end: str, deposit: str, where: str) -> tuple[datetime, datetime, datetime, str]:
    """The three header dates and the format they share. Slash dates can be read day- or month-first: the
    reading where start < end ≤ deposit within a normal period wins; two valid readings are an error."""
    readings: dict[tuple[datetime, datetime, datetime], str] = {}
    for fmt in DATE_FORMATS:
        parsed = [_parse_with(v, fmt) for v in (start, end, deposit)]
        if all(p is not None for p in parsed):
            s, e, d = parsed
            assert s is not None and e is not None and d is not None
            readings.setdefault((s, e, d), fmt)
    if not readings:
        raise SettlementValueError(
            f"{where}: unreadable settlement dates {start!r}, {end!r}, {deposit!r}"
        )
    ordered = {k: f for k, f in readings.items() if k[0] < k[1] and k[2] >= k[0]}
    if not ordered:
        raise SettlementValueError(f"{where}: settlement-start-date {start!r} is not before settlement-end-date {end!r}")
    if len(ordered) > 1:
        # Amazon settles every 14 days (or earlier on request); a reading with a plausible period wins.
        plausible = {k: f for k, f in ordered.items() if k[1] <= k[2] and k[1] - k[0] <= timedelta(days=35)}
        if plausible:
            ordered = plausible
    if len(ordered) > 1:
        raise SettlementValueError(
            f"{where}: ambiguous settlement dates {start!r}, {end!r}, {deposit!r} (day or month first?)"
        )
    (s, e, d), fmt = next(iter(ordered.items()))
    return s, e, d, fmt


_ISO_LIKE = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S")


_INTEGER = re.compile(r"-?\d+")
_ISO_UTC = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?: UTC| GMT|Z|\+00:?00)?\Z")


def _posted_at(row: Mapping[str, str], header_fmt: str, memo: dict[str, datetime | None]) -> datetime | None:
    """When a row was posted: ``posted-date-time`` in the header's layout or an ISO layout. Informational
    only (nothing is booked by it), so an unreadable value gives None rather than failing the file.
    ``memo`` remembers the values already read (the rows of one order share their time)."""
    text = row.get("posted-date-time", "") or row.get("posted-date", "")
    if not text:
        return None
    if text in memo:
        return memo[text]
    m = _ISO_UTC.match(text)
    result: datetime | None = None
    if m is not None:
        try:
            y, mo, d, h, mi, sec = (int(g) for g in m.groups())
            result = datetime(y, mo, d, h, mi, sec, tzinfo=timezone.utc)
        except ValueError:
            result = None
    elif row.get("posted-date-time"):
        for fmt in (header_fmt, *_ISO_LIKE):
            result = _parse_with(text, fmt)
            if result is not None:
                break
    else:
        result = _parse_with(text, header_fmt.split(" ")[0].split("T")[0])
    memo[text] = result
    return result


# --------------------------------------------------------------------------------------------- decoding


def _chunks(source: bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes]) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk
        except OSError as exc:
            raise SettlementFileError(f"{os.fspath(source)}: cannot read ({exc.strerror})") from None
        return
    while chunk := source.read(_CHUNK):
        yield chunk


class _Reader:
    """Decompressed, decoded lines of a document, with the SHA-256 of its decompressed bytes.

    Lines are split on bytes and decoded one by one: UTF-8 when the line is valid UTF-8, else the declared
    charset (default Cp1252, what Amazon documents for flat files; Windows-31J for a JPY settlement). A
    split on ``\\n`` is safe for UTF-8, Cp1252 and Shift-JIS; UTF-16 (Excel's "Unicode text") is recognised
    by its BOM and decoded as a stream instead."""

    def __init__(self, chunks: Iterable[bytes], where: str, charset: str | None) -> None:
        self.where = where
        self.sha = hashlib.sha256()
        self.last_line_complete = True
        self._chunks = chunks
        self._fallback = "cp1252"
        self.declared = bool(charset)
        if charset:
            # the Reports API's spelling (Cp1252, Windows-31J …) → a Python codec; "" when unknown
            self._fallback = charset_from_content_type(f"charset={charset}", default="")
            if not self._fallback:
                raise UnknownEncodingError(f"{where}: unknown encoding {charset!r}")

    def _plain(self) -> Iterator[bytes]:
        d = Decompressor()
        try:
            for chunk in self._chunks:
                out = d.feed(chunk)
                if out:
                    self.sha.update(out)
                    yield out
            out = d.flush()
        except EOFError:
            raise TruncatedSettlementFileError(f"{self.where}: truncated file (the compressed data ends early)") from None
        except zlib.error:
            raise TruncatedSettlementFileError(f"{self.where}: damaged compressed data") from None
        if out:
            self.sha.update(out)
            yield out

    def lines(self) -> Iterator[tuple[int, str]]:
        stream = self._plain()
        head = b""
        for chunk in stream:
            head += chunk
            if len(head) >= 16:
                break
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            yield from self._utf16_lines(head, stream)
            return
        if head.startswith(b"PK\x03\x04"):
            raise NotASettlementFileError(f"{self.where}: a zip archive, not a settlement report (extract the .txt first)")
        if head[:64].lstrip(codecs.BOM_UTF8 + b" \t\r\n").startswith(b"<"):
            raise NotASettlementFileError(
                f"{self.where}: XML or HTML, not a V2 flat-file settlement report (download the Flat File V2)"
            )
        if head.startswith(b"%PDF"):
            raise NotASettlementFileError(f"{self.where}: a PDF, not a settlement report (download the Flat File V2)")
        yield from self._byte_lines(head, stream)

    def use_fallback(self, codec: str) -> None:
        """Decode the lines still to come that are not UTF-8 with ``codec`` (lines decode lazily)."""
        self._fallback = codec

    def _decode(self, raw: bytes, number: int) -> str:
        if b"\x00" in raw:
            raise UnknownEncodingError(
                f"{self.where}: line {number} holds NUL bytes: unknown encoding (expected UTF-8 or Cp1252 text)"
            )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        try:
            return raw.decode(self._fallback)
        except UnicodeDecodeError:
            raise UnknownEncodingError(
                f"{self.where}: line {number} is neither UTF-8 nor {self._fallback}: unknown encoding"
            ) from None

    def _byte_lines(self, head: bytes, rest: Iterator[bytes]) -> Iterator[tuple[int, str]]:
        buf = b""
        number = 0
        for chunk in _chain(head, rest):
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                number += 1
                yield number, self._text(self._decode(raw, number), number)
        if buf:
            number += 1
            self.last_line_complete = False
            yield number, self._text(self._decode(buf, number), number)

    @staticmethod
    def _text(text: str, number: int) -> str:
        text = text.removesuffix("\r")
        return text.removeprefix("\ufeff") if number == 1 else text

    def _utf16_lines(self, head: bytes, rest: Iterator[bytes]) -> Iterator[tuple[int, str]]:
        decoder = codecs.getincrementaldecoder("utf-16")(errors="strict")
        buf = ""
        number = 0
        try:
            for chunk in _chain(head, rest):
                buf += decoder.decode(chunk)
                *complete, buf = buf.split("\n")
                for text in complete:
                    number += 1
                    yield number, text.removesuffix("\r")
            buf += decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UnknownEncodingError(f"{self.where}: damaged UTF-16 text: unknown encoding") from None
        if buf:
            number += 1
            self.last_line_complete = False
            yield number, buf.removesuffix("\r")


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


# --------------------------------------------------------------------------------------------- V2 parser

_OTHER_REPORTS = (
    ("amazon-order-id", "an orders report"),
    ("seller-sku", "a listings or inventory report"),
    ("order-id", "a report of orders or returns"),
)


def _classify_header(header: Sequence[str], where: str) -> None:
    names = set(header)
    if "settlement-id" not in names:
        hint = next((what for col, what in _OTHER_REPORTS if col in names), None)
        kind = f"looks like {hint}" if hint else "no settlement-id column"
        raise NotASettlementFileError(f"{where}: not a V2 settlement report ({kind})")
    if "amount-type" not in names and ("price-type" in names or "item-related-fee-type" in names):
        raise NotASettlementFileError(
            f"{where}: a V1 settlement flat file, which Amazon retired; download the Flat File V2 of this settlement"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise MissingColumnError(f"{where}: not a complete V2 settlement report: missing column(s) {', '.join(missing)}")


def parse_settlement_report(
    source: bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes],
    *,
    name: str | None = None,
    charset: str | None = None,
    origin: SettlementSource = SettlementSource.FILE,
) -> Settlement:
    """Stream a V2 flat-file settlement report (path, bytes or binary stream; gzip or plain) into one
    balanced :class:`Settlement`.

    ``name`` labels error messages (default: the path, or "settlement report"); ``charset`` is the
    document's declared charset for lines that are not UTF-8 (default Cp1252). Every failure is a
    :class:`SettlementFileError` with one line of text, or :class:`SettlementImbalanceError` when the rows do
    not add up to ``total-amount``.
    """
    where = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "settlement report")
    reader = _Reader(_chunks(source), where, charset)
    header: list[str] | None = None
    width = last_required = 0
    first: dict[str, str] | None = None
    header_fmt = ""
    settlement_id = currency = ""
    total_minor = 0
    start = end = deposit = datetime.min.replace(tzinfo=timezone.utc)
    rows: list[SettlementRow] = []
    marketplaces: set[str] = set()
    posted_memo: dict[str, datetime | None] = {}

    for number, text in reader.lines():
        if not text.strip():
            continue
        cells = text.split("\t")
        if header is None:
            if len(cells) < 2:
                raise NotASettlementFileError(f"{where}: not a V2 settlement report (not tab-separated text)")
            header = [normalise_header(c) for c in cells]
            width = len(header)
            _classify_header(header, where)
            last_required = max(header.index(c) for c in REQUIRED_COLUMNS)
            continue
        if len(cells) > width:
            if any(c.strip() for c in cells[width:]):
                raise SettlementValueError(f"{where}: line {number} has {len(cells)} columns, the header {width}")
            cells = cells[:width]
        elif len(cells) < width:
            # A short row is padded (empty trailing cells), unless it is the unterminated last line and
            # stops before a column we need: then the file was cut off.
            if not reader.last_line_complete and len(cells) <= last_required:
                raise TruncatedSettlementFileError(f"{where}: truncated file (line {number} ends mid-row)")
            cells += [""] * (width - len(cells))
        row = {h: c.strip() for h, c in zip(header, cells, strict=True)}

        if first is None:
            first = row
            settlement_id = row["settlement-id"]
            currency = row["currency"].upper()
            if not settlement_id:
                raise SettlementValueError(f"{where}: line {number}: the first row has no settlement-id")
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise SettlementValueError(f"{where}: line {number}: currency {row['currency']!r} is not a currency code")
            if not row["total-amount"]:
                raise SettlementValueError(f"{where}: line {number}: the first row has no total-amount")
            try:
                total_minor = parse_amount(row["total-amount"], currency)
            except ValueError as exc:
                raise SettlementValueError(f"{where}: line {number}: total-amount {exc}") from None
            if currency == "JPY" and not reader.declared:
                # Japanese flat files are Shift-JIS (Windows-31J), whose lead bytes Cp1252 partly refuses
                reader.use_fallback("cp932")
            start, end, deposit, header_fmt = _header_dates(
                row["settlement-start-date"], row["settlement-end-date"], row["deposit-date"], f"{where}: line {number}"
            )
            if not (row["transaction-type"] or row["amount-type"] or row["amount"]):
                continue  # the usual header-only first row
        else:
            if row["settlement-id"] and row["settlement-id"] != settlement_id:
                raise SettlementValueError(
                    f"{where}: line {number}: settlement {row['settlement-id']} in the file of settlement {settlement_id}"
                )
            if row["total-amount"]:
                try:
                    other_total = parse_amount(row["total-amount"], currency)
                except ValueError:
                    other_total = None
                if other_total != total_minor:
                    raise SettlementValueError(f"{where}: line {number}: a second, different total-amount")
            if row["currency"] and row["currency"].upper() != currency:
                raise SettlementValueError(
                    f"{where}: line {number}: currency {row['currency']} in a {currency} settlement"
                )
        try:
            amount = parse_amount(row["amount"], currency) if row["amount"] else 0
        except ValueError as exc:
            if not reader.last_line_complete:
                raise TruncatedSettlementFileError(f"{where}: truncated file (line {number} ends mid-value)") from None
            raise SettlementValueError(f"{where}: line {number}: amount {exc}") from None
        qty_text = row.get("quantity-purchased", "")
        qty = int(qty_text) if _INTEGER.fullmatch(qty_text) else None
        market = row.get("marketplace-name", "")
        if market:
            marketplaces.add(market)
        # Labels repeat on every row: one shared string each keeps a 100k-row settlement small.
        rows.append(
            SettlementRow(
                settlement_id=settlement_id,
                source=origin,
                transaction_type=sys.intern(row["transaction-type"]),
                amount_type=sys.intern(row["amount-type"]),
                amount_description=sys.intern(row["amount-description"]),
                amount_minor=amount,
                currency=currency,
                order_id=row["order-id"],
                adjustment_id=row.get("adjustment-id", ""),
                shipment_id=row.get("shipment-id", ""),
                marketplace_name=sys.intern(market),
                sku=row.get("sku", ""),
                order_item_code=row.get("order-item-code", ""),
                qty=qty,
                posted_at=_posted_at(row, header_fmt, posted_memo),
                fulfillment_id=sys.intern(row.get("fulfillment-id", "")),
                line=number,
            )
        )

    if header is None:
        raise NotASettlementFileError(f"{where}: empty file, not a settlement report")
    if first is None:
        raise TruncatedSettlementFileError(f"{where}: truncated file (a header line and no settlement row)")
    settlement = Settlement(
        settlement_id=settlement_id,
        source=origin,
        start=start,
        end=end,
        deposit_at=deposit,
        total_minor=total_minor,
        currency=currency,
        rows=tuple(rows),
        marketplaces=tuple(sorted(marketplaces)),
        file_sha256=reader.sha.hexdigest(),
    )
    try:
        settlement.check_balance()
    except SettlementImbalanceError as exc:
        if reader.last_line_complete:
            raise
        # Amazon ends every line; a last line without its end that leaves the sum short was cut off.
        raise TruncatedSettlementFileError(
            f"{where}: truncated file (the last line has no line end and the rows sum to {exc.rows_sum}, "
            f"not the total-amount {exc.reported} {currency})"
        ) from None
    return settlement


# --------------------------------------------------------------------------------------------- transactions


def _currency_amount(value: Any, currency: str, what: str) -> int:
    if not isinstance(value, Mapping):
        raise SettlementValueError(f"{what}: no amount")
    code = str(value.get("currencyCode") or value.get("CurrencyCode") or "").upper()
    amount = value.get("currencyAmount", value.get("CurrencyAmount"))
    if amount is None:
        raise SettlementValueError(f"{what}: no amount")
    if code and code != currency:
        raise SettlementValueError(f"{what}: amount in {code} in a {currency} settlement")
    try:
        return to_minor(amount, currency)
    except ValueError as exc:
        raise SettlementValueError(f"{what}: {exc}") from None


def _breakdown_list(value: Any) -> list[Mapping[str, Any]]:
    # The model says array; its own example nests the array in {"breakdowns": [...]}.
    if isinstance(value, Mapping):
        value = value.get("breakdowns")
    return [b for b in value if isinstance(b, Mapping)] if isinstance(value, list) else []


def _leaves(breakdowns: list[Mapping[str, Any]], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for b in breakdowns:
        here = (*path, str(b.get("breakdownType") or "").strip())
        children = _breakdown_list(b.get("breakdowns"))
        if children:
            yield from _leaves(children, here)
        else:
            yield here, b.get("breakdownAmount")


def _identifiers(values: Any, name_key: str, value_key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for ident in values if isinstance(values, list) else []:
        if isinstance(ident, Mapping) and ident.get(name_key) and ident.get(value_key) is not None:
            out.setdefault(str(ident[name_key]), str(ident[value_key]))
    return out


def _product_context(contexts: Any) -> Mapping[str, Any]:
    for ctx in contexts if isinstance(contexts, list) else []:
        if isinstance(ctx, Mapping) and (ctx.get("contextType") == "ProductContext" or "sku" in ctx):
            return ctx
    return {}


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _leaf_row(
    base: SettlementRow, item: Mapping[str, Any], tx: Mapping[str, Any], path: tuple[str, ...], amount: Any,
    currency: str, what: str,
) -> SettlementRow:
    ctx = _product_context(item.get("contexts")) or _product_context(tx.get("contexts"))
    item_ids = _identifiers(item.get("relatedIdentifiers"), "itemRelatedIdentifierName", "itemRelatedIdentifierValue")
    qty = ctx.get("quantityShipped")
    return replace(
        base,
        amount_type=path[0],
        amount_description="/".join(path[1:]),
        amount_minor=_currency_amount(amount, currency, f"{what} breakdown {'/'.join(path)}"),
        sku=str(ctx.get("sku") or ""),
        order_item_code=item_ids.get("ORDER_ADJUSTMENT_ITEM_ID", ""),
        qty=qty if isinstance(qty, int) else None,
        fulfillment_id=str(ctx.get("fulfillmentNetwork") or ""),
    )


def rows_from_transactions(
    transactions: Iterable[Mapping[str, Any]], *, settlement_id: str, currency: str
) -> list[SettlementRow]:
    """Finances 2024-06-19 ``Transaction`` objects (JSON as Amazon sends it) → :class:`SettlementRow`\\s.

    One row per leaf of ONE breakdown tree: the items' trees when the transaction has items (the
    transaction-level tree repeats them as aggregates), else the transaction's own tree. When those leaves
    do not add up to the transaction's ``totalAmount`` (or there is no tree), the transaction becomes one
    row of its total with amount-type ``TransactionTotal``, which no default rule maps: the money is never
    lost, and it lands in the visible unmapped bucket.
    """
    currency = currency.upper()
    rows: list[SettlementRow] = []
    for index, tx in enumerate(transactions, start=1):
        what = f"transaction {tx.get('transactionId') or index}"
        total = _currency_amount(tx.get("totalAmount"), currency, what)
        idents = _identifiers(tx.get("relatedIdentifiers"), "relatedIdentifierName", "relatedIdentifierValue")
        market = tx.get("marketplaceDetails") or {}
        tx_type = str(tx.get("transactionType") or "").strip()
        base = SettlementRow(
            settlement_id=settlement_id,
            source=SettlementSource.TRANSACTIONS,
            transaction_type=tx_type,
            amount_type="TransactionTotal",
            amount_description=str(tx.get("description") or ""),
            amount_minor=total,
            currency=currency,
            order_id=idents.get("ORDER_ID", ""),
            adjustment_id=idents.get("REFUND_ID", ""),
            shipment_id=idents.get("SHIPMENT_ID", ""),
            marketplace_name=str(market.get("marketplaceName") or "") if isinstance(market, Mapping) else "",
            posted_at=_iso(tx.get("postedDate")),
            line=index,
        )
        candidates: list[list[SettlementRow]] = []
        items = [i for i in tx.get("items") or [] if isinstance(i, Mapping)]
        trees: list[list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]]] = []
        if items:
            trees.append([(item, _breakdown_list(item.get("breakdowns"))) for item in items])
        trees.append([({}, _breakdown_list(tx.get("breakdowns")))])
        for tree in trees:
            try:
                found = [
                    _leaf_row(base, item, tx, path, amount, currency, what)
                    for item, breakdowns in tree
                    for path, amount in _leaves(breakdowns)
                ]
            except SettlementValueError:
                continue  # a leaf without a usable amount: this tree cannot explain the total
            if found:
                candidates.append(found)
        chosen = next((c for c in candidates if sum(r.amount_minor for r in c) == total), None)
        if chosen is None:
            chosen = [base]
        rows.extend(chosen)
    return rows


def settlement_from_transactions(group: Mapping[str, Any], transactions: Iterable[Mapping[str, Any]]) -> Settlement:
    """A closed Finances financial event group (v0 ``FinancialEventGroup`` JSON) and its 2024-06-19
    transactions → a :class:`Settlement`, accepted only when Σ rows = the group's ``OriginalTotal`` to the
    cent (else :class:`NeedsSettlementFileError`: the V2 file is needed to post it).

    The settlement id is the transactions' ``SETTLEMENT_ID`` when they all carry the same one, else the
    group id (``group_id`` keeps the group id either way).
    """
    group_id = str(group.get("FinancialEventGroupId") or "")
    where = f"financial event group {group_id or '?'}"
    if not group_id:
        raise SettlementValueError(f"{where}: no FinancialEventGroupId")
    status = str(group.get("ProcessingStatus") or "")
    if status.lower() != "closed":
        raise SettlementOpenError(f"{where} is {status or 'not closed'}: only closed settlements are posted")
    original = group.get("OriginalTotal")
    if not isinstance(original, Mapping) or not original.get("CurrencyCode"):
        raise SettlementValueError(f"{where}: no OriginalTotal")
    currency = str(original["CurrencyCode"]).upper()
    total_minor = _currency_amount(original, currency, where)
    start, end = _iso(group.get("FinancialEventGroupStart")), _iso(group.get("FinancialEventGroupEnd"))
    deposit = _iso(group.get("FundTransferDate")) or end
    if start is None or end is None or deposit is None:
        raise SettlementValueError(f"{where}: no FinancialEventGroupStart/End")
    txs = list(transactions)
    ids = {
        _identifiers(t.get("relatedIdentifiers"), "relatedIdentifierName", "relatedIdentifierValue").get("SETTLEMENT_ID")
        for t in txs
    }
    settlement_id = ids.pop() if len(ids) == 1 and None not in ids else group_id
    rows = rows_from_transactions(txs, settlement_id=str(settlement_id), currency=currency)
    converted = group.get("ConvertedTotal")
    settlement = Settlement(
        settlement_id=str(settlement_id),
        source=SettlementSource.TRANSACTIONS,
        start=start,
        end=end,
        deposit_at=deposit,
        total_minor=total_minor,
        currency=currency,
        rows=tuple(rows),
        marketplaces=tuple(sorted({r.marketplace_name for r in rows if r.marketplace_name})),
        group_id=group_id,
        converted_total=Decimal(str(converted["CurrencyAmount"])) if isinstance(converted, Mapping)
        and converted.get("CurrencyAmount") is not None else None,
        converted_currency=str(converted.get("CurrencyCode") or "").upper() or None
        if isinstance(converted, Mapping) else None,
        fund_transfer_status=str(group.get("FundTransferStatus") or "") or None,
        trace_id=str(group.get("TraceId") or "") or None,
    )
    try:
        settlement.check_balance()
    except SettlementImbalanceError as exc:
        raise NeedsSettlementFileError(
            f"{where} does not balance: Amazon reported {exc.reported} {currency}, transactions sum to "
            f"{exc.rows_sum} (difference {exc.difference}); needs the settlement file",
            settlement_id=settlement.settlement_id,
            currency=currency,
            reported=exc.reported,
            rows_sum=exc.rows_sum,
        ) from None
    return settlement
