"""The audit's comparison rules (amz2erp.audit_rules): pure functions, no server."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from amz2erp.audit_rules import (
    AmazonOrderFact,
    FindingKind,
    JournalEntryRow,
    SalesOrderRow,
    SettlementFact,
    compare_orders,
    compare_settlements,
    month_totals,
)

US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
START, END = date(2026, 9, 1), date(2026, 10, 31)


def order(oid: str, *, day: date = date(2026, 9, 5), total: str | None = "10.00", cancelled: bool = False,
          importable: bool = True, marketplace: str = US) -> AmazonOrderFact:
    return AmazonOrderFact(oid, marketplace, day, cancelled, importable and not cancelled, "USD",
                           Decimal(total) if total is not None and importable and not cancelled else None)


def so(name: str, oid: str, *, docstatus: int = 1, total: str = "10.00", day: date | None = date(2026, 9, 5),
       marketplace: str | None = US) -> SalesOrderRow:
    return SalesOrderRow(name, oid, docstatus, Decimal(total), "USD", marketplace, day)


def kinds(findings: list) -> set[tuple[str, str]]:
    return {(f.kind.value, f.key) for f in findings}


def compare(amazon: list[AmazonOrderFact], erp: list[SalesOrderRow], **kw: object) -> list:
    args: dict = {"start": START, "end": END, "known_ids": {a.order_id for a in amazon}, "marketplaces": {US, CA},
                  **kw}
    return compare_orders(amazon, erp, **args)


def test_books_that_tie_have_no_finding() -> None:
    amazon = [order("1"), order("2", total="5.50"), order("3", cancelled=True), order("4", importable=False)]
    erp = [so("SO-1", "1"), so("SO-2", "2", total="5.50"), so("SO-3", "3", docstatus=2)]
    assert compare(amazon, erp) == []


def test_each_kind_of_damage_is_one_finding() -> None:
    amazon = [order("missing"), order("dup"), order("total", total="12.00"), order("cancelled", cancelled=True),
              order("cancelled-here")]
    erp = [so("SO-D1", "dup"), so("SO-D2", "dup", docstatus=0), so("SO-T", "total", total="12.01"),
           so("SO-C", "cancelled"), so("SO-CH", "cancelled-here", docstatus=2), so("SO-U", "unknown")]
    found = compare(amazon, erp, ledger={"dup": "SO-D1"})
    assert kinds(found) == {("missing", "missing"), ("duplicate", "dup"), ("total mismatch", "total"),
                            ("cancelled on Amazon, live in ERPNext", "cancelled"),
                            ("cancelled in ERPNext, live on Amazon", "cancelled-here"), ("unknown", "unknown")}
    dup = next(f for f in found if f.kind is FindingKind.DUPLICATE)
    assert dup.documents == ("SO-D1", "SO-D2") and dup.known_to_ledger == "SO-D1" and not dup.fixable
    total = next(f for f in found if f.kind is FindingKind.TOTAL_MISMATCH)
    assert (total.amazon, total.erpnext, total.documents) == ("12.00 USD", "12.01 USD", ("SO-T",))
    assert {f.kind for f in found if f.fixable} == {FindingKind.MISSING, FindingKind.CANCELLED_ON_AMAZON}


def test_a_duplicate_compares_the_total_of_the_order_amz2erp_wrote_only() -> None:
    amazon = [order("1", total="10.00")]
    erp = [so("SO-OTHER", "1", total="99.00"), so("SO-OURS", "1", total="10.00")]
    assert kinds(compare(amazon, erp, ledger={"1": "SO-OURS"})) == {("duplicate", "1")}
    # without a ledger entry the submitted one with the lowest name is the order's
    assert kinds(compare(amazon, erp)) == {("duplicate", "1"), ("total mismatch", "1")}


def test_a_blocked_cancellation_is_not_fixable() -> None:
    [f] = compare([order("1", cancelled=True)], [so("SO-1", "1")])
    f.blocked_by = ("Sales Invoice SINV-1",)
    assert f.kind.repairable and not f.fixable and f.as_dict()["blocked_by"] == ["Sales Invoice SINV-1"]


def test_unknown_only_for_live_orders_dated_in_the_range_and_audited_marketplaces() -> None:
    erp = [so("SO-IN", "u1"), so("SO-CANCELLED", "u2", docstatus=2), so("SO-BEFORE", "u3", day=date(2026, 8, 31)),
           so("SO-CA", "u4", marketplace=CA), so("SO-NONE", "u5", marketplace=None),
           so("SO-KNOWN", "k1", day=date(2026, 8, 31))]
    known = {"k1"}  # Amazon placed it just outside the range: dated differently, not unknown
    assert kinds(compare([], erp, known_ids=known)) == {("unknown", "u1"), ("unknown", "u4"), ("unknown", "u5")}
    only_us = compare([], erp, known_ids=known, marketplaces={US}, whole_seller=False)
    assert kinds(only_us) == {("unknown", "u1")}


def test_orders_amz2erp_does_not_import_are_not_missing() -> None:
    assert compare([order("pending", importable=False), order("gone", cancelled=True)], []) == []


def test_settlements_not_posted_twice_and_bank_line() -> None:
    amazon = [SettlementFact("S1", US, date(2026, 9, 10), Decimal("100.00"), "USD"),
              SettlementFact("S2", US, date(2026, 9, 24), Decimal("50.00"), "USD"),
              SettlementFact("S3", US, date(2026, 10, 8), Decimal("70.00"), "USD"),
              SettlementFact("S4", US, date(2026, 10, 22), Decimal("-5.00"), "USD")]
    erp = [JournalEntryRow("JE-1", "S1", Decimal("100.00")), JournalEntryRow("JE-2", "S2", Decimal("50.00")),
           JournalEntryRow("JE-2B", "S2", Decimal("50.00")), JournalEntryRow("JE-3", "S3", Decimal("69.00")),
           JournalEntryRow("JE-4", "S4", None)]
    found = compare_settlements(amazon, erp, ledger={"S2": "JE-2"})
    assert kinds(found) == {("settlement posted twice", "S2"), ("settlement bank line differs", "S3")}
    assert kinds(compare_settlements(amazon[:1], [])) == {("settlement not posted", "S1")}
    twice = next(f for f in found if f.kind is FindingKind.SETTLEMENT_POSTED_TWICE)
    assert twice.documents == ("JE-2", "JE-2B") and twice.known_to_ledger == "JE-2" and twice.month == "2026-09"


def test_month_totals_side_by_side() -> None:
    amazon = [order("1", total="10.00"), order("2", total="20.00", day=date(2026, 10, 2)),
              order("3", cancelled=True), order("missing", total="7.00"), order("ca", marketplace=CA)]
    erp = [so("SO-1", "1", total="10.00"), so("SO-1B", "1", total="10.00"),
           so("SO-2", "2", total="20.00", day=date(2026, 10, 1)),  # dated a day earlier: counted in Amazon's month
           so("SO-3", "3", total="4.00"), so("SO-X", "x", total="1.00", marketplace=None, day=date(2026, 9, 9)),
           so("SO-CA", "ca", marketplace=CA), so("SO-OLD", "old", docstatus=2)]
    findings = compare(amazon, erp)
    table = {(t.marketplace, t.month): t for t in month_totals(amazon, erp, findings, start=START, end=END,
                                                               known_ids={a.order_id for a in amazon},
                                                               marketplaces={US, CA})}
    sep = table[(US, "2026-09")]
    assert (sep.amazon_orders, sep.amazon_importable, sep.erpnext_orders) == (3, 2, 3)
    assert (sep.amazon_total, sep.erpnext_total) == (Decimal("17.00"), Decimal("24.00"))
    assert sep.findings == {"missing": 1, "duplicate": 1, "cancelled": 1} and not sep.ties
    octo = table[(US, "2026-10")]
    assert (octo.amazon_total, octo.erpnext_total, octo.ties) == (Decimal("20.00"), Decimal("20.00"), True)
    assert table[("", "2026-09")].findings == {"unknown": 1}
    assert table[(CA, "2026-09")].ties
    as_json = sep.as_dict()
    assert as_json["difference"] == "-7.00" and as_json["amazon_total"] == "17.00"
