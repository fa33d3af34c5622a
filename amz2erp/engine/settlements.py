"""sync-settlements: every closed Amazon settlement becomes one submitted Journal Entry, exactly once.

Sources, all ending in the same `SettlementPoster.post`:

* default (cron): the V2 settlement reports Amazon lists (it publishes them itself and keeps them 90 days),
  oldest first; a cursor on report creation time keeps the listing short;
* ``--file``: V2 files downloaded from Seller Central;
* ``--since``: Finances event groups and their transactions, for history older than the reports; posted only
  when the transactions add up to the group total to the cent.

The key is the settlement-id: the Journal Entry's ``amazon_settlement_id`` and the ledger (`Kind.SETTLEMENT`).
Intent before the write (with the content's sha256), outcome after; after an ambiguous failure,
or when the ledger does not know a settlement, ERPNext is asked for a submitted entry with that id, so a crash
at any point followed by a re-run leaves exactly one entry. A settlement that comes back with other content (a
reissue) is never posted over the first: the run reports it and exits 1; once the user cancels the old entry,
the next run posts the new one.

A dry run writes through `engine.dryrun` (an ERPNext client and a ledger that keep nothing; reads go to the
real ones) and notes each entry it would post as a `PlannedWrite`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from amz2erp.amazon.reports import parse_datetime
from amz2erp.amazon.settlement_report import (
    NeedsSettlementFileError,
    Settlement,
    SettlementError,
    SettlementImbalanceError,
    SettlementOpenError,
    format_minor,
    parse_settlement_report,
    settlement_from_transactions,
    to_minor,
)
from amz2erp.clearing_mapping import ReceiptEntry, receipt_entries
from amz2erp.engine.dryrun import erp_for, ledger_for
from amz2erp.engine.invoices import Invoicer, SettlementInvoicingError
from amz2erp.engine.masters import find_exchange_rate
from amz2erp.engine.plan import Action, PlannedWrite
from amz2erp.engine.runtime import Runtime, resolve_marketplaces
from amz2erp.erpnext.schema import (
    DELIVERY_CUSTOM_FIELDS,
    INVOICE_CUSTOM_FIELDS,
    SETTLEMENT_CUSTOM_FIELDS,
    SETTLEMENT_ID_FIELD,
    Doctype,
    full_account_name,
)
from amz2erp.errors import (
    AmazonAuthError,
    AmazonBadRequestError,
    Amz2ErpError,
    ConfigError,
    ErpNextDuplicateError,
    RecordError,
    RemoteAuthError,
    RemoteUnavailableError,
    UsageError,
)
from amz2erp.invoice_refs import POSTING_KEY_FIELD, Invoicing
from amz2erp.settlement_mapping import (
    Conversion,
    NothingToPostError,
    RateSource,
    SettlementAccounts,
    SettlementEntry,
    SettlementSummary,
    resolve_accounts,
    settlement_to_journal_entry,
    summarise,
)
from amz2erp.state import Kind, Status

log = logging.getLogger(__name__)

KIND = Kind.SETTLEMENT
DONE = Status.DONE
STREAM = "settlements"  # cursor stream: report creation time
CURSOR_KEY = "*"  # one cursor for the seller: reports are listed across marketplaces
JE = Doctype.JOURNAL_ENTRY
SO = Doctype.SALES_ORDER
SO_BATCH = 100  # amazon_order_ids per `in` filter: a long URL fails on some proxies
SHOWN = 10  # orders named per problem in the text summary (--json has them all)
PENDING, DONE_RECEIPTS = "pending", "done"  # invoice mode: the settlement's receipt entries, in its ledger info


class Outcome(str, Enum):
    POSTED = "posted"
    WOULD_POST = "would post"  # dry run
    UNCHANGED = "already posted"
    REISSUED = "reissued"  # same id, other content, the first entry still submitted
    UNBALANCED = "unbalanced"
    NEEDS_FILE = "needs the settlement file"
    OPEN = "open"
    NOTHING = "nothing to post"
    FAILED = "failed"

    @property
    def is_problem(self) -> bool:
        return self in (Outcome.REISSUED, Outcome.UNBALANCED, Outcome.NEEDS_FILE, Outcome.FAILED)


@dataclass(frozen=True)
class OrderProblem:
    order_id: str
    settled: Decimal
    sales_order: str | None  # None: settled without a Sales Order
    grand_total: Decimal | None


@dataclass
class SettlementResult:
    key: str  # the settlement-id, or the group id / file name until one is known
    outcome: Outcome
    detail: str = ""
    journal_entry: str | None = None
    currency: str = ""
    total: Decimal | None = None
    deposit_date: date | None = None
    period: str = ""
    bank_line: Decimal | None = None  # the entry's bank (or clearing) line in its account's currency, signed
    bank_currency: str = ""  # the currency of bank_line
    conversion: dict[str, Any] | None = None  # a settlement in another currency: rate, source, company amounts
    lines: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[dict[str, Any]] = field(default_factory=list)
    without_sales_order: list[OrderProblem] = field(default_factory=list)
    total_differs: list[OrderProblem] = field(default_factory=list)
    invoicing: dict[str, Any] | None = None  # invoice mode: the documents cleared, receipts, per-order problems

    def as_dict(self) -> dict[str, Any]:
        def problem(p: OrderProblem) -> dict[str, Any]:
            return {"amazon_order_id": p.order_id, "settled": str(p.settled), "sales_order": p.sales_order,
                    "grand_total": None if p.grand_total is None else str(p.grand_total)}

        return {
            "settlement_id": self.key, "outcome": self.outcome.value, "detail": self.detail,
            "journal_entry": self.journal_entry, "currency": self.currency,
            "total": None if self.total is None else str(self.total),
            "deposit_date": self.deposit_date.isoformat() if self.deposit_date else None, "period": self.period,
            "bank_line": None if self.bank_line is None else str(self.bank_line),
            "bank_currency": self.bank_currency or None, "conversion": self.conversion, "lines": self.lines,
            "unmapped": self.unmapped, "orders_without_sales_order": [problem(p) for p in self.without_sales_order],
            "orders_total_differs": [problem(p) for p in self.total_differs],
            **({"invoicing": self.invoicing} if self.invoicing is not None else {}),
        }


@dataclass
class SyncSettlementsResult:
    results: list[SettlementResult] = field(default_factory=list)
    plans: list[PlannedWrite] = field(default_factory=list)  # dry run: the entries that would be posted

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r.outcome.is_problem)


def content_hash(settlement: Settlement) -> str:
    """The file's sha256; for a settlement rebuilt from transactions, a sha256 of its rows."""
    if settlement.file_sha256:
        return settlement.file_sha256
    rows = sorted((r.key, r.order_id, r.adjustment_id, r.amount_minor) for r in settlement.rows)
    text = json.dumps([settlement.settlement_id, settlement.total_minor, settlement.currency, rows])
    return hashlib.sha256(text.encode()).hexdigest()


def _period(s: Settlement) -> str:
    return f"{s.start.date().isoformat()}–{s.end.date().isoformat()}"


class SettlementPoster:
    """Posts one settlement at a time (settlements are few: no pool, which keeps the order of the books)."""

    def __init__(self, rt: Runtime, *, dry_run: bool) -> None:
        self.rt = rt
        # a dry run reads the real ERPNext and ledger and writes to ones that keep nothing
        self.erp = erp_for(rt.erp, dry_run=dry_run)
        self.state = ledger_for(rt.state, dry_run=dry_run)
        self.dry_run = dry_run
        self.plans: list[PlannedWrite] = []
        settings = rt.settings
        company = rt.company
        self.company = str(company.get("name", settings.defaults.company))
        self.company_currency = str(company.get("default_currency") or "USD")
        abbr = str(company.get("abbr") or "")
        self.table = settings.settlements.category_table()
        mf = settings.accounts.marketplace_facilitator_tax
        self.accounts: SettlementAccounts = resolve_accounts(
            settings.settlements, self.table, abbr,
            marketplace_facilitator_tax=full_account_name(mf, abbr) if mf else None,
            exchange_gain_loss=str(company.get("exchange_gain_loss_account") or ""),
        )
        self.book_mf_tax = settings.orders.marketplace_facilitator_tax == "book"
        if dry_run and self.accounts.bank is None:  # a dry run shows the entry before the bank is configured
            self.accounts = replace(self.accounts, bank="([settlements] bank_account not set)")
        self.seen: dict[str, str] = {}  # settlement-id → content hash, this run (EU lists one per marketplace)
        self._field_checked = dry_run
        self._periods: dict[tuple[str, str, int, str], Any] | None = None
        self.rates = RateFinder(rt, self.erp, self.company_currency)
        self._bank_currency: str | None = None
        # invoice mode: each settled order gets its Sales Invoice / Credit Notes first, the entry clears them
        self.invoice_mode = settings.settlements.mode == "invoice"
        self._invoicer: Invoicer | None = None  # one for the run: later settlements' refunds know its invoices
        self._waiting_for: str | None = None  # invoice mode: the settlement whose invoicing failed this run

    # --- one settlement -----------------------------------------------------------------------------------

    def post(self, settlement: Settlement, *, origin: dict[str, Any] | None = None,
             group: dict[str, Any] | None = None) -> SettlementResult | None:
        """Post one parsed settlement (``group``: its financial event group, when the caller has it); None when
        this run already handled the same content."""
        sid = settlement.settlement_id
        sha = content_hash(settlement)
        if self.seen.get(sid) == sha:
            self.rt.counts.add("duplicate listings")
            return None
        self.seen[sid] = sha
        res = SettlementResult(sid, Outcome.FAILED, currency=settlement.currency, total=settlement.total,
                               deposit_date=settlement.deposit_date, period=_period(settlement))
        try:
            known = self.state.get(KIND, sid)
            if self._waiting_for is not None and (known is None or known.status != DONE):
                # invoice mode posts in order: a later settlement would book the refunds of the waiting one's
                # orders without their invoices
                raise SettlementError(f"settlement {sid} waits for settlement {self._waiting_for}, which could not "
                                      "be invoiced (invoice mode posts settlements in order)")
            self._post(settlement, sha, res, origin or {}, group)
        except (RemoteAuthError, RemoteUnavailableError, ConfigError):
            raise  # fatal for the run; a "writing" intent is settled by the next run's lookup
        except SettlementInvoicingError as exc:
            res.outcome, res.detail = Outcome.FAILED, str(exc)
            self._waiting_for = self._waiting_for or sid
        except SettlementImbalanceError as exc:
            res.outcome, res.detail = Outcome.UNBALANCED, str(exc)
        except NothingToPostError as exc:
            res.outcome, res.detail = Outcome.NOTHING, str(exc)
        except (SettlementError, RecordError, Amz2ErpError) as exc:
            res.outcome, res.detail = Outcome.FAILED, str(exc)
        if res.outcome.is_problem and res.outcome is not Outcome.REISSUED:
            self.state.mark_failed(KIND, sid, res.detail, info=self._info(settlement, sha, origin or {}))
        self.rt.counts.add(f"settlements {res.outcome.value}")
        return res

    def _info(self, s: Settlement, sha: str, origin: dict[str, Any], receipts: str | None = None) -> dict[str, Any]:
        """``receipts`` (invoice mode): PENDING from the entry until its receipts are posted, then DONE_RECEIPTS."""
        extra = {} if receipts is None else {"receipts": receipts}
        return {"total": str(s.total), "total_minor": s.total_minor, "currency": s.currency, "start": s.start.date().isoformat(),
                "end": s.end.date().isoformat(), "deposit": s.deposit_date.isoformat(), "source": s.source.value,
                "sha256": sha, "group_id": s.group_id, **origin, **extra}

    def _post(self, s: Settlement, sha: str, res: SettlementResult, origin: dict[str, Any],
              group: dict[str, Any] | None) -> None:
        sid = s.settlement_id
        entry = self.state.get(KIND, sid)
        twin = None if entry is not None else self._same_period(s)
        if twin is not None:
            # posted earlier under its financial event group id (--since knew no settlement-id): never twice
            res.outcome, res.journal_entry = Outcome.UNCHANGED, twin.erp_name
            res.detail = f"posted as {twin.key} ({twin.erp_name})"
            return
        if entry is not None and entry.status == DONE:
            if not self._differs(entry.info, entry.content_hash, s, sha):
                res.outcome, res.journal_entry = Outcome.UNCHANGED, entry.erp_name
                if self.invoice_mode and entry.info.get("receipts") == PENDING:
                    # the entry was posted, its receipts not (all) yet: the documents are in the ledger
                    self._clear(s, sha, res, origin, group, entry.erp_name or "")
                return
            if self.find(sid) is not None:
                res.outcome, res.journal_entry = Outcome.REISSUED, entry.erp_name
                res.detail = (f"settlement {sid} came back with other content (total {format_minor(s.total_minor, s.currency)} "
                              f"{s.currency}, was {format_minor(int(entry.info.get('total_minor', 0)), s.currency)}); "
                              f"not reposted: cancel Journal Entry {entry.erp_name} in ERPNext and run again")
                log.warning("%s", res.detail)
                return
            # the user cancelled the first entry: the reissued settlement is posted below

        conversion, invoicing, built = self._build(s, group, res)
        self._describe(built, res)
        if invoicing is None:
            self._match_orders(built.summary, res)
        if self.dry_run:
            res.outcome = Outcome.WOULD_POST
            self.plans.append(PlannedWrite(Action.CREATE, JE, key=sid, doc=dict(built.payload, docstatus=1),
                                           reason=f"settlement {sid}, deposit {s.deposit_date.isoformat()}"))
            if invoicing is not None:
                self._post_receipts(s, built, invoicing, conversion, res)
            return
        self._require_field()
        found = self.find(sid)  # a crashed run, another tool, or a ledger that was lost
        if found is not None:
            self._adopt(s, sha, found, res, origin)
            if invoicing is not None and res.outcome is Outcome.UNCHANGED:
                self._post_receipts(s, built, invoicing, conversion, res)
                self.state.mark_done(KIND, sid, str(found["name"]), sha, info=self._info(s, sha, origin, DONE_RECEIPTS))
            return
        self.state.mark_writing(KIND, sid, sha)
        doc = dict(built.payload, docstatus=1)
        try:
            created = self.erp.insert(JE, doc, key={SETTLEMENT_ID_FIELD: sid})
        except ErpNextDuplicateError:
            again = self.find(sid)
            if again is None:
                raise
            created = again
        except RecordError:
            self.state.forget(KIND, sid)  # ERPNext refused it: nothing was written
            raise
        res.journal_entry = str(created["name"])
        receipts = PENDING if invoicing is not None else None
        self.state.mark_done(KIND, sid, res.journal_entry, sha, info=self._info(s, sha, origin, receipts))
        res.outcome = Outcome.POSTED
        if invoicing is not None:
            self._post_receipts(s, built, invoicing, conversion, res)
            self.state.mark_done(KIND, sid, res.journal_entry, sha, info=self._info(s, sha, origin, DONE_RECEIPTS))

    def _build(self, s: Settlement, group: dict[str, Any] | None,
               res: SettlementResult) -> tuple[Conversion | None, Invoicing | None, SettlementEntry]:
        """The conversion, (invoice mode) the settlement's invoices and credit notes, and its entry."""
        conversion = None if s.currency == self.company_currency else self.rates.conversion(s, group)
        invoicing = None
        if self.invoice_mode:
            if not self.dry_run:
                self._require_field()  # before the first invoice: unkeyed documents could be written twice
            if self._invoicer is None:
                self._invoicer = Invoicer(self.rt, erp=self.erp, ledger=self.state, plans=self.plans)
            invoicing = self._invoicer.run(s, summarise(s, self.table))
            self._describe_invoicing(s, invoicing, res)
        built = settlement_to_journal_entry(s, self.table, self.accounts, company=self.company,
                                            company_currency=self.company_currency,
                                            unmapped=self.rt.settings.settlements.unmapped,
                                            conversion=conversion, bank_account_currency=self.bank_currency(),
                                            invoicing=invoicing, book_mf_tax=self.book_mf_tax)
        return conversion, invoicing, built

    def _clear(self, s: Settlement, sha: str, res: SettlementResult, origin: dict[str, Any],
               group: dict[str, Any] | None, name: str) -> None:
        """Post the receipts of a settlement whose entry is posted (a run stopped between the two)."""
        conversion, invoicing, built = self._build(s, group, res)
        assert invoicing is not None
        self._post_receipts(s, built, invoicing, conversion, res)
        if not self.dry_run:
            self.state.mark_done(KIND, s.settlement_id, name, sha, info=self._info(s, sha, origin, DONE_RECEIPTS))

    def _describe_invoicing(self, s: Settlement, invoicing: Invoicing, res: SettlementResult) -> None:
        kinds: dict[str, int] = {}
        for ref in invoicing.refs:
            kinds[ref.kind.value] = kinds.get(ref.kind.value, 0) + 1
        res.invoicing = {"documents": kinds, "unmatched": list(invoicing.unmatched),
                         "problems": [{"amazon_order_id": o, "problem": p} for o, p in invoicing.problems],
                         "receipts": []}
        if invoicing.unmatched:
            settled = {o.order_id: o.charged + o.refunded + (o.mf_tax if self.book_mf_tax else 0)
                       for o in summarise(s, self.table).orders}
            res.without_sales_order = [OrderProblem(oid, settled.get(oid, Decimal(0)), None, None)
                                       for oid in invoicing.unmatched]

    def _post_receipts(self, s: Settlement, built: SettlementEntry, invoicing: Invoicing,
                       conversion: Conversion | None, res: SettlementResult) -> None:
        """The receipt entries clearing the settlement's invoices and credit notes, each keyed, exactly once."""
        receipts: list[ReceiptEntry] = receipt_entries(
            s, built.summary, invoicing, self.accounts, company=self.company, posting_date=s.deposit_date,
            cost_center=self.accounts.cost_center, conversion=conversion)
        names: list[str] = []
        for receipt in receipts:
            doc = dict(receipt.payload, docstatus=1)
            if self.dry_run:
                self.plans.append(PlannedWrite(Action.CREATE, JE, key=receipt.key, doc=doc,
                                               reason=f"settlement {s.settlement_id}: {len(receipt.refs)} documents cleared"))
                continue
            entry = self.state.get(Kind.RECEIPT, receipt.key)
            if entry is not None and entry.status == DONE:
                names.append(entry.erp_name or "")
                continue
            found = self.erp.find(JE, [[POSTING_KEY_FIELD, "=", receipt.key], ["docstatus", "=", 1]])
            if found is None:
                self.state.mark_writing(Kind.RECEIPT, receipt.key, hashlib.sha256(
                    json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest())
                try:
                    found = self.erp.insert(JE, doc, key={POSTING_KEY_FIELD: receipt.key})
                except ErpNextDuplicateError:
                    found = self.erp.find(JE, [[POSTING_KEY_FIELD, "=", receipt.key], ["docstatus", "=", 1]])
                    if found is None:
                        raise
                except RecordError:
                    self.state.forget(Kind.RECEIPT, receipt.key)
                    raise
                self.rt.counts.add("receipt entries posted")
            self.state.mark_done(Kind.RECEIPT, receipt.key, str(found["name"]), "", info={"settlement": s.settlement_id})
            names.append(str(found["name"]))
        if res.invoicing is not None:
            res.invoicing["receipts"] = names

    def _adopt(self, s: Settlement, sha: str, found: dict[str, Any], res: SettlementResult,
               origin: dict[str, Any]) -> None:
        """ERPNext already holds a submitted entry for this settlement: never a second one."""
        name = str(found["name"])
        res.journal_entry = name
        bank = _bank_total(found, self.accounts)
        # the bank line this run would post, in the bank account's currency (converted: not the total itself)
        want, want_cur = (res.bank_line, res.bank_currency) if res.bank_line is not None else (s.total, s.currency)
        if bank is not None and s.total_minor > 0 and to_minor(bank, want_cur) != to_minor(want, want_cur):
            res.outcome = Outcome.REISSUED
            res.detail = (f"settlement {s.settlement_id}: Journal Entry {name} already books it with "
                          f"{bank} {want_cur}, Amazon now says {want} {want_cur}; not reposted: cancel "
                          f"{name} in ERPNext and run again")
            return
        receipts = PENDING if self.invoice_mode else None  # the receipts follow, if not posted yet
        self.state.mark_done(KIND, s.settlement_id, name, sha, info=self._info(s, sha, origin, receipts))
        res.outcome = Outcome.UNCHANGED
        res.detail = f"found in ERPNext as {name}"

    def _same_period(self, s: Settlement) -> Any:
        """A posted settlement under another key with this one's period, total and currency."""
        if self._periods is None:
            self._periods = {}
            for e in self.state.entries(KIND, DONE):
                if "total_minor" in e.info:
                    self._periods[(str(e.info.get("start")), str(e.info.get("end")), int(e.info["total_minor"]),
                                   str(e.info.get("currency")))] = e
        twin = self._periods.get((s.start.date().isoformat(), s.end.date().isoformat(), s.total_minor, s.currency))
        return twin if twin is not None and twin.key != s.settlement_id else None

    @staticmethod
    def _differs(info: dict[str, Any], old_sha: str | None, s: Settlement, sha: str) -> bool:
        if int(info.get("total_minor", s.total_minor)) != s.total_minor or info.get("currency", s.currency) != s.currency:
            return True
        # the same settlement from another source (file vs report vs transactions) has other bytes
        return info.get("source") == s.source.value and old_sha not in (None, sha)

    def _describe(self, built: SettlementEntry, res: SettlementResult) -> None:
        converted = built.summary.converted
        cur = built.summary.currency if converted is None else converted.currency  # what the lines book in
        for line in built.lines:
            res.lines.append({"account": line.account, "debit": format_minor(line.debit_minor, cur),
                              "credit": format_minor(line.credit_minor, cur), "remark": line.remark})
            if line.category is None:
                if line.account_currency:  # the bank row in the settlement currency: the deposit itself
                    res.bank_line = Decimal(format_minor(line.amount_in_account_currency_minor, line.account_currency))
                    res.bank_currency = line.account_currency
                else:
                    res.bank_line = Decimal(format_minor(line.debit_minor - line.credit_minor, cur))
                    res.bank_currency = cur
        if converted is not None:
            res.conversion = {"rate": str(converted.rate), "source": converted.source.value,
                              "company_currency": converted.currency, "company_total": str(converted.total),
                              "difference": str(converted.difference),
                              "bank_in_settlement_currency": converted.bank_in_settlement_currency}
            self.rt.counts.add(f"settlements converted ({converted.source.value})")
        res.unmapped = [{"line": u.line, "key": u.key, "amount": str(u.amount), "amazon_order_id": u.order_id}
                        for u in built.summary.unmapped]
        if built.summary.unmapped:
            self.rt.counts.add("unmapped rows (suspense)", len(built.summary.unmapped))

    # --- Sales Orders -------------------------------------------------------------------------------------

    def _match_orders(self, summary: SettlementSummary, res: SettlementResult) -> None:
        """Orders settled without a Sales Order, and orders whose settled amount differs from their total."""
        charged = {o.order_id: o.charged + (o.mf_tax if self.book_mf_tax else 0) for o in summary.orders}
        ids = sorted(charged)
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), SO_BATCH):
            rows = self.erp.list(SO, fields=["name", "amazon_order_id", "grand_total", "docstatus"],
                                 filters=[["amazon_order_id", "in", ids[i:i + SO_BATCH]], ["docstatus", "!=", 2]])
            for row in rows:
                key = str(row.get("amazon_order_id"))
                if key not in found or int(row.get("docstatus") or 0) == 1:
                    found[key] = row
        for oid in ids:
            amount = charged[oid]
            so = found.get(oid)
            if so is None:
                if amount:  # an order whose only rows here are a refund or fees was booked long ago, or never
                    res.without_sales_order.append(OrderProblem(oid, amount, None, None))
                continue
            total = Decimal(str(so.get("grand_total") or 0))
            if amount and to_minor(amount, summary.currency) != to_minor(total, summary.currency):
                res.total_differs.append(OrderProblem(oid, amount, str(so["name"]), total))
        if res.without_sales_order:
            self.rt.counts.add("orders settled without a Sales Order", len(res.without_sales_order))
        if res.total_differs:
            self.rt.counts.add("orders settled ≠ Sales Order total", len(res.total_differs))

    # --- ERPNext ------------------------------------------------------------------------------------------

    def bank_currency(self) -> str | None:
        """The bank account's currency as ERPNext has it (it decides the entry's shape for a settlement in
        another currency); None when it is not configured or not found (the company's is assumed)."""
        if self._bank_currency is None and self.accounts.bank:
            row = self.erp.find("Account", [["name", "=", self.accounts.bank]], fields=("name", "account_currency"))
            self._bank_currency = str((row or {}).get("account_currency") or self.company_currency)
        return self._bank_currency

    def find(self, settlement_id: str) -> dict[str, Any] | None:
        """The submitted Journal Entry of a settlement, with its lines."""
        row = self.erp.find(JE, [[SETTLEMENT_ID_FIELD, "=", settlement_id], ["docstatus", "=", 1]],
                            order_by="creation desc")
        if row is None:
            return None
        return self.erp.get(JE, str(row["name"])) or row

    def _require_field(self) -> None:
        """Without the custom field ERPNext drops the settlement id silently, and re-runs would post twice."""
        if self._field_checked:
            return
        if not all(self.erp.exists(Doctype.CUSTOM_FIELD, name) for name in SETTLEMENT_CUSTOM_FIELDS):
            raise ConfigError("ERPNext has no custom field Journal Entry.amazon_settlement_id: without it a re-run "
                              "could post a settlement twice; set [settlements] bank_account and run `amz2erp setup`")
        if self.invoice_mode:
            fields = INVOICE_CUSTOM_FIELDS + (DELIVERY_CUSTOM_FIELDS if self.rt.settings.orders.deliver == "delivery_note" else ())
            missing = [name for name in fields if not self.erp.exists(Doctype.CUSTOM_FIELD, name)]
            if missing:
                raise ConfigError(f"ERPNext has no custom field {missing[0].replace('-', '.', 1)}: without it a "
                                  "re-run could write an invoice twice; run `amz2erp setup`")
        self._field_checked = True


class RateFinder:
    """The exchange rate of a settlement in another currency than the company's, first found wins:

    1. Amazon's converted payout: the settlement's financial event group (its period within a second and its
       OriginalTotal) with a ConvertedTotal in the company currency — the deposit the bank really received;
    2. ERPNext's latest Currency Exchange on or before the deposit date;
    3. the configured ``[orders] exchange_rates`` (the lookup the order writer uses for 2 and 3).

    None when there is none: the mapping then refuses the settlement with one line naming the three sources.
    The event groups are listed once per run (from the earliest settlement that needs them)."""

    MATCH = timedelta(seconds=1)

    def __init__(self, rt: Runtime, erp: Any, company_currency: str) -> None:
        self.rt = rt
        self.erp = erp
        self.company_currency = company_currency
        self._groups: list[dict[str, Any]] | None = None
        self._listed_from: datetime | None = None

    def conversion(self, s: Settlement, group: dict[str, Any] | None = None) -> Conversion | None:
        amazon = self._from_amazon(s, group if group is not None else self._group_of(s))
        if amazon is not None:
            return amazon
        found = find_exchange_rate(self.erp, self.rt.settings, s.currency, self.company_currency,
                                   s.deposit_date.isoformat())
        if found is None:
            return None
        return Conversion(found.rate, RateSource.FALLBACK if found.configured else RateSource.CURRENCY_EXCHANGE)

    def _from_amazon(self, s: Settlement, group: dict[str, Any] | None) -> Conversion | None:
        converted = (group or {}).get("ConvertedTotal") or {}
        original = (group or {}).get("OriginalTotal") or {}
        if str(converted.get("CurrencyCode") or "").upper() != self.company_currency:
            return None  # not converted, or into a third currency: the bank received no company money
        try:
            return Conversion.from_amazon(Decimal(str(original.get("CurrencyAmount"))),
                                          Decimal(str(converted.get("CurrencyAmount"))))
        except (ValueError, ArithmeticError):
            return None  # a zero or a sign change gives no rate: the next source decides

    def _group_of(self, s: Settlement) -> dict[str, Any] | None:
        """The settlement's financial event group: same period (±1 s) and OriginalTotal."""
        start = s.start - self.MATCH
        if self._groups is None or self._listed_from is None or start < self._listed_from:
            try:
                self._groups = self.rt.amazon.list_financial_event_groups(start)
            except (AmazonAuthError, AmazonBadRequestError) as exc:
                # e.g. an app without the Finances role posting --file: the other two sources still answer
                log.warning("Amazon's converted payouts could not be read (%s); using the exchange rates", exc)
                self._groups = []
            self._listed_from = start
        for g in self._groups:
            if s.group_id and str(g.get("FinancialEventGroupId")) == s.group_id:
                return g
            g_start = parse_datetime(g.get("FinancialEventGroupStart"))
            g_end = parse_datetime(g.get("FinancialEventGroupEnd"))
            total = g.get("OriginalTotal") or {}
            if g_start is None or g_end is None or str(total.get("CurrencyCode") or "").upper() != s.currency:
                continue
            if abs(g_start - s.start) <= self.MATCH and abs(g_end - s.end) <= self.MATCH \
                    and to_minor(str(total.get("CurrencyAmount", 0)), s.currency) == s.total_minor:
                return g
        return None


def _bank_total(doc: dict[str, Any], accounts: SettlementAccounts) -> Decimal | None:
    """The payout an existing entry books: bank debits minus credits (or minus the clearing credit)."""
    rows = doc.get("accounts")
    if not isinstance(rows, list):
        return None
    bank = [r for r in rows if r.get("account") == accounts.bank]
    if bank:
        return sum((Decimal(str(r.get("debit_in_account_currency") or 0))
                    - Decimal(str(r.get("credit_in_account_currency") or 0)) for r in bank), Decimal(0))
    return None


# --- the command ----------------------------------------------------------------------------------------------


def sync_settlements(rt: Runtime, *, since: date | None = None, files: Sequence[str | Path] = (),
                     marketplaces: Iterable[str] = (), dry_run: bool = False) -> SyncSettlementsResult:
    """Post every closed settlement not yet posted (see the module doc for the three sources)."""
    if since is not None and files:
        raise UsageError("--since and --file are two sources: give one of them")
    now = rt.clock.now()
    if since is not None and since > now.date():
        raise UsageError(f"--since {since} is in the future")
    chosen = resolve_marketplaces(rt, marketplaces)
    poster = SettlementPoster(rt, dry_run=dry_run)
    result = SyncSettlementsResult()
    if files:
        _from_files(rt, poster, files, result)
    elif since is not None:
        _from_finances(rt, poster, datetime.combine(since, time(0), tzinfo=timezone.utc), result)
    else:
        _from_reports(rt, poster, [m.marketplace_id for m in chosen], result, all_marketplaces=not marketplaces)
    result.plans = poster.plans
    return result


def _finished(state: Any) -> list[Any]:
    """Settlements with nothing left to do: posted, and (invoice mode) their receipts too. One whose receipts
    are pending is read again, so that the poster finishes it."""
    return [e for e in state.entries(KIND, DONE) if e.info.get("receipts") != PENDING]


def _add(result: SyncSettlementsResult, res: SettlementResult | None) -> None:
    if res is not None:
        result.results.append(res)


def _from_files(rt: Runtime, poster: SettlementPoster, files: Sequence[str | Path],
                result: SyncSettlementsResult) -> None:
    for path in files:
        try:
            settlement = parse_settlement_report(path)
        except SettlementImbalanceError as exc:
            res = SettlementResult(exc.settlement_id or str(path), Outcome.UNBALANCED, str(exc),
                                   currency=exc.currency, total=exc.reported)
            if exc.settlement_id:
                poster.state.mark_failed(KIND, exc.settlement_id, str(exc), info={"file": str(path)})
            rt.counts.add("settlements unbalanced")
            result.results.append(res)
            continue
        except (SettlementError, OSError) as exc:
            msg = str(exc) if isinstance(exc, SettlementError) else f"{path}: cannot read ({exc.strerror or exc})"
            rt.counts.add("bad files")  # the summary prints its one line
            result.results.append(SettlementResult(str(path), Outcome.FAILED, msg))
            continue
        _add(result, poster.post(settlement, origin={"file": Path(path).name}))


def _from_reports(rt: Runtime, poster: SettlementPoster, marketplace_ids: list[str],
                  result: SyncSettlementsResult, *, all_marketplaces: bool) -> None:
    """``all_marketplaces``: every configured marketplace is read, so the one cursor may move (a run limited
    by --marketplace must not move it past the others' reports)."""
    cursor = poster.state.get_cursor(STREAM, CURSOR_KEY)
    refs = rt.amazon.list_settlement_reports(cursor, marketplace_ids)
    known_docs = {str(e.info.get("document_id")) for e in _finished(poster.state) if e.info.get("document_id")}
    pinned: datetime | None = None
    newest = cursor
    with rt.reporter.progress("settlement reports", total=len(refs)) as task:
        for ref in refs:
            task.advance()
            newest = ref.created if newest is None or ref.created > newest else newest
            if ref.document_id in known_docs:
                rt.counts.add("settlements already posted")
                continue
            try:
                settlement = rt.amazon.fetch_settlement(ref.document_id)
            except SettlementImbalanceError as exc:
                res = SettlementResult(exc.settlement_id, Outcome.UNBALANCED, str(exc), currency=exc.currency,
                                       total=exc.reported)
                poster.state.mark_failed(KIND, exc.settlement_id, str(exc), info={"document_id": ref.document_id})
                rt.counts.add("settlements unbalanced")
                result.results.append(res)
                pinned = pinned or ref.created
                continue
            except SettlementError as exc:
                result.results.append(SettlementResult(f"report {ref.report_id}", Outcome.FAILED, str(exc)))
                pinned = pinned or ref.created
                continue
            posted = poster.post(settlement, origin={"document_id": ref.document_id, "report_id": ref.report_id})
            _add(result, posted)
            if posted is not None and posted.outcome.is_problem:
                pinned = pinned or ref.created
    new_cursor = pinned if pinned is not None else newest
    if all_marketplaces and new_cursor is not None and (cursor is None or new_cursor > cursor):
        poster.state.set_cursor(STREAM, CURSOR_KEY, new_cursor)


def _posted_periods(rt: Runtime) -> set[tuple[str, str, int, str]]:
    return {(str(e.info.get("start")), str(e.info.get("end")), int(e.info.get("total_minor", 0)),
             str(e.info.get("currency"))) for e in _finished(rt.state)}


def _group_period(group: dict[str, Any]) -> tuple[str, str, int, str] | None:
    start, end = parse_datetime(group.get("FinancialEventGroupStart")), parse_datetime(group.get("FinancialEventGroupEnd"))
    total = group.get("OriginalTotal") or {}
    if start is None or end is None or not total.get("CurrencyCode"):
        return None
    cur = str(total["CurrencyCode"]).upper()
    return start.date().isoformat(), end.date().isoformat(), to_minor(str(total.get("CurrencyAmount", 0)), cur), cur


def _from_finances(rt: Runtime, poster: SettlementPoster, since: datetime, result: SyncSettlementsResult) -> None:
    groups = rt.amazon.list_financial_event_groups(since)
    posted = _posted_periods(rt)
    posted_groups = {str(e.info.get("group_id")) for e in _finished(rt.state) if e.info.get("group_id")}
    for group in groups:
        gid = str(group.get("FinancialEventGroupId"))
        if str(group.get("ProcessingStatus") or "").lower() != "closed":
            total = group.get("OriginalTotal") or {}
            result.results.append(SettlementResult(
                gid, Outcome.OPEN, "open: posted once Amazon closes it", currency=str(total.get("CurrencyCode") or ""),
                total=Decimal(str(total.get("CurrencyAmount"))) if total.get("CurrencyAmount") is not None else None))
            continue
        if gid in posted_groups or _group_period(group) in posted:
            rt.counts.add("settlements already posted")  # from its report or file: never twice
            continue
        try:
            settlement = settlement_from_transactions(group, rt.amazon.list_group_transactions(gid))
        except NeedsSettlementFileError as exc:
            key = exc.settlement_id or gid
            res = SettlementResult(key, Outcome.NEEDS_FILE, str(exc), currency=exc.currency, total=exc.reported)
            poster.state.mark_skipped(KIND, key, str(exc), info={"group_id": gid, "needs_file": True})
            rt.counts.add("settlements needing the file")
            result.results.append(res)
            continue
        except SettlementOpenError as exc:
            result.results.append(SettlementResult(gid, Outcome.OPEN, str(exc)))
            continue
        except SettlementError as exc:
            result.results.append(SettlementResult(gid, Outcome.FAILED, str(exc)))
            continue
        _add(result, poster.post(settlement, origin={"group_id": gid}, group=group))


def open_groups(amazon: Any, now: datetime) -> list[dict[str, Any]]:
    """The settlements Amazon has not closed yet, with their running totals (one Finances listing of the last
    60 days: a settlement period is at most a month)."""
    out = []
    for g in amazon.list_financial_event_groups(now - timedelta(days=60)):
        if str(g.get("ProcessingStatus") or "").lower() == "closed":
            continue
        total = g.get("OriginalTotal") or {}
        out.append({"group_id": g.get("FinancialEventGroupId"), "start": g.get("FinancialEventGroupStart"),
                    "running_total": total.get("CurrencyAmount"), "currency": total.get("CurrencyCode")})
    return out
