"""`amz2erp audit`: does ERPNext hold every Amazon order and settlement of a range exactly once, with the
right totals? And, with ``--fix``, the safe repairs through the normal exactly-once paths.

Reads, in bulk:

* Amazon: the orders placed in the range, from the orders report by order date (a few report calls per
  30 days and marketplace, no per-order call); the settlements Amazon still serves (its last 90 days), one
  document each;
* ERPNext: Sales Orders with an ``amazon_order_id`` dated in the range (a day wider on each side), in pages;
  submitted Journal Entries of those settlements by ``amazon_settlement_id``.

Per-document reads only where a difference needs detail: the Delivery Notes / Sales Invoices that reference a
Sales Order Amazon cancelled (they forbid the cancellation), and each posted settlement's entry for its bank
line (the list API returns no child rows; settlements are a few a month).

The comparison is `amz2erp.audit_rules`. ``--fix`` hands the repairable findings to the writers sync-orders
and sync-settlements use (`OrderWriter`, `SettlementPoster`): a lookup before every insert, an intent in the
ledger before every write. The ledger is not asked whether they are done: the audit has just seen ERPNext
disagree with it, so the writers decide from ERPNext alone (`_Reopened`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from amz2erp import mapping
from amz2erp.amazon import limits
from amz2erp.amazon.marketplaces import Marketplace
from amz2erp.amazon.settlement_report import Settlement, SettlementError
from amz2erp.audit_rules import (
    AmazonOrderFact,
    Finding,
    FindingKind,
    JournalEntryRow,
    MonthTotals,
    SalesOrderRow,
    SettlementFact,
    compare_orders,
    compare_settlements,
    month_totals,
)
from amz2erp.engine.orders import OrderWriter, Outcome
from amz2erp.engine.plan import PlannedWrite
from amz2erp.engine.runtime import Runtime, resolve_marketplaces
from amz2erp.engine.settlements import Outcome as SettlementOutcome
from amz2erp.engine.settlements import SettlementPoster, _bank_total
from amz2erp.erpnext.client import ErpNextClient
from amz2erp.erpnext.schema import SETTLEMENT_ID_FIELD, Doctype
from amz2erp.errors import UsageError
from amz2erp.mapping import MappingContext
from amz2erp.models import Order, OrderStatus, UnparsableOrder
from amz2erp.state import Kind, LedgerEntry, Status

log = logging.getLogger(__name__)

SO, JE = Doctype.SALES_ORDER, Doctype.JOURNAL_ENTRY
SLACK = timedelta(days=1)  # a day either side: local dates differ from UTC by at most 14 hours
BATCH = 100  # ids per `in` filter: a long URL fails on some proxies
SO_FIELDS = ("name", "amazon_order_id", "docstatus", "grand_total", "currency", "amazon_marketplace_id",
             "transaction_date")
#: what references a Sales Order and forbids cancelling it: (doctype, child doctype, link field)
REFERENCES = ((Doctype.DELIVERY_NOTE, "Delivery Note Item", "against_sales_order"),
              (Doctype.SALES_INVOICE, "Sales Invoice Item", "sales_order"))


@dataclass
class FixOutcome:
    """What ``--fix`` did with one finding."""

    finding: Finding
    ok: bool
    outcome: str  # the writer's outcome ("created", "cancelled", "posted", "would post", …)
    document: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.finding.kind.value, "key": self.finding.key, "ok": self.ok, "outcome": self.outcome,
                "document": self.document, "detail": self.detail}


@dataclass
class AuditResult:
    start: date
    end: date
    marketplaces: list[str]  # codes
    findings: list[Finding] = field(default_factory=list)
    totals: list[MonthTotals] = field(default_factory=list)
    fixes: list[FixOutcome] = field(default_factory=list)
    plans: list[PlannedWrite] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settlements_checked: bool = False

    @property
    def remaining(self) -> list[Finding]:
        """What still does not tie: every finding not repaired by this run (a dry run repairs nothing)."""
        repaired = {id(f.finding) for f in self.fixes if f.ok and f.document is not None}
        return [f for f in self.findings if id(f) not in repaired]


# --- Amazon's side ------------------------------------------------------------------------------------------


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def mapped_total(order: Order, ctx: MappingContext) -> Decimal | None:
    """The grand total amz2erp's mapping writes for this order under the configured tax policy: Amazon's
    OrderTotal (less marketplace-facilitator tax when excluded) where Amazon gives one, else the mapped
    document's own sum (the orders report carries line amounts, no OrderTotal)."""
    expected = mapping.expected_grand_total(order, ctx)
    if expected is not None:
        return expected
    try:
        doc = mapping.order_to_sales_order(order, ctx, customer="-", conversion_rate=Decimal(1),
                                           item_codes={i.order_item_id: "-" for i in order.items})
    except (mapping.MappingError, mapping.OrderSkipped):
        return None
    return mapping.sales_order_total(doc)


def order_fact(order: Order, ctx: MappingContext) -> AmazonOrderFact:
    importable = not order.status.is_canceled and order.status is not OrderStatus.UNFULFILLABLE \
        and mapping.order_skip_reason(order, ctx) is None
    try:
        currency = mapping.order_currency(order)
    except mapping.MappingError:
        currency = ""
    return AmazonOrderFact(order.amazon_order_id, order.marketplace_id,
                           mapping.marketplace_date(order.purchase_date, order.marketplace_id),
                           order.status.is_canceled, importable, currency,
                           mapped_total(order, ctx) if importable else None)


def amazon_orders(rt: Runtime, marketplace: Marketplace, start: date, end: date) -> Iterator[Order | UnparsableOrder]:
    """Every order placed in [start − 1 day, end + 1 day] (UTC) in one marketplace, from the orders report by
    order date; the caller keeps those whose local date is in the range."""
    now = rt.clock.now()
    upper = min(_utc(end) + timedelta(days=1) + SLACK, now - limits.ORDERS_LAG)
    return iter(rt.amazon.fetch_orders_report([marketplace.marketplace_id], _utc(start) - SLACK, upper,
                                              by_order_date=True))


# --- ERPNext's side -----------------------------------------------------------------------------------------


def sales_orders(erp: ErpNextClient, start: date, end: date) -> list[SalesOrderRow]:
    """Every Sales Order with an Amazon id dated in the range, a day wider each side, any docstatus."""
    rows = erp.list(SO, fields=SO_FIELDS, filters=[["amazon_order_id", "is", "set"],
                                                   ["transaction_date", "between",
                                                    [(start - SLACK).isoformat(), (end + SLACK).isoformat()]]])
    return [SalesOrderRow.from_row(r) for r in rows]


def references(erp: ErpNextClient, sales_order: str) -> list[str]:
    """Delivery Notes / Sales Invoices (not cancelled) whose lines point at this Sales Order: the same rule
    as sync-orders' cancellations (Delivery Note Item.against_sales_order, Sales Invoice Item.sales_order)."""
    out: list[str] = []
    for doctype, child, link in REFERENCES:
        rows = erp.list(doctype, fields=["name"], filters=[[child, link, "=", sales_order],
                                                           [doctype, "docstatus", "!=", 2]])
        out.extend(f"{doctype} {r['name']}" for r in rows)
    return out


# --- the audit ----------------------------------------------------------------------------------------------


def check_range(start: date, end: date, today: date) -> None:
    if start > today:
        raise UsageError(f"--from {start} is in the future")
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")


def audit(rt: Runtime, *, start: date, end: date, marketplaces: Iterable[str] = (), fix: bool = False,
          dry_run: bool = False) -> AuditResult:
    """Compare both sides over [start, end] (marketplace-local days); with ``fix``, repair what is safe."""
    today = rt.clock.now().date()
    check_range(start, end, today)
    end = min(end, today)
    chosen = resolve_marketplaces(rt, marketplaces)
    result = AuditResult(start, end, [m.code for m in chosen])
    ctx = rt.mapping_context()
    mids = {m.marketplace_id for m in chosen}
    whole_seller = not list(marketplaces)
    ledger = {e.key: e.erp_name for e in rt.state.entries(Kind.ORDER, Status.DONE) if e.erp_name}

    with rt.reporter.progress("ERPNext Sales Orders") as task:
        so_rows = sales_orders(rt.erp, start, end)
        task.advance(len(so_rows))
    live_ids = {r.order_id for r in so_rows if r.live}

    facts: list[AmazonOrderFact] = []
    known_ids: set[str] = set()
    to_fix: dict[str, Order] = {}  # the orders a repair may need, kept whole (the rest only as facts)
    unreadable: list[str] = []
    for marketplace in chosen:
        horizon = limits.orders_horizon(rt.clock.now(), [marketplace])
        if horizon is not None and _utc(end) < horizon:
            result.notes.append(f"{marketplace.code}: the range lies before Amazon's two-year horizon "
                                f"({horizon:%Y-%m-%d}); Amazon has no orders to compare")
            continue
        with rt.reporter.progress(f"{marketplace.code} orders placed {start} → {end} (report)") as task:
            for record in amazon_orders(rt, marketplace, start, end):
                task.advance()
                known_ids.add(record.amazon_order_id)
                if isinstance(record, UnparsableOrder):
                    unreadable.append(record.amazon_order_id)
                    continue
                fact = order_fact(record, ctx)
                if not start <= fact.day <= end:
                    continue
                facts.append(fact)
                if (fact.importable and fact.order_id not in live_ids) or (fact.cancelled and fact.order_id in live_ids):
                    to_fix[fact.order_id] = record
    if unreadable:
        result.notes.append(f"{len(unreadable)} order(s) in Amazon's report could not be read and were not "
                            f"compared: {', '.join(sorted(unreadable)[:10])}")

    findings = compare_orders(facts, so_rows, start=start, end=end, known_ids=known_ids, marketplaces=mids,
                              ledger=ledger, whole_seller=whole_seller)
    for f in findings:
        if f.kind is FindingKind.CANCELLED_ON_AMAZON:
            f.blocked_by = tuple(references(rt.erp, f.documents[0]))

    settlements: dict[str, tuple[Settlement, dict[str, Any]]] = {}
    poster: SettlementPoster | None = None
    if rt.settings.settlements.bank_account:
        poster = SettlementPoster(rt, dry_run=dry_run or not fix)
        findings.extend(_audit_settlements(rt, poster, chosen, start, end, settlements, result))
    else:
        result.notes.append("settlements were not compared: [settlements] bank_account is not set")

    result.findings = findings
    result.totals = month_totals(facts, so_rows, findings, start=start, end=end, known_ids=known_ids,
                                 marketplaces=mids, whole_seller=whole_seller)
    for f in findings:
        rt.counts.add(f"findings: {f.kind.value}")
    if fix:
        _fix_orders(rt, result, to_fix, dry_run=dry_run)
        if poster is not None:
            _fix_settlements(rt, result, poster, settlements)
    return result


def _audit_settlements(rt: Runtime, poster: SettlementPoster, chosen: list[Marketplace], start: date, end: date,
                       settlements: dict[str, tuple[Settlement, dict[str, Any]]],
                       result: AuditResult) -> list[Finding]:
    """Settlements deposited in the range that Amazon still serves, against their submitted entries."""
    now = rt.clock.now()
    floor = (now - timedelta(days=89)).date()
    if start < floor:
        result.notes.append(f"settlements deposited before {floor} were not compared: Amazon serves settlement "
                            "reports for 90 days (older ones: `amz2erp sync-settlements --since`)")
    refs = rt.amazon.list_settlement_reports(_utc(start), [m.marketplace_id for m in chosen])
    facts: list[SettlementFact] = []
    with rt.reporter.progress("settlements", total=len(refs)) as task:
        for ref in refs:
            task.advance()
            try:
                s = rt.amazon.fetch_settlement(ref.document_id)
            except SettlementError as exc:
                result.notes.append(f"settlement report {ref.report_id} could not be read: {exc}")
                continue
            if s.settlement_id in settlements or not start <= s.deposit_date <= end:
                continue  # an EU settlement is listed once per marketplace
            settlements[s.settlement_id] = (s, {"document_id": ref.document_id, "report_id": ref.report_id})
            facts.append(SettlementFact(s.settlement_id, (ref.marketplace_ids or ("",))[0], s.deposit_date,
                                        s.total, s.currency))
    result.settlements_checked = True
    ids = sorted(settlements)
    rows: list[JournalEntryRow] = []
    bank_currency = poster.bank_currency()
    for i in range(0, len(ids), BATCH):
        for row in rt.erp.list(JE, fields=["name", SETTLEMENT_ID_FIELD],
                               filters=[[SETTLEMENT_ID_FIELD, "in", ids[i:i + BATCH]], ["docstatus", "=", 1]]):
            sid = str(row[SETTLEMENT_ID_FIELD])
            s = settlements[sid][0]
            bank = None
            if s.total_minor > 0 and s.currency == bank_currency:  # the bank line is the deposit itself
                doc = rt.erp.get(JE, str(row["name"]))
                bank = _bank_total(doc or {}, poster.accounts)
            rows.append(JournalEntryRow(str(row["name"]), sid, bank))
    known = {e.key: e.erp_name for e in rt.state.entries(Kind.SETTLEMENT, Status.DONE) if e.erp_name}
    return compare_settlements(facts, rows, ledger=known)


# --- --fix ----------------------------------------------------------------------------------------------------


class _Reopened:
    """The ledger as a writer sees it during a repair: the records the audit found wrong in ERPNext have no
    entry (so the writer decides from ERPNext: lookup, then write); every other read and every write is the
    ledger's own."""

    def __init__(self, ledger: Any, kind: Kind, keys: set[str]) -> None:
        self._ledger = ledger
        self._kind = kind
        self._keys = keys

    def get(self, kind: Kind, key: str) -> LedgerEntry | None:
        if kind is self._kind and key in self._keys:
            return None
        result: LedgerEntry | None = self._ledger.get(kind, key)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def _fix_orders(rt: Runtime, result: AuditResult, orders: dict[str, Order], *, dry_run: bool) -> None:
    todo = [f for f in result.findings if f.fixable and f.kind in (FindingKind.MISSING, FindingKind.CANCELLED_ON_AMAZON)
            and f.key in orders]
    for f in result.findings:
        if f.kind is FindingKind.CANCELLED_ON_AMAZON and f.blocked_by:
            result.fixes.append(FixOutcome(f, False, "not touched", None,
                                           f"referenced by {', '.join(f.blocked_by)}"))
    if not todo:
        return
    writer = OrderWriter(rt, dry_run=dry_run)
    writer.state = _Reopened(writer.state, Kind.ORDER, {f.key for f in todo})  # type: ignore[assignment]
    done: set[str] = set()
    with rt.reporter.progress("repairing orders", total=len(todo)) as task:
        for f in todo:
            task.advance()
            if f.key in done:
                continue  # one order may be behind two findings (e.g. cancelled and duplicated)
            done.add(f.key)
            res = writer.process(orders[f.key])
            result.plans.extend(res.plan)
            ok = res.outcome in (Outcome.CREATED, Outcome.CANCELLED)
            rt.counts.add(f"orders {res.outcome.value}")
            name = (res.detail or None) if ok and not dry_run else None
            result.fixes.append(FixOutcome(f, ok, res.outcome.value, name,
                                           "" if ok else res.detail))


def _fix_settlements(rt: Runtime, result: AuditResult, poster: SettlementPoster,
                     settlements: dict[str, tuple[Settlement, dict[str, Any]]]) -> None:
    todo = [f for f in result.findings if f.kind is FindingKind.SETTLEMENT_NOT_POSTED and f.key in settlements]
    if not todo:
        return
    poster.state = _Reopened(poster.state, Kind.SETTLEMENT, {f.key for f in todo})  # type: ignore[assignment]
    for f in todo:
        s, origin = settlements[f.key]
        res = poster.post(s, origin=origin)
        if res is None:
            continue
        ok = res.outcome in (SettlementOutcome.POSTED, SettlementOutcome.WOULD_POST)
        result.fixes.append(FixOutcome(f, ok, res.outcome.value,
                                       res.journal_entry if res.outcome is SettlementOutcome.POSTED else None,
                                       "" if ok else res.detail))
    result.plans.extend(poster.plans)
