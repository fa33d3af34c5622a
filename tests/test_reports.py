"""Report documents as Amazon sends them: gzip'd, Cp1252, tab-separated, columns that come and go."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from amz2erp.amazon import reports as rp
from amz2erp.models import Order, OrderStatus, UnparsableOrder

US = "ATVPDKIKX0DER"
DE = "A1PA6795UKMFR9"
UK = "A1F83G8C2ARO7P"


def _document(lines: list[list[str]], charset: str = "cp1252") -> bytes:
    text = "\r\n".join("\t".join(cells) for cells in lines) + "\r\n"
    return gzip.compress(text.encode(charset))


def _rows(blob: bytes, content_type: str = "text/plain; charset=Cp1252") -> list[dict[str, str]]:
    data = rp.decompress_bytes(blob)
    charset = rp.charset_from_content_type(content_type)
    return list(rp.iter_tsv(rp.text_lines(io.BytesIO(data), charset)))


# --- listings ------------------------------------------------------------------------------------------

LISTING_HEADER = ["item-name", "item-description", "listing-id", "seller-sku", "price", "quantity", "open-date",
                  "item-is-marketplace", "product-id-type", "asin1", "product-id", "fulfillment-channel",
                  "status", "zz-new-column"]  # no image-url; a column Amazon added later


def test_listings_cp1252_accents_currency_symbols_and_awkward_skus() -> None:
    blob = _document([
        LISTING_HEADER,
        ["Café Crème Tasse – Größe XL", "Qualität für 20 € – spülmaschinenfest", "0101", "CAF/1 XL", "19.99", "7",
         "2023-02-01 10:00:00 PST", "y", "1", "B0CAFE0001", "B0CAFE0001", "DEFAULT", "Active", "x"],
        ["Tea Kettle £ edition", "Nice kettle", "0102", "KET 2000 / B", "", "", "2024-07-01 09:30:00 PDT", "y",
         "1", "B0KETTLE02", "B0KETTLE02", "AMAZON_NA", "Inactive", ""],
    ])
    listings = list(rp.parse_listings(rp.iter_tsv(rp.text_lines(io.BytesIO(rp.decompress_bytes(blob)))), DE))
    assert [lst.sku for lst in listings] == ["CAF/1 XL", "KET 2000 / B"]
    cafe, kettle = listings
    assert cafe.title == "Café Crème Tasse – Größe XL"
    assert cafe.description == "Qualität für 20 € – spülmaschinenfest"
    assert cafe.price == Decimal("19.99")
    assert cafe.currency == "EUR"  # from the marketplace: the report has no currency
    assert cafe.quantity == 7
    assert cafe.open_date == datetime(2023, 2, 1, 18, 0, tzinfo=timezone.utc)
    assert cafe.image_url is None  # column missing: tolerated
    assert cafe.is_active
    assert kettle.title == "Tea Kettle £ edition"
    assert kettle.price is None  # empty price is "no price", not an error
    assert kettle.quantity is None
    assert kettle.open_date == datetime(2024, 7, 1, 16, 30, tzinfo=timezone.utc)
    assert kettle.fulfillment_channel == "AMAZON_NA"
    assert not kettle.is_active


def test_listings_columns_are_found_by_name_in_any_order() -> None:
    header = ["status", "asin1", "seller-sku", "price", "item-name"]
    blob = _document([header, ["Active", "B0X", "SKU-1", "5.00", "Mug"]])
    (listing,) = rp.parse_listings(_rows(blob), UK, None)
    assert (listing.sku, listing.asin, listing.price, listing.title) == ("SKU-1", "B0X", Decimal("5.00"), "Mug")
    assert listing.currency == "GBP"


def test_listing_rows_without_sku_or_blank_lines_are_skipped() -> None:
    blob = _document([["seller-sku", "price"], ["", "1.00"], [""], ["OK-1", "2.00"]])
    assert [lst.sku for lst in rp.parse_listings(_rows(blob), US)] == ["OK-1"]


def test_listings_header_with_bom_and_odd_spacing() -> None:
    text = "\ufeffSeller SKU\tPrice\r\nA-1\t3.50\r\n"
    rows = list(rp.iter_tsv(io.StringIO(text)))
    assert rows == [{"seller-sku": "A-1", "price": "3.50"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-02-01 10:00:00 PST", datetime(2023, 2, 1, 18, 0, tzinfo=timezone.utc)),
        ("2023-07-01 10:00:00 PDT", datetime(2023, 7, 1, 17, 0, tzinfo=timezone.utc)),
        ("2023-02-01 10:00:00 CET", datetime(2023, 2, 1, 9, 0, tzinfo=timezone.utc)),
        ("2023-07-01 10:00:00 CEST", datetime(2023, 7, 1, 8, 0, tzinfo=timezone.utc)),
        ("2023-02-01 10:00:00 MET", datetime(2023, 2, 1, 9, 0, tzinfo=timezone.utc)),
        ("2023-02-01 10:00:00 JST", datetime(2023, 2, 1, 1, 0, tzinfo=timezone.utc)),
        ("2023-02-01 10:00:00 GMT", datetime(2023, 2, 1, 10, 0, tzinfo=timezone.utc)),
        ("2023-02-01 10:00:00 UTC", datetime(2023, 2, 1, 10, 0, tzinfo=timezone.utc)),
        ("2023-02-01 10:00:00", datetime(2023, 2, 1, 10, 0, tzinfo=timezone.utc)),
        ("2023-02-01T10:00:00Z", datetime(2023, 2, 1, 10, 0, tzinfo=timezone.utc)),
        ("2023-02-01T10:00:00.123+02:00", datetime(2023, 2, 1, 8, 0, 0, 123000, tzinfo=timezone.utc)),
        ("2023-02-01 10:00:00 +0530", datetime(2023, 2, 1, 4, 30, tzinfo=timezone.utc)),
        ("01.02.2023 10:00:00 MEZ", datetime(2023, 2, 1, 9, 0, tzinfo=timezone.utc)),
        ("2023-02-01", datetime(2023, 2, 1, tzinfo=timezone.utc)),
    ],
)
def test_open_date_variants(text: str, expected: datetime) -> None:
    parsed = rp.parse_datetime(text)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["", "   ", "soon", "2023-13-45 99:00:00 PST", "10:00 XYZ"])
def test_unreadable_dates_are_none(text: str) -> None:
    assert rp.parse_datetime(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.99", "12.99"), ("1,234.50", "1234.50"), ("12,99", "12.99"), ("1.234,50", "1234.50"),
     ("€ 12.99", "12.99"), ("-5.00", "-5.00"), ("1,234", "1234"), ("", None), ("n/a", None)],
)
def test_parse_decimal(text: str, expected: str | None) -> None:
    assert rp.parse_decimal(text) == (Decimal(expected) if expected is not None else None)


def test_charset_names() -> None:
    assert rp.charset_from_content_type("text/plain; charset=Cp1252") == "cp1252"
    assert rp.charset_from_content_type("text/plain;charset=windows-31j") == "cp932"
    assert rp.charset_from_content_type("text/plain; charset=UTF-8") == "utf-8"
    assert rp.charset_from_content_type("text/plain") == "cp1252"
    assert rp.charset_from_content_type("text/plain; charset=klingon") == "cp1252"


def test_plain_and_truncated_documents() -> None:
    plain = b"seller-sku\tprice\r\nA\t1.00\r\n"
    assert rp.decompress_bytes(plain) == plain  # not compressed: passed through
    blob = gzip.compress(plain * 200)
    with pytest.raises(EOFError):
        rp.decompress_bytes(blob[: len(blob) // 2])


def test_compression_is_sniffed_not_trusted() -> None:
    import zlib

    plain = b"seller-sku\tprice\r\nx-1\t1.00\r\n"
    d = rp.Decompressor(compressed=True)  # labelled GZIP, but an HTTP layer already gunzipped it
    assert d.feed(plain[:1]) + d.feed(plain[1:]) + d.flush() == plain
    assert rp.decompress_bytes(zlib.compress(plain)) == plain
    stream = rp.Decompressor()
    blob = gzip.compress(plain)
    assert b"".join(stream.feed(blob[i : i + 3]) for i in range(0, len(blob), 3)) + stream.flush() == plain


def test_undecodable_bytes_do_not_stop_the_report() -> None:
    data = b"seller-sku\titem-name\r\nA\tbad \x81 byte\r\n"  # 0x81 is undefined in cp1252
    (row,) = rp.iter_tsv(rp.text_lines(io.BytesIO(data)))
    assert row["seller-sku"] == "A"
    assert "\ufffd" in row["item-name"]


# --- orders ------------------------------------------------------------------------------------------

ORDER_HEADER = ["amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
                "fulfillment-channel", "sales-channel", "product-name", "sku", "asin", "item-status", "quantity",
                "currency", "item-price", "item-tax", "shipping-price", "shipping-tax", "gift-wrap-price",
                "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city", "ship-state",
                "ship-postal-code", "ship-country", "promotion-ids", "is-business-order",
                "tax-collection-model", "some-future-column"]  # no purchase-order-number column


def _order_row(oid: str, **values: str) -> list[str]:
    base = {
        "amazon-order-id": oid, "purchase-date": "2026-01-02T10:00:00+00:00",
        "last-updated-date": "2026-01-03T10:00:00+00:00", "order-status": "Shipped",
        "fulfillment-channel": "Merchant", "sales-channel": "Amazon.de", "product-name": "Kaffeebecher »Müller«",
        "sku": "MUG/1 XL", "asin": "B0MUG00001", "item-status": "Shipped", "quantity": "2", "currency": "EUR",
        "item-price": "39.98", "item-tax": "0.00", "shipping-price": "4.99", "shipping-tax": "0.00",
        "gift-wrap-price": "", "gift-wrap-tax": "", "item-promotion-discount": "-4.00",
        "ship-promotion-discount": "-4.99", "ship-city": "München", "ship-state": "Bayern",
        "ship-postal-code": "80331", "ship-country": "DE", "promotion-ids": "PLM-1, FREE-SHIP-DE",
        "is-business-order": "false", "tax-collection-model": "", "some-future-column": "?",
    }
    base.update(values)
    return [base.get(c, "") for c in ORDER_HEADER]


def test_orders_report_rows_grouped_into_orders() -> None:
    blob = _document([
        ORDER_HEADER,
        _order_row("302-0000001-0000001"),
        _order_row("302-0000002-0000002", **{"order-status": "Pending", "item-status": "Unshipped",
                                             "currency": "", "item-price": "", "item-tax": "",
                                             "shipping-price": "", "item-promotion-discount": "",
                                             "ship-promotion-discount": "", "promotion-ids": "",
                                             "fulfillment-channel": "Amazon"}),
        _order_row("302-0000001-0000001", sku="TEE 2/B", asin="B0TEE00002", quantity="1", **{
            "item-price": "15.00", "item-promotion-discount": "0.00", "ship-promotion-discount": "0.00",
            "shipping-price": "0.00", "promotion-ids": "", "last-updated-date": "2026-01-04T10:00:00+00:00"}),
        _order_row("302-0000003-0000003", **{"order-status": "Cancelled", "item-status": "Cancelled",
                                             "quantity": "0", "item-price": "0.00"}),
        _order_row("302-0000004-0000004", **{"order-status": "Teleported"}),
    ])
    records = list(rp.parse_orders(_rows(blob), DE))
    assert [r.amazon_order_id for r in records] == [
        "302-0000001-0000001", "302-0000002-0000002", "302-0000003-0000003", "302-0000004-0000004"]
    shipped, pending, cancelled, bad = records
    assert isinstance(shipped, Order)
    assert shipped.source == "report"
    assert shipped.marketplace_id == DE
    assert shipped.status is OrderStatus.SHIPPED
    assert shipped.last_update_date == datetime(2026, 1, 4, 10, tzinfo=timezone.utc)  # latest row wins
    assert [i.sku for i in shipped.items] == ["MUG/1 XL", "TEE 2/B"]  # rows need not be adjacent
    mug = shipped.items[0]
    assert mug.title == "Kaffeebecher »Müller«"
    assert mug.item_price is not None and mug.item_price.amount == Decimal("39.98")  # line total
    assert mug.quantity_ordered == mug.quantity_shipped == 2
    assert mug.promotion_discount is not None and mug.promotion_discount.amount == Decimal("4.00")
    assert mug.shipping_discount is not None and mug.shipping_discount.amount == Decimal("4.99")
    assert mug.item_tax is None  # zero charge = no charge
    assert mug.promotion_ids == ("PLM-1", "FREE-SHIP-DE")
    assert shipped.items[1].shipping_price is None
    assert len({i.order_item_id for i in shipped.items}) == 2
    assert shipped.shipping_address is not None and shipped.shipping_address.city == "München"
    assert shipped.purchase_order_number is None  # column absent: tolerated
    assert shipped.currency == "EUR"

    assert isinstance(pending, Order)
    assert pending.status is OrderStatus.PENDING
    assert pending.fulfillment_channel == "AFN"
    assert pending.items[0].item_price is None  # Amazon shows no prices while pending

    assert isinstance(cancelled, Order)
    assert cancelled.status is OrderStatus.CANCELED
    assert cancelled.items[0].quantity_ordered == 0

    assert isinstance(bad, UnparsableOrder)  # one bad order never stops the report
    assert "Teleported" in bad.error
    assert bad.marketplace_id == DE


def test_orders_report_marketplace_from_sales_channel() -> None:
    blob = _document([ORDER_HEADER, _order_row("111-1", **{"sales-channel": "Amazon.com", "currency": "USD"}),
                      _order_row("202-2", **{"sales-channel": "Amazon.co.uk", "currency": "GBP"})])
    records = list(rp.parse_orders(_rows(blob), None))
    assert [r.marketplace_id for r in records] == [US, UK]


def test_orders_report_unknown_channel_without_default_is_unparsable() -> None:
    blob = _document([ORDER_HEADER, _order_row("999-1", **{"sales-channel": "Non-Amazon"})])
    (record,) = rp.parse_orders(_rows(blob), None)
    assert isinstance(record, UnparsableOrder)


def test_report_status_spellings() -> None:
    assert rp.report_status("Shipped - Delivered to Buyer") is OrderStatus.SHIPPED
    assert rp.report_status("Cancelled") is OrderStatus.CANCELED
    assert rp.report_status("Canceled") is OrderStatus.CANCELED
    assert rp.report_status("PartiallyShipped") is OrderStatus.PARTIALLY_SHIPPED
    with pytest.raises(ValueError):
        rp.report_status("")


def test_purchase_dates_stay_aware() -> None:
    blob = _document([ORDER_HEADER, _order_row("302-9", **{"purchase-date": "2026-01-02 10:00:00 PST",
                                                           "last-updated-date": ""})])
    (order,) = rp.parse_orders(_rows(blob), DE)
    assert isinstance(order, Order)
    assert order.purchase_date.utcoffset() == timedelta(hours=-8)
    assert order.last_update_date == order.purchase_date


def test_orders_stream_out_as_they_complete_with_row_counts() -> None:
    rows = [
        {"amazon-order-id": "A", "sku": "1"},
        {"amazon-order-id": "B", "sku": "1"},
        {"amazon-order-id": "A", "sku": "2"},
        {"amazon-order-id": "C", "sku": "1"},
    ]
    counts = rp.count_order_rows(rows)
    assert counts == {"A": 2, "B": 1, "C": 1}
    seen: list[str] = []

    def tracked() -> Iterator[dict[str, str]]:
        for row in rows:
            seen.append(row["amazon-order-id"])
            yield row

    got = []
    for record in rp.parse_orders(tracked(), "ATVPDKIKX0DER", row_counts=counts):
        got.append((record.amazon_order_id, len(seen)))
    # B is out after the second row, A after its last (third) row, C at the end; none waits for the document
    assert got == [("B", 2), ("A", 3), ("C", 4)]


def test_the_parsers_and_facts_import_without_the_sp_api_library() -> None:
    # mapping and config read amazon.marketplaces/limits and settlement parsing reads amazon.reports: none of
    # them may pull in python-amazon-sp-api (slow to import, and it reads the environment when imported)
    import subprocess
    import sys

    code = ("import sys, amz2erp.mapping, amz2erp.config, amz2erp.amazon.reports, amz2erp.amazon.parse, "
            "amz2erp.amazon.settlement_report; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sp_api'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
