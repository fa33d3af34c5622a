"""The V2 settlement report parser and the Finances transactions normaliser (pure; no network)."""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amz2erp.amazon.settlement_report import (
    MissingColumnError,
    NeedsSettlementFileError,
    NotASettlementFileError,
    Settlement,
    SettlementFileError,
    SettlementImbalanceError,
    SettlementOpenError,
    SettlementValueError,
    TruncatedSettlementFileError,
    UnknownEncodingError,
    parse_amount,
    parse_settlement_report,
    rows_from_transactions,
    settlement_from_transactions,
)
from amz2erp.errors import ExitCode, RecordError
from tests.conftest import SP_API_MODELS

FIXTURES = Path(__file__).parent / "fixtures" / "settlements"
US1 = FIXTURES / "us_example1_12345678901.txt"
DE2 = FIXTURES / "de_example2_23456789012.txt"
US3 = FIXTURES / "us_example3_negative_12345678903.txt"
UTC = timezone.utc


def _us1_text() -> str:
    return US1.read_text(encoding="utf-8")


def _replace_header_dates(text: str, start: str, end: str, deposit: str) -> str:
    lines = text.split("\n")
    cells = lines[1].split("\t")
    cells[1:4] = [start, end, deposit]
    lines[1] = "\t".join(cells)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- fixtures


def test_us_example_header_and_rows() -> None:
    s = parse_settlement_report(US1)
    assert s.settlement_id == "12345678901"
    assert (s.start, s.end) == (datetime(2026, 10, 1, 8, tzinfo=UTC), datetime(2026, 10, 15, 8, tzinfo=UTC))
    assert s.deposit_at == datetime(2026, 10, 17, 8, tzinfo=UTC)
    assert s.deposit_date == date(2026, 10, 17)
    assert (s.total, s.total_minor, s.currency) == (Decimal("139.36"), 13936, "USD")
    assert len(s.rows) == 28
    assert s.marketplaces == ("Amazon.com",)
    assert s.source == "file"
    assert s.rows_sum_minor == s.total_minor
    first = s.rows[0]
    assert (first.transaction_type, first.order_id, first.amount_type, first.amount_description) == (
        "Order", "111-0000001-0000001", "ItemPrice", "Principal"
    )
    assert (first.amount, first.sku, first.fulfillment_id, first.qty, first.line) == (
        Decimal("125.00"), "MUG-BLUE", "AFN", 1, 3
    )
    assert first.posted_at == datetime(2026, 10, 12, 17, 4, 12, tzinfo=UTC)
    refund = next(r for r in s.rows if r.transaction_type == "Refund")
    assert refund.adjustment_id == "amzn1:crow:RfnD0004"
    assert refund.key == "Refund|ItemPrice|Principal"
    reserve = s.rows[-1]
    assert (reserve.order_id, reserve.amount_description, reserve.amount_minor) == ("", "Current Reserve Amount", -4500)
    promo = next(r for r in s.rows if r.amount_type == "Promotion")
    assert promo.amount_minor == -1000


def test_de_example_comma_decimals_dotted_dates_cp1252_crlf() -> None:
    raw = DE2.read_bytes()
    assert b"\r\n" in raw and "Größe".encode("cp1252") in raw  # the fixture really is Cp1252 with CRLF
    s = parse_settlement_report(DE2)
    assert (s.settlement_id, s.total, s.currency) == ("23456789012", Decimal("118.65"), "EUR")
    assert (s.start, s.end, s.deposit_date) == (
        datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 15, tzinfo=UTC), date(2026, 10, 17)
    )
    amounts = [r.amount for r in s.rows]
    assert amounts[:4] == [Decimal("50.00"), Decimal("9.50"), Decimal("-8.93"), Decimal("-3.45")]
    assert {r.sku for r in s.rows if r.order_id == "302-0000006-0000006"} == {"Größe-M"}
    assert s.rows[4].qty == 2
    assert s.rows[0].posted_at == datetime(2026, 10, 12, 9, 31, tzinfo=UTC)
    assert s.marketplaces == ("Amazon.de",)


def test_negative_settlement() -> None:
    s = parse_settlement_report(US3)
    assert (s.total_minor, s.deposit_date, len(s.rows)) == (-10626, date(2026, 10, 31), 15)


def test_same_settlement_from_path_bytes_stream_and_gzip() -> None:
    raw = US1.read_bytes()
    from_path = parse_settlement_report(US1)
    from_bytes = parse_settlement_report(raw)
    from_stream = parse_settlement_report(io.BytesIO(raw))
    from_gzip = parse_settlement_report(gzip.compress(raw))
    assert from_path == from_bytes == from_stream == from_gzip
    assert from_gzip.file_sha256 == from_path.file_sha256  # the content's hash, not the transport's


def test_utf8_bom_and_utf16_bom_files_read_alike() -> None:
    text = DE2.read_bytes().decode("cp1252")
    plain = parse_settlement_report(DE2)
    with_bom = parse_settlement_report(codecs.BOM_UTF8 + text.encode("utf-8"))
    utf16 = parse_settlement_report(text.encode("utf-16"))  # Excel's "Unicode text": BOM + UTF-16LE
    assert with_bom.rows == plain.rows == utf16.rows
    assert with_bom.rows[4].sku == "Größe-M"


def test_declared_charset_decodes_lines_that_are_not_utf8() -> None:
    text = _us1_text().replace("MUG-BLUE", "マグ-BLUE")
    s = parse_settlement_report(text.encode("cp932"), charset="Windows-31J")
    assert s.rows[0].sku == "マグ-BLUE"


def test_yen_settlement_without_declared_charset_reads_shift_jis() -> None:
    text = _us1_text().replace("USD", "JPY").replace("MUG-BLUE", "マグカップ・青")
    text = re.sub(r"\t(-?\d+)\.(\d\d)\t", lambda m: f"\t{m.group(1)}{m.group(2)}\t", text)  # yen: no decimals
    s = parse_settlement_report(text.encode("cp932"))
    assert (s.currency, s.total_minor, s.rows[0].sku, s.rows[0].amount) == ("JPY", 13936, "マグカップ・青", Decimal(12500))


def test_columns_found_by_name_in_any_order_with_extra_columns() -> None:
    lines = [line.split("\t") for line in _us1_text().rstrip("\n").split("\n")]
    order = list(reversed(range(len(lines[0]))))
    shuffled = ["\t".join([cells[i] for i in order] + ["x"]) for cells in lines]
    shuffled[0] = shuffled[0][:-1] + "Some New Column"
    s = parse_settlement_report(("\n".join(shuffled) + "\n").encode())
    assert s.rows == parse_settlement_report(US1).rows


def test_header_row_that_also_carries_a_transaction() -> None:
    lines = _us1_text().split("\n")
    header_cells, first_row = lines[1].split("\t"), lines[2].split("\t")
    merged = [h or r for h, r in zip(header_cells, first_row, strict=True)]
    text = "\n".join([lines[0], "\t".join(merged), *lines[3:]])
    s = parse_settlement_report(text.encode())
    assert len(s.rows) == 28 and s.rows[0].amount_minor == 12500


@pytest.mark.parametrize(
    ("start", "end", "deposit", "expected_start"),
    [
        ("2026/10/01 08:00:00 UTC", "2026/10/15 08:00:00 UTC", "2026/10/17 08:00:00 UTC", datetime(2026, 10, 1, 8, tzinfo=UTC)),
        ("2026-10-01T08:00:00+00:00", "2026-10-15T08:00:00+00:00", "2026-10-17T08:00:00+00:00", datetime(2026, 10, 1, 8, tzinfo=UTC)),
        ("01/10/2026 08:00:00 UTC", "15/10/2026 08:00:00 UTC", "17/10/2026 08:00:00 UTC", datetime(2026, 10, 1, 8, tzinfo=UTC)),
        ("10/01/2026 08:00:00 UTC", "10/15/2026 08:00:00 UTC", "10/17/2026 08:00:00 UTC", datetime(2026, 10, 1, 8, tzinfo=UTC)),
        ("2026-10-01", "2026-10-15", "2026-10-17", datetime(2026, 10, 1, tzinfo=UTC)),
        ("01.10.2026", "15.10.2026", "17.10.2026", datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-10-01T08:00:00.000Z", "2026-10-15T08:00:00.000Z", "2026-10-17T08:00:00.000Z",
         datetime(2026, 10, 1, 8, tzinfo=UTC)),
    ],
)
def test_header_date_formats(start: str, end: str, deposit: str, expected_start: datetime) -> None:
    s = parse_settlement_report(_replace_header_dates(_us1_text(), start, end, deposit).encode())
    assert s.start == expected_start
    assert s.deposit_date == date(2026, 10, 17)


def test_posted_date_without_time_uses_the_header_layout() -> None:
    lines = DE2.read_bytes().decode("cp1252").split("\r\n")
    header = lines[0].split("\t")
    col = header.index("posted-date-time")
    lines = ["\t".join(c for i, c in enumerate(line.split("\t")) if i != col) for line in lines if line]
    s = parse_settlement_report("\n".join(lines).encode())
    assert s.rows[0].posted_at == datetime(2026, 10, 12, tzinfo=UTC)  # "12.10.2026", day first like the header


def test_slash_dates_read_by_the_only_plausible_period() -> None:
    # "14/02/2026" cannot be month-first (no month 14), so only the day-first reading exists.
    text = _replace_header_dates(_us1_text(), "01/02/2026 08:00:00 UTC", "14/02/2026 08:00:00 UTC",
                                 "16/02/2026 08:00:00 UTC")
    assert parse_settlement_report(text.encode()).start == datetime(2026, 2, 1, 8, tzinfo=UTC)


def test_ambiguous_slash_dates_are_refused() -> None:
    # 1 Feb → 1 Mar → 1 Apr (day-first) and 2 Jan → 3 Jan → 4 Jan (month-first) are both valid periods.
    text = _replace_header_dates(_us1_text(), "01/02/2026", "01/03/2026", "01/04/2026")
    with pytest.raises(SettlementValueError, match="ambiguous settlement dates"):
        parse_settlement_report(text.encode())


# --------------------------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("139.36", "USD", 13936),
        ("-10.00", "USD", -1000),
        ("95,00", "EUR", 9500),
        ("1.234,56", "EUR", 123456),
        ("1,234.56", "USD", 123456),
        ("1'234.56", "CHF", 123456),
        ("1 234,56", "SEK", 123456),
        ("1,23,456.78", "INR", 12345678),
        ("12,5", "EUR", 1250),
        ("0.5", "USD", 50),
        ("1234", "JPY", 1234),
        ("1,234", "JPY", 1234),
        ("-1.234", "JPY", -1234),
        ("95,00", "JPY", 95),
        ("+7", "USD", 700),
        ("12,50-", "EUR", -1250),
    ],
)
def test_parse_amount(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [("abc", "USD"), ("", "USD"), ("1.2.3,4", "EUR"), ("12.345.67", "USD"), ("0.005", "USD"),
     ("1.00,50", "EUR"), ("95,50", "JPY"), ("1,2,3", "USD"), ("--1", "USD"), ("1e3", "USD")],
)
def test_parse_amount_refuses(text: str, currency: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text, currency)


def _format(minor: int, style: str) -> str:
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    grouped = f"{units:,}"
    if style == "us":
        return f"{sign}{grouped}.{cents:02d}"
    if style == "eu":
        return f"{sign}{grouped.replace(',', '.')},{cents:02d}"
    if style == "eu-plain":
        return f"{sign}{units},{cents:02d}"
    return f"{sign}{units}.{cents:02d}"


@given(st.integers(min_value=-10**12, max_value=10**12), st.sampled_from(["us", "eu", "eu-plain", "plain"]))
def test_parse_amount_reads_every_local_format(minor: int, style: str) -> None:
    assert parse_amount(_format(minor, style), "EUR") == minor


_V2_COLUMNS = _us1_text().split("\n")[0].split("\t")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["Order", "Refund", "other-transaction"]), st.integers(-10**8, 10**8)),
         max_size=40),
    st.sampled_from(["us", "eu", "eu-plain", "plain"]),
    st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "gzip"]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_any_written_settlement_reads_back(
    spec: list[tuple[str, int]], style: str, encoding: str, newline: str
) -> None:
    def line(**cells: str) -> str:
        return "\t".join(cells.get(c.replace("-", "_"), "") for c in _V2_COLUMNS)

    total = sum(a for _, a in spec)
    lines = [
        "\t".join(_V2_COLUMNS),
        line(settlement_id="42", settlement_start_date="2026-10-01 08:00:00 UTC",
             settlement_end_date="2026-10-15 08:00:00 UTC", deposit_date="2026-10-17 08:00:00 UTC",
             total_amount=_format(total, style), currency="EUR"),
        *(line(settlement_id="42", transaction_type=tt, order_id="302-1", amount_type="ItemPrice",
               amount_description="Principal", amount=_format(a, style), sku="Straße")
          for tt, a in spec),
    ]
    text = newline.join(lines) + newline
    data = gzip.compress(text.encode()) if encoding == "gzip" else text.encode(encoding)
    s = parse_settlement_report(data)
    assert [(r.transaction_type, r.amount_minor, r.sku) for r in s.rows] == [(tt, a, "Straße") for tt, a in spec]
    assert s.total_minor == total and s.currency == "EUR"


# --------------------------------------------------------------------------------------------- bad input


def _bad(data: bytes | str, error: type[SettlementFileError] | type[SettlementImbalanceError], match: str,
         **kw: Any) -> str:
    with pytest.raises(error, match=match) as info:
        parse_settlement_report(data.encode() if isinstance(data, str) else data, name="upload.txt", **kw)
    message = str(info.value)
    assert "\n" not in message and message.startswith(("upload.txt: ", "settlement "))
    assert isinstance(info.value, RecordError) and info.value.exit_code is ExitCode.PARTIAL
    return message


ORDERS_REPORT = (
    "amazon-order-id\tmerchant-order-id\tpurchase-date\tlast-updated-date\torder-status\tsku\titem-price\n"
    "111-1\t\t2026-10-01T10:00:00+00:00\t2026-10-01T11:00:00+00:00\tShipped\tMUG\t12.00\n"
)
V1_REPORT = (
    "settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\t"
    "transaction-type\torder-id\tprice-type\tprice-amount\titem-related-fee-type\titem-related-fee-amount\n"
    "1\t2026-10-01\t2026-10-15\t2026-10-17\t1.00\tUSD\t\t\t\t\t\t\n"
)


def test_orders_report_is_not_a_settlement() -> None:
    assert "looks like an orders report" in _bad(ORDERS_REPORT, NotASettlementFileError, "not a V2 settlement report")


def test_v1_settlement_file_is_named_as_such() -> None:
    _bad(V1_REPORT, NotASettlementFileError, "V1 settlement flat file")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty file"),
        (b"\n\n", "empty file"),
        (b"just some text\nwithout tabs\n", "not tab-separated"),
        (b"PK\x03\x04\x14\x00rest-of-a-zip", "zip archive"),
        (b"%PDF-1.7\n...", "PDF"),
        (b'<?xml version="1.0"?>\n<AmazonEnvelope>', "XML or HTML"),
        (codecs.BOM_UTF8 + b"\n<html><body>Sign in</body></html>", "XML or HTML"),
    ],
)
def test_not_a_settlement(data: bytes, match: str) -> None:
    _bad(data, NotASettlementFileError, match)


def test_missing_required_column() -> None:
    header, *rest = _us1_text().split("\n")
    cols = header.split("\t")
    idx = cols.index("amount")
    drop = ["\t".join(c for i, c in enumerate(line.split("\t")) if i != idx) for line in [header, *rest] if line]
    _bad("\n".join(drop) + "\n", MissingColumnError, r"missing column\(s\) amount")


def test_header_line_only_is_truncated() -> None:
    _bad(_us1_text().split("\n")[0] + "\n", TruncatedSettlementFileError, "a header line and no settlement row")


def test_truncated_gzip() -> None:
    data = gzip.compress(US1.read_bytes())
    _bad(data[: len(data) // 2], TruncatedSettlementFileError, "compressed data ends early")


def test_damaged_gzip() -> None:
    data = bytearray(gzip.compress(US1.read_bytes()))
    data[20:40] = b"\xff" * 20
    _bad(bytes(data), TruncatedSettlementFileError, "damaged compressed data|ends early")


def test_file_cut_mid_row() -> None:
    raw = US1.read_bytes()
    cut = raw[: raw.index(b"Subscription Fee")]
    _bad(cut, TruncatedSettlementFileError, r"line 27 ends mid-row")


def test_file_cut_inside_the_last_amount() -> None:
    raw = US1.read_bytes()
    cut = raw[: raw.index(b"-45.00") + 2]  # "...Current Reserve Amount\t-4"
    _bad(cut, TruncatedSettlementFileError, r"the last line has no line end and the rows sum to 180.36, not the "
         r"total-amount 139.36 USD")
    _bad(raw[: raw.index(b"-45.00") + 4], TruncatedSettlementFileError, r"line 30 ends mid-value")  # "-45."


def test_unterminated_last_row_without_trailing_empty_cells_is_complete() -> None:
    text = _us1_text().rstrip("\n")
    last = text.rsplit("\n", 1)[1].split("\t")
    trimmed = text[: text.rindex("\n") + 1] + "\t".join(last[:15])  # up to the amount, no newline
    assert parse_settlement_report(trimmed.encode()).rows[-1].amount_minor == -4500


def test_file_cut_at_a_row_boundary_does_not_balance() -> None:
    raw = US1.read_bytes()
    cut = raw[: raw.index(b"12345678901\t\t\t\t\t\tother-transaction\t\t\t\t\t\tother-transaction\tCurrent Reserve")]
    msg = _bad(cut, SettlementImbalanceError, "does not balance")
    assert "Amazon reported 139.36 USD, rows sum to 184.36 (difference -45.00)" in msg


def test_changed_amount_does_not_balance_and_carries_the_numbers() -> None:
    text = _us1_text().replace("\tStorage Fee\t-12.34\t", "\tStorage Fee\t-2.34\t")
    with pytest.raises(SettlementImbalanceError) as info:
        parse_settlement_report(text.encode())
    err = info.value
    assert (err.settlement_id, err.currency, err.reported, err.rows_sum, err.difference) == (
        "12345678901", "USD", Decimal("139.36"), Decimal("149.36"), Decimal("-10.00")
    )
    assert str(err) == (
        "settlement 12345678901 does not balance: Amazon reported 139.36 USD, rows sum to 149.36 "
        "(difference -10.00); not posted — ask Amazon to reissue the file"
    )


@pytest.mark.parametrize(
    ("data", "kw", "match"),
    [
        ("header\tline\n".encode("utf-16-le"), {}, "NUL bytes: unknown encoding"),
        (b"settlement-id\t\x81\x8d\x8f\x90\n", {}, "line 1 is neither UTF-8 nor cp1252: unknown encoding"),
        (b"settlement-id\tx\n", {"charset": "x-no-such-charset"}, "unknown encoding 'x-no-such-charset'"),
        (codecs.BOM_UTF16_LE + b"\x00\xd8" + "a\tb\n".encode("utf-16-le"), {}, "damaged UTF-16 text"),
    ],
)
def test_unknown_encoding(data: bytes, kw: dict[str, str], match: str) -> None:
    _bad(data, UnknownEncodingError, match, **kw)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("\tStorage Fee\t-12.34\t", "\tStorage Fee\t-12.3x\t", r"line 26: amount '-12.3x' is not an amount"),
        ("\t139.36\tUSD\t", "\tlots\tUSD\t", "total-amount 'lots' is not an amount"),
        ("\t139.36\tUSD\t", "\t\tUSD\t", "the first row has no total-amount"),
        ("\t139.36\tUSD\t", "\t139.36\tdollars\t", "is not a currency code"),
        ("2026-10-01 08:00:00 UTC", "someday", "unreadable settlement dates"),
        ("2026-10-15 08:00:00 UTC", "2026-09-15 08:00:00 UTC", "is not before settlement-end-date"),
    ],
)
def test_bad_values(old: str, new: str, match: str) -> None:
    _bad(_us1_text().replace(old, new, 1), SettlementValueError, match)


def test_rows_of_another_settlement_or_currency() -> None:
    lines = _us1_text().split("\n")
    lines[5] = lines[5].replace("12345678901", "99999999999", 1)
    _bad("\n".join(lines), SettlementValueError, "settlement 99999999999 in the file of settlement 12345678901")
    lines = _us1_text().split("\n")
    cells = lines[5].split("\t")
    cells[5] = "EUR"
    lines[5] = "\t".join(cells)
    _bad("\n".join(lines), SettlementValueError, "currency EUR in a USD settlement")


def test_surplus_cells_are_refused_not_dropped() -> None:
    lines = _us1_text().split("\n")
    lines[5] += "\t\tunexpected"
    _bad("\n".join(lines), SettlementValueError, "line 6 has 26 columns, the header 24")


def test_unreadable_path() -> None:
    with pytest.raises(SettlementFileError, match="cannot read"):
        parse_settlement_report(FIXTURES / "no-such-file.txt")


# --------------------------------------------------------------------------------------------- transactions


def _money(amount: str, code: str = "USD") -> dict[str, Any]:
    return {"currencyCode": code, "currencyAmount": float(amount)}


def _bd(kind: str, amount: str, *children: dict[str, Any]) -> dict[str, Any]:
    return {"breakdownType": kind, "breakdownAmount": _money(amount), "breakdowns": list(children)}


GROUP_ID = "_fSsCZmGkBME7DCFtbqKLcDX-KB-M-5Pdr1NaefqCks"
GROUP = {
    "FinancialEventGroupId": GROUP_ID,
    "ProcessingStatus": "Closed",
    "FundTransferStatus": "Succeeded",
    "OriginalTotal": {"CurrencyCode": "USD", "CurrencyAmount": 61.3},
    "ConvertedTotal": {"CurrencyCode": "USD", "CurrencyAmount": 61.3},
    "FundTransferDate": "2026-06-17T08:00:00Z",
    "TraceId": "TRACE0001",
    "FinancialEventGroupStart": "2026-06-01T08:00:00Z",
    "FinancialEventGroupEnd": "2026-06-15T08:00:00Z",
}


def _transactions(settlement_id: str | None = "7654321") -> list[dict[str, Any]]:
    ids = [{"relatedIdentifierName": "FINANCIAL_EVENT_GROUP_ID", "relatedIdentifierValue": GROUP_ID}]
    if settlement_id:
        ids.append({"relatedIdentifierName": "SETTLEMENT_ID", "relatedIdentifierValue": settlement_id})
    shipment = {
        "sellingPartnerMetadata": {"sellingPartnerId": "A1SELLER", "accountType": "PAYABLE",
                                   "marketplaceId": "ATVPDKIKX0DER"},
        "relatedIdentifiers": [*ids, {"relatedIdentifierName": "ORDER_ID", "relatedIdentifierValue": "111-1"},
                               {"relatedIdentifierName": "SHIPMENT_ID", "relatedIdentifierValue": "DxYz"}],
        "transactionType": "Shipment",
        "transactionId": "tx-1",
        "transactionStatus": "RELEASED",
        "description": "Order Payment",
        "postedDate": "2026-06-03T10:00:00Z",
        "totalAmount": _money("81.3"),
        "marketplaceDetails": {"marketplaceId": "ATVPDKIKX0DER", "marketplaceName": "Amazon.com"},
        "items": [{
            "description": "Blue mug",
            "totalAmount": _money("81.3"),
            "relatedIdentifiers": [],
            "breakdowns": [
                _bd("ProductCharges", "100", _bd("OurPricePrincipal", "100")),
                _bd("Tax", "8", _bd("OurPriceTax", "8")),
                _bd("AmazonFees", "-26.7", _bd("Commission", "-15", _bd("Base", "-15")),
                    _bd("FBAPerUnitFulfillmentFee", "-11.7", _bd("Base", "-9.36"), _bd("Tax", "-2.34"))),
            ],
            "contexts": [{"contextType": "ProductContext", "asin": "B0MUG", "sku": "MUG-BLUE",
                          "quantityShipped": 2, "fulfillmentNetwork": "AFN"}],
        }],
        # the aggregate tree repeats the items' money: summing both would double it
        "breakdowns": [_bd("Sales", "108", _bd("ProductCharges", "100"), _bd("Tax", "8")),
                       _bd("Expenses", "-26.7", _bd("AmazonFees", "-26.7"))],
    }
    storage = {
        "relatedIdentifiers": ids,
        "transactionType": "ServiceFee",
        "transactionId": "tx-2",
        "description": "FBA storage fee",
        "postedDate": "2026-06-10T10:00:00Z",
        "totalAmount": _money("-20"),
        "marketplaceDetails": {"marketplaceId": "ATVPDKIKX0DER", "marketplaceName": "Amazon.com"},
        "items": [],
        "breakdowns": [_bd("AmazonFees", "-20", _bd("FBAStorageFee", "-20"))],
    }
    return [shipment, storage]


def test_transactions_normalised_from_the_item_tree_only() -> None:
    rows = rows_from_transactions(_transactions(), settlement_id="7654321", currency="USD")
    assert [(r.transaction_type, r.amount_type, r.amount_description, r.amount_minor) for r in rows] == [
        ("Shipment", "ProductCharges", "OurPricePrincipal", 10000),
        ("Shipment", "Tax", "OurPriceTax", 800),
        ("Shipment", "AmazonFees", "Commission/Base", -1500),
        ("Shipment", "AmazonFees", "FBAPerUnitFulfillmentFee/Base", -936),
        ("Shipment", "AmazonFees", "FBAPerUnitFulfillmentFee/Tax", -234),
        ("ServiceFee", "AmazonFees", "FBAStorageFee", -2000),
    ]
    first = rows[0]
    assert (first.order_id, first.shipment_id, first.sku, first.qty, first.fulfillment_id, first.marketplace_name) == (
        "111-1", "DxYz", "MUG-BLUE", 2, "AFN", "Amazon.com"
    )
    assert first.posted_at == datetime(2026, 6, 3, 10, tzinfo=UTC)
    assert first.source == "transactions"


def test_transactions_fixture_follows_the_official_model() -> None:
    models = SP_API_MODELS
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads((models / "finances_2024-06-19.json").read_text(encoding="utf-8"))
    schema = {"$ref": "#/definitions/ListTransactionsResponse", "definitions": doc["definitions"]}
    body = {"payload": {"transactions": _transactions()}}
    assert list(jsonschema.Draft4Validator(schema).iter_errors(body)) == []


def test_model_example_transaction_with_object_breakdowns() -> None:
    models = SP_API_MODELS
    doc = json.loads((models / "finances_2024-06-19.json").read_text(encoding="utf-8"))
    example = doc["definitions"]["Transaction"]["example"]
    assert isinstance(example["breakdowns"], dict)  # the model's own example nests the array in an object
    (row,) = rows_from_transactions([example], settlement_id="S", currency="USD")
    assert (row.amount_type, row.amount_description, row.amount_minor, row.order_id, row.sku) == (
        "Product Charges", "Principle", 1000, "8129762527551", "sku-12"
    )


def test_transaction_whose_leaves_do_not_add_up_becomes_one_visible_row() -> None:
    tx = _transactions()[0]
    tx["items"][0]["breakdowns"][0]["breakdowns"][0]["breakdownAmount"] = _money("90")
    tx["breakdowns"] = []
    (row,) = rows_from_transactions([tx], settlement_id="S", currency="USD")
    assert (row.amount_type, row.amount_description, row.amount_minor) == ("TransactionTotal", "Order Payment", 8130)


def test_transaction_with_a_leaf_without_amount_falls_back_to_its_total() -> None:
    tx = _transactions()[0]
    del tx["items"][0]["breakdowns"][1]["breakdowns"][0]["breakdownAmount"]
    tx["breakdowns"] = []  # (the aggregate tree, when present and complete, would be used instead)
    (row,) = rows_from_transactions([tx], settlement_id="S", currency="USD")
    assert (row.amount_type, row.amount_minor, row.order_id) == ("TransactionTotal", 8130, "111-1")


def test_transaction_in_another_currency_is_refused() -> None:
    tx = _transactions()[1]
    tx["totalAmount"] = _money("-20", "EUR")
    with pytest.raises(SettlementValueError, match="amount in EUR in a USD settlement"):
        rows_from_transactions([tx], settlement_id="S", currency="USD")


def test_group_posted_only_when_transactions_match_the_group_total() -> None:
    s = settlement_from_transactions(GROUP, _transactions())
    assert isinstance(s, Settlement)
    assert (s.settlement_id, s.group_id, s.total_minor, s.currency, s.source) == (
        "7654321", GROUP_ID, 6130, "USD", "transactions"
    )
    assert (s.start, s.end, s.deposit_date) == (
        datetime(2026, 6, 1, 8, tzinfo=UTC), datetime(2026, 6, 15, 8, tzinfo=UTC), date(2026, 6, 17)
    )
    assert (s.trace_id, s.fund_transfer_status, s.converted_total) == ("TRACE0001", "Succeeded", Decimal("61.3"))
    assert s.marketplaces == ("Amazon.com",)


def test_group_without_settlement_id_is_keyed_by_the_group() -> None:
    assert settlement_from_transactions(GROUP, _transactions(None)).settlement_id == GROUP_ID


def test_group_missing_a_transaction_needs_the_settlement_file() -> None:
    with pytest.raises(NeedsSettlementFileError) as info:
        settlement_from_transactions(GROUP, _transactions()[:1])
    err = info.value
    assert isinstance(err, SettlementImbalanceError)
    assert (err.reported, err.rows_sum, err.difference) == (Decimal("61.30"), Decimal("81.30"), Decimal("-20.00"))
    assert str(err) == (
        f"financial event group {GROUP_ID} does not balance: Amazon reported 61.30 USD, transactions sum to "
        "81.30 (difference -20.00); needs the settlement file"
    )


def test_open_group_is_not_a_settlement() -> None:
    with pytest.raises(SettlementOpenError, match="is Open: only closed settlements are posted"):
        settlement_from_transactions({**GROUP, "ProcessingStatus": "Open"}, _transactions())
