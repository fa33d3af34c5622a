"""The life of one Amazon order in ERPNext (decide, then act) and the exactly-once path over a stream of
orders that sync-orders, backfill and retry share.

The key is ``amazon_order_id`` on Sales Order (the field the Frappe connector and the MWS integration used).
Every write is preceded by an intent in the ledger and followed by its outcome; a record found mid-write on
the next run is resolved by looking it up in ERPNext, never by a blind second insert.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import partial
from typing import Any, TypeVar

from amz2erp import mapping
from amz2erp.amazon.marketplaces import Marketplace
from amz2erp.engine.masters import Masters, NewBuyer, OrderRecordError
from amz2erp.engine.plan import Action, PlannedWrite
from amz2erp.engine.runtime import KeyedLocks, Runtime, Writer
from amz2erp.engine.windows import ReadMode
from amz2erp.errors import (
    Amz2ErpError,
    ErpNextConfigError,
    ErpNextConflictError,
    ErpNextDuplicateError,
    RemoteAuthError,
    RemoteUnavailableError,
)
from amz2erp.models import Order, OrderStatus, UnparsableOrder
from amz2erp.state import Kind, Status

log = logging.getLogger(__name__)
T = TypeVar("T")

STREAM = "orders"
SO = "Sales Order"
UNKNOWN_ID = "?"  # what the access layer calls an order whose payload carries no id
_SHIPPED_ALIKE = {OrderStatus.SHIPPED.value, OrderStatus.INVOICE_UNCONFIRMED.value}
#: Orders looked up in ERPNext with one list query (``amazon_order_id in [...]``): one request answers for a
#: page where one lookup per order costs a request floor (~15 ms of server time) each.
LOOKUP_PAGE = 100
#: New Sales Orders written per ``frappe.client.insert_many`` call (one transaction each). ERPNext spends
#: ~55 ms per document in a batch against ~115 ms for one order per request, nearly flat from 10 to 200 per
#: call. 40: a new buyer's order is three batched documents (Customer, Address, Sales Order), so each call's
#: fixed ~75 ms weighs on three calls per batch — 20 reached 79 % of the server's best path for new buyers,
#: 40 reaches 85 %; larger batches gain little more and cost more to bisect when one order is refused.
INSERT_BATCH = 40
#: insert_many calls in flight at once, whatever ``[erpnext] workers``: each call keeps a server worker's CPU
#: busy for its whole length, so a third call only queues behind two (measured on a 2-worker ERPNext: one call
#: 16.2 Sales Orders/s, two in parallel 18.2/s), while the other client workers keep preparing orders
#: (customers, addresses, lookups), which are short requests that do gain from 4 threads.
BATCH_WORKERS = 2
#: A Sales Order insert refused by a duplicate key that is not the order's (two concurrent orders creating the
#: same stock bin) and proven not written by a lookup is sent again, at most this many times.
TRANSIENT_RETRIES = 3


class Outcome(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    AMENDED = "amended"
    CANCELLED = "cancelled"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    DRIFT = "drift"
    CONFLICT = "conflict"
    FAILED = "failed"


# --- failures: grouped by cause, found again in bulk ----------------------------------------------------------

_ORDER_PREFIX = re.compile(r"^order [^\s:]+: ")
ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_DAY_SLOT = "\x00"


def failure_shape(error: str) -> str:
    """The cause of a failure without what is particular to one order (its id, its day): 782 orders that
    failed for one missing rate have one shape."""
    text = ORDER_ID.sub("…", _ORDER_PREFIX.sub("", error.strip()))
    return _DAY.sub(_DAY_SLOT, text)


@dataclass(frozen=True)
class FailureCause:
    count: int
    cause: str  # the shape with its days filled in ("2026-10-03" or "2026-10-03 … 2026-10-19")
    example: str  # one order id, to look up

    def line(self) -> str:
        return f"{self.count} {'order' if self.count == 1 else 'orders'} failed: {self.cause} (e.g. {self.example})"


def group_failures(failures: Iterable[tuple[str, str]]) -> list[FailureCause]:
    """(order id, error) pairs → one entry per cause with a count, most frequent first."""
    groups: dict[str, tuple[int, list[str], str]] = {}
    for order_id, error in failures:
        shape = failure_shape(error)
        count, days, example = groups.get(shape, (0, [], order_id))
        days.extend(_DAY.findall(error))
        groups[shape] = (count + 1, days, example)
    out = []
    for shape, (count, days, example) in groups.items():
        span = "" if not days else min(days) if min(days) == max(days) else f"{min(days)} … {max(days)}"
        out.append(FailureCause(count, shape.replace(_DAY_SLOT, span), example))
    return sorted(out, key=lambda c: (-c.count, c.cause))


@dataclass
class PendingCreate:
    """A new Sales Order decided and mapped (its masters exist), waiting to be written in a batch."""

    order: Order
    doc: dict[str, Any]
    submit: bool
    content_hash: str
    plan: list[PlannedWrite]
    #: the order's customer, when it is a new buyer written with the batch (``doc`` then names it provisionally)
    new_buyer: NewBuyer | None = None


@dataclass
class OrderResult:
    order_id: str
    outcome: Outcome
    last_update: datetime | None = None
    detail: str = ""
    plan: list[PlannedWrite] = field(default_factory=list)
    pending: PendingCreate | None = None  # decided, written later with its batch (``write_batch``)
    again: bool = False  # not processed: its order waits in a batch; process it again once that is written


class OrderWriter(Writer):
    """Writes one Amazon order into ERPNext through its whole life, exactly once. Thread-safe.

    ``batch_size`` > 1 (the default, not in dry runs): new Sales Orders are collected by ``process_orders``
    and written ``batch_size`` per ``insert_many`` call (``write_batch``); 1 writes each with its own POST."""

    def __init__(self, rt: Runtime, *, dry_run: bool = False) -> None:
        super().__init__(rt, dry_run=dry_run)
        self._order_locks = KeyedLocks()
        self.masters = Masters(rt, dry_run=dry_run)
        self._causes_logged: set[str] = set()
        self._cache_lock = threading.Lock()
        #: Sales Orders found by the page lookup (``prefetch``), used once each by ``find_sales_order``
        self._found: dict[str, dict[str, Any] | None] = {}
        #: orders whose new Sales Order waits in a batch (a second record of one is handed back until then)
        self._pending = threading.Lock()
        self._pending_keys: set[str] = set()
        self.batch_size = 1 if dry_run else INSERT_BATCH
        self._batch_slots = threading.BoundedSemaphore(BATCH_WORKERS)
        if not dry_run:
            rt.require_custom_fields()

    # --- entry point ------------------------------------------------------------------------------------

    def process(self, record: Order | UnparsableOrder, *, batch: bool = False) -> OrderResult:
        """Decide and write one order. With ``batch`` (``process_orders`` only) a new Sales Order is not written
        here: the result carries it as ``pending`` for ``write_batch``."""
        if isinstance(record, UnparsableOrder):
            log.warning("order %s: unreadable Amazon payload: %s", record.amazon_order_id, record.error)
            if record.amazon_order_id != UNKNOWN_ID:
                self.state.mark_failed(Kind.ORDER, record.amazon_order_id, f"unreadable Amazon payload: {record.error}",
                                       marketplace=record.marketplace_id)
            # Without an id there is nothing to retry by id: the failure (no date) keeps the cursor where it
            # was, so the whole window is read again next run.
            return OrderResult(record.amazon_order_id, Outcome.FAILED, None, record.error)
        key = record.amazon_order_id
        with self._order_locks(key):
            with self._pending:
                if key in self._pending_keys:
                    # the same order again while its Sales Order waits in a batch: ``process_orders`` hands
                    # this record back once the batch is written, so its lookup sees that Sales Order
                    return OrderResult(key, Outcome.UNCHANGED, record.last_update_date, again=True)
            plan: list[PlannedWrite] = []
            batched: list[PendingCreate] = []
            outcome, detail = self._guard(record, plan,
                                          lambda: self._process(record, plan, batched if batch else None))
            if batched and outcome is Outcome.CREATED:
                # decided and mapped; ``process_orders`` writes it with its batch (``write_batch``)
                with self._pending:
                    self._pending_keys.add(key)
                return OrderResult(key, outcome, record.last_update_date, detail, plan, batched[0])
            return self._finish(record, outcome, detail, plan)

    def _guard(self, record: Order, plan: list[PlannedWrite],
               work: Callable[[], tuple[Outcome, str]]) -> tuple[Outcome, str]:
        """``work`` for one order, its failures turned into an outcome (fatal errors still stop the run)."""
        try:
            return work()
        except (RemoteAuthError, RemoteUnavailableError, ErpNextConfigError):
            raise  # fatal for the run: the ledger keeps the intent, the next run resolves it
        except mapping.OrderSkipped as exc:
            return self._skip(record, exc.reason, plan)
        except Amz2ErpError as exc:
            return Outcome.FAILED, str(exc)
        except Exception as exc:  # one bad order never stops the others
            log.debug("order %s failed", record.amazon_order_id, exc_info=True)
            return Outcome.FAILED, f"internal error: {type(exc).__name__}: {exc}"

    def _finish(self, record: Order, outcome: Outcome, detail: str, plan: list[PlannedWrite]) -> OrderResult:
        """The result of one order; a failure is logged (once per cause) and kept in the ledger."""
        key = record.amazon_order_id
        if outcome is Outcome.FAILED:
            # one warning per cause; the rest of a mass failure only at -v (the summary counts them)
            shape = failure_shape(detail)
            with self._cache_lock:
                first = shape not in self._causes_logged
                self._causes_logged.add(shape)
            log.log(logging.WARNING if first else logging.INFO, "order %s failed: %s", key, detail)
            self.state.mark_failed(Kind.ORDER, key, detail, marketplace=record.marketplace_id,
                                   last_update=record.last_update_date)
        return OrderResult(key, outcome, record.last_update_date, detail, plan)

    # --- the life of one order ---------------------------------------------------------------------------

    def _process(self, order: Order, plan: list[PlannedWrite],
                 batched: list[PendingCreate] | None = None) -> tuple[Outcome, str]:
        """Decide and act for one order. A new Sales Order goes to ``batched`` (when given and batching is on)
        instead of being written here."""
        key = order.amazon_order_id
        content_hash = order.content_hash()
        entry = self.state.get(Kind.ORDER, key)
        if entry is not None and entry.status == Status.DONE and entry.content_hash == content_hash:
            return Outcome.UNCHANGED, ""
        existing = self.find_sales_order(key)

        if order.status.is_canceled:
            return self._cancel(order, existing, content_hash, plan)
        if order.status is OrderStatus.UNFULFILLABLE and existing is None:
            return self._skip(order, "Unfulfillable (multi-channel fulfillment order): not a sale", plan)
        reason = mapping.order_skip_reason(order, self.ctx)
        if reason is not None:
            if existing is not None and order.status.is_pending:
                # imported earlier as a pending draft (import_pending was on then): leave it be
                return Outcome.UNCHANGED, existing["name"]
            return self._skip(order, reason, plan)

        # Everything that can fail is checked before the first write, so an order that will fail leaves no
        # Customer, Address or Item behind: rate, items (read-only), mapping, totals, on a provisional doc.
        rate = self.masters.conversion_rate(order)
        provisional_customer = str(mapping.order_to_customer(order, self.ctx)["customer_name"])
        mapping.order_to_address(order, provisional_customer, self.ctx)
        item_codes = self.resolve_items(order, plan, create=False)
        self.check_total(order, mapping.order_to_sales_order(order, self.ctx, customer=provisional_customer,
                                                             conversion_rate=rate, item_codes=item_codes))

        new_buyer: NewBuyer | None = None
        if existing is not None and existing["docstatus"] == 1:
            # Customer and address are annotations of the first read (mapping's module doc): a later read that
            # knows the buyer (PII roles) never creates others for an order that is already booked.
            customer, address = str(existing["customer"]), existing.get("shipping_address_name") or None
        elif existing is None and batched is not None and self.batch_size > 1 and (
                new_buyer := self.masters.customer_to_create(order)) is not None:
            # a new buyer: its Customer and Address are written with the batch's other new buyers
            customer, address = str(new_buyer.doc["customer_name"]), None
        else:
            customer = self.masters.ensure_customer(order, plan)
            address = self.masters.ensure_address(order, customer, plan)
        item_codes = self.resolve_items(order, plan)
        doc = mapping.order_to_sales_order(order, self.ctx, customer=customer, conversion_rate=rate,
                                           item_codes=item_codes, shipping_address_name=address)
        doc["selling_price_list"] = self.masters.price_list_for(mapping.order_currency(order))
        submit = self.settings.orders.submit and not order.status.is_pending

        if existing is None:
            if batched is not None and self.batch_size > 1:
                doc = self._new_doc(order, doc, submit)
                plan.append(PlannedWrite(Action.CREATE, SO, key=key, doc=doc))
                batched.append(PendingCreate(order, doc, submit, content_hash, plan, new_buyer))
                return Outcome.CREATED, ""
            return self._create(order, doc, submit, content_hash, plan)
        if existing["docstatus"] == 0:
            return self._update_draft(order, existing, doc, submit, content_hash, plan)
        if existing["docstatus"] == 1:
            return self._check_submitted(order, existing, doc, content_hash, plan)
        # cancelled in ERPNext while Amazon says it is alive: a human decided something; report it
        return self._conflict(order, existing, "the Sales Order is cancelled in ERPNext but the Amazon order is "
                                               f"{order.status.value}", plan)

    def _skip(self, order: Order, reason: str, plan: list[PlannedWrite]) -> tuple[Outcome, str]:
        plan.append(PlannedWrite(Action.SKIP, amazon_order_id=order.amazon_order_id, reason=reason))
        self.state.mark_skipped(Kind.ORDER, order.amazon_order_id, reason, marketplace=order.marketplace_id,
                                info={"amazon_status": order.status.value})
        return Outcome.SKIPPED, reason

    def _conflict(self, order: Order, existing: dict[str, Any], reason: str,
                  plan: list[PlannedWrite]) -> tuple[Outcome, str]:
        detail = f"conflict on {existing['name']}: {reason}"
        plan.append(PlannedWrite(Action.CONFLICT, amazon_order_id=order.amazon_order_id, reason=detail))
        log.warning("order %s: %s", order.amazon_order_id, detail)
        self.state.mark_skipped(Kind.ORDER, order.amazon_order_id, detail, marketplace=order.marketplace_id,
                                info={"conflict": True, "erp_name": existing["name"]})
        return Outcome.CONFLICT, detail

    @staticmethod
    def _new_doc(order: Order, doc: dict[str, Any], submit: bool) -> dict[str, Any]:
        """The Sales Order as inserted: submitted ones carry the status ERPNext would compute, so no
        ``update_status`` call is needed after the insert."""
        if not submit:
            return dict(doc, docstatus=0)
        return dict(doc, docstatus=1, status=mapping.submitted_order_status(doc))

    def _create(self, order: Order, doc: dict[str, Any], submit: bool, content_hash: str,
                plan: list[PlannedWrite], *, planned: bool = False) -> tuple[Outcome, str]:
        key = order.amazon_order_id
        if not planned:
            doc = self._new_doc(order, doc, submit)
            plan.append(PlannedWrite(Action.CREATE, SO, key=key, doc=doc))
        if self.dry_run:
            return Outcome.CREATED, ""
        self.state.mark_writing(Kind.ORDER, key, content_hash, marketplace=order.marketplace_id)
        created = self._insert_order(key, doc)
        name = str(created["name"])
        self._settle_status(name, submit, created.get("status"))
        self._compare_server_total(order, created)
        self.state.mark_done(Kind.ORDER, key, name, content_hash, marketplace=order.marketplace_id,
                             info={"amazon_status": order.status.value, "docstatus": 1 if submit else 0})
        return Outcome.CREATED, name

    def _insert_order(self, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        """POST one new Sales Order. A duplicate-key refusal is looked up by the order id: found, someone (a
        crashed earlier run, another tool) created it after our lookup and it is used, never inserted twice;
        not found, the key that collided was another one — two concurrent orders creating the same stock bin
        (ERPNext's Bin is unique per item and warehouse: "Item Code must be unique") — ERPNext rolled the
        insert back, and it is sent again (at most TRANSIENT_RETRIES times)."""
        attempt = 0
        while True:
            try:
                return self.erp.insert(SO, doc, key={"amazon_order_id": key})
            except ErpNextDuplicateError as exc:
                existing = self.find_sales_order(key)
                if existing is not None:
                    return existing
                if attempt >= TRANSIENT_RETRIES:
                    raise
                attempt += 1
                log.info("order %s: %s; not written (looked up), sending it again", key, exc)
                self.rt.counts.add("transient conflicts retried")
                time.sleep(0.05 * attempt)

    def _settle_status(self, name: str, submit: bool, stored: Any) -> None:
        if submit and stored == "Draft":
            # ERPNext kept "Draft" (an amendment, or a payload status it ignored): recompute it
            self.erp.update_sales_order_status(name, "Draft")

    def _update_draft(self, order: Order, existing: dict[str, Any], doc: dict[str, Any], submit: bool,
                      content_hash: str, plan: list[PlannedWrite]) -> tuple[Outcome, str]:
        name = existing["name"]
        plan.append(PlannedWrite(Action.UPDATE_AND_SUBMIT if submit else Action.UPDATE, SO, name, doc=doc))
        self.state.mark_writing(Kind.ORDER, order.amazon_order_id, content_hash, marketplace=order.marketplace_id)
        self.erp.update(SO, name, doc)
        if submit:
            self.erp.submit(SO, name)
        self.state.mark_done(Kind.ORDER, order.amazon_order_id, name, content_hash, marketplace=order.marketplace_id,
                             info={"amazon_status": order.status.value, "docstatus": 1 if submit else 0})
        return Outcome.UPDATED, name

    def _check_submitted(self, order: Order, existing: dict[str, Any], doc: dict[str, Any], content_hash: str,
                         plan: list[PlannedWrite]) -> tuple[Outcome, str]:
        name = existing["name"]
        if existing.get("status") == "Draft":
            # a crash between insert and the status recompute: finish the job
            self.erp.update_sales_order_status(name, "Draft")
        full = self.erp.get(SO, name) or existing
        drift = mapping.sales_order_drift(full, doc, tax_accounts=self.ctx.tax_accounts(),
                                          unknown=mapping.unknown_drift_keys(order, self.ctx))
        # Amazon's status moving on (Unshipped → Shipped) is the order's normal life, not drift:
        # amazon_order_status is allowed on submit, so it is simply followed.
        status_change = drift.pop("amazon_order_status", None)
        if status_change is not None and set(status_change) <= _SHIPPED_ALIKE:
            # v0 and the orders report say InvoiceUnconfirmed where Orders 2026-01-01 says Shipped: same state
            status_change = None
        outcome = Outcome.UNCHANGED
        if status_change is not None:
            plan.append(PlannedWrite(Action.UPDATE_STATUS, SO, name,
                                     changes={"amazon_order_status": status_change[1]}))
            self.state.mark_writing(Kind.ORDER, order.amazon_order_id, content_hash,
                                    marketplace=order.marketplace_id)
            self.erp.update(SO, name, {"amazon_order_status": status_change[1]})
            outcome = Outcome.UPDATED
        if not drift:
            self.state.mark_done(Kind.ORDER, order.amazon_order_id, name, content_hash,
                                 marketplace=order.marketplace_id,
                                 info={"amazon_status": order.status.value, "docstatus": 1})
            return outcome, name
        summary = "; ".join(f"{k}: {a} → {b}" for k, (a, b) in sorted(drift.items()))
        if self.settings.orders.amend_on_drift:
            return self._amend(order, full, doc, content_hash, summary, plan)
        plan.append(PlannedWrite(Action.DRIFT, SO, name, differences=summary))
        log.warning("order %s changed on Amazon after %s was submitted: %s", order.amazon_order_id, name, summary)
        self.state.mark_done(Kind.ORDER, order.amazon_order_id, name, content_hash, marketplace=order.marketplace_id,
                             info={"amazon_status": order.status.value, "docstatus": 1, "drift": summary})
        return Outcome.DRIFT, summary

    def _amend(self, order: Order, existing: dict[str, Any], doc: dict[str, Any], content_hash: str, summary: str,
               plan: list[PlannedWrite]) -> tuple[Outcome, str]:
        name = existing["name"]
        amended = dict(doc, amended_from=name, docstatus=1)
        plan.append(PlannedWrite(Action.CANCEL_AND_AMEND, SO, name, differences=summary, doc=amended))
        if self.dry_run:
            return Outcome.AMENDED, f"{name} would be cancelled and amended: {summary}"
        self.state.mark_writing(Kind.ORDER, order.amazon_order_id, content_hash, marketplace=order.marketplace_id)
        self.erp.cancel(SO, name)
        created = self.erp.insert(SO, amended, key={"amended_from": name})
        new_name = str(created["name"])
        self._settle_status(new_name, True, created.get("status"))
        self.state.mark_done(Kind.ORDER, order.amazon_order_id, new_name, content_hash,
                             marketplace=order.marketplace_id,
                             info={"amazon_status": order.status.value, "docstatus": 1, "amended_from": name})
        detail = f"{name} cancelled and amended as {new_name}: {summary}"
        log.warning("order %s changed on Amazon after %s was submitted: %s", order.amazon_order_id, name, detail)
        self.rt.amendments.append((order.amazon_order_id, name, new_name))
        return Outcome.AMENDED, detail

    def _cancel(self, order: Order, existing: dict[str, Any] | None, content_hash: str,
                plan: list[PlannedWrite]) -> tuple[Outcome, str]:
        key = order.amazon_order_id
        if existing is None:
            return self._skip(order, "cancelled on Amazon before it was imported", plan)
        name = existing["name"]
        if existing["docstatus"] == 2:
            self.state.mark_done(Kind.ORDER, key, name, content_hash, marketplace=order.marketplace_id,
                                 info={"amazon_status": order.status.value, "docstatus": 2})
            return Outcome.UNCHANGED, name
        refs = self.references(name)
        if refs:
            return self._conflict(order, existing, "Amazon cancelled the order but it is already referenced by "
                                                   + ", ".join(refs) + "; nothing was cancelled", plan)
        draft = existing["docstatus"] == 0
        action = (Action.DELETE_DRAFT if self.settings.orders.cancel_draft == "delete" else Action.CANCEL_DRAFT) \
            if draft else Action.CANCEL
        plan.append(PlannedWrite(action, SO, name))
        self.state.mark_writing(Kind.ORDER, key, content_hash, marketplace=order.marketplace_id)
        if draft and self.settings.orders.cancel_draft == "delete":
            self.erp.delete(SO, name)
        else:
            if draft:
                self.erp.submit(SO, name)  # Frappe can only cancel what was submitted
            self.erp.cancel(SO, name)
        self.state.mark_done(Kind.ORDER, key, name, content_hash, marketplace=order.marketplace_id,
                             info={"amazon_status": order.status.value, "docstatus": 2, "action": action.value})
        return Outcome.CANCELLED, name

    # --- new Sales Orders in batches -------------------------------------------------------------------------

    def _release(self, keys: Iterable[str]) -> None:
        with self._pending:
            self._pending_keys.difference_update(keys)

    def write_batch(self, batch: Sequence[PendingCreate]) -> list[OrderResult]:
        """Write new Sales Orders with ``insert_many``, one transaction per call, exactly once.

        The intent of every order is in the ledger before the call. A batch ERPNext refuses (one bad order
        rolls back the whole call) is split in halves until the bad order is alone, and that one is written
        like any single order: it fails alone, with its own reason. A batch whose answer is lost (timeout,
        connection reset, a 5xx without Frappe's error body) is resolved by looking its order ids up (the
        client's ``insert_many(key_field=...)``): all found, they are used; none found, it is sent again; a
        part found cannot happen in one transaction and is resolved order by order."""
        results: list[OrderResult] = []
        try:
            with self._batch_slots:
                batch = self._new_buyers(batch, results)
                for p in batch:
                    self.state.mark_writing(Kind.ORDER, p.order.amazon_order_id, p.content_hash,
                                            marketplace=p.order.marketplace_id)
                self._write_batch(list(batch), results)
        finally:
            self._release(p.order.amazon_order_id for p in batch)
        return results

    def _new_buyers(self, batch: Sequence[PendingCreate], results: list[OrderResult]) -> list[PendingCreate]:
        """The batch's new buyers written (``Masters.create_new_buyers``) and named in their Sales Orders;
        an order whose customer or address failed fails alone with that reason and leaves the batch."""
        buyers = [(p.order, p.new_buyer) for p in batch if p.new_buyer is not None]
        if not buyers:
            return list(batch)
        written = iter(self.masters.create_new_buyers(buyers))
        ready: list[PendingCreate] = []
        for p in batch:
            if p.new_buyer is None:
                ready.append(p)
                continue
            masters = next(written)
            if isinstance(masters, Amz2ErpError):
                results.append(self._guarded(p, partial(_raise, masters)))
                continue
            doc = dict(p.doc, customer=masters.customer, title=masters.customer)
            if masters.address:
                doc["shipping_address_name"] = masters.address
            ready.append(replace(p, doc=doc, new_buyer=None))
        return ready

    def _write_batch(self, batch: list[PendingCreate], results: list[OrderResult]) -> None:
        if len(batch) == 1:
            results.append(self._write_one(batch[0]))
            return
        try:
            names = self.erp.insert_many(SO, [p.doc for p in batch], key_field="amazon_order_id")
        except (RemoteAuthError, RemoteUnavailableError, ErpNextConfigError):
            raise  # fatal for the run: the intents stay, the next run's lookups settle them
        except ErpNextConflictError as exc:
            log.info("insert_many of %d Sales Orders: %s", len(batch), exc)
            for p in batch:
                results.append(self._write_one(p, look_up=True))
            return
        except Amz2ErpError as exc:
            # refused: nothing of this call was kept; find the order(s) it refused by halving
            log.debug("insert_many of %d Sales Orders refused (%s); splitting", len(batch), exc)
            self.rt.counts.add("batches split")
            half = len(batch) // 2
            self._write_batch(batch[:half], results)
            self._write_batch(batch[half:], results)
            return
        self.rt.counts.add("batches written")
        stored = {str(r["name"]): r for r in self.erp.list(
            SO, fields=["name", "status", "grand_total"], filters=[["name", "in", names]])}
        for p, name in zip(batch, names, strict=True):
            row = stored.get(name, {})
            results.append(self._guarded(p, partial(self._created, p, name, row)))

    def _write_one(self, p: PendingCreate, *, look_up: bool = False) -> OrderResult:
        """One order of a batch written on its own (a batch of one, the order a split isolated)."""

        def work() -> tuple[Outcome, str]:
            if look_up:
                existing = self.find_sales_order(p.order.amazon_order_id)
                if existing is not None and existing["docstatus"] != 2:
                    return self._created(p, str(existing["name"]), existing)
            return self._create(p.order, p.doc, p.submit, p.content_hash, p.plan, planned=True)

        return self._guarded(p, work)

    def _guarded(self, p: PendingCreate, work: Callable[[], tuple[Outcome, str]]) -> OrderResult:
        with self._order_locks(p.order.amazon_order_id):
            outcome, detail = self._guard(p.order, p.plan, work)
            return self._finish(p.order, outcome, detail, p.plan)

    def _created(self, p: PendingCreate, name: str, stored: dict[str, Any]) -> tuple[Outcome, str]:
        self._settle_status(name, p.submit, stored.get("status"))
        self._compare_server_total(p.order, stored)
        self.state.mark_done(Kind.ORDER, p.order.amazon_order_id, name, p.content_hash,
                             marketplace=p.order.marketplace_id,
                             info={"amazon_status": p.order.status.value, "docstatus": 1 if p.submit else 0})
        return Outcome.CREATED, name

    def prefetch(self, records: Sequence[Order | UnparsableOrder], busy: Iterable[str] = ()) -> None:
        """Look a page of orders up with one list query (and their customers with one or two) instead of one
        lookup per order. Each answer is used once, by the order's own processing, which still decides under
        its lock with the ledger first: an order found live is not written again. Orders ``busy`` elsewhere in
        the run (in flight, waiting in a batch) and orders twice in the page are left to their own lookup, as
        their answer could be outdated by the time it is used; the answers of the page before are dropped."""
        orders = [r for r in records if isinstance(r, Order)]
        seen: dict[str, int] = {}
        for order in orders:
            seen[order.amazon_order_id] = seen.get(order.amazon_order_id, 0) + 1
        with self._pending:
            skip = set(busy) | self._pending_keys | {k for k, n in seen.items() if n > 1}
        wanted = []
        for order in orders:
            if order.amazon_order_id in skip:
                continue
            entry = self.state.get(Kind.ORDER, order.amazon_order_id)
            if entry is not None and entry.status == Status.DONE and entry.content_hash == order.content_hash():
                continue  # unchanged: never looked up
            wanted.append(order)
        if not wanted:
            with self._cache_lock:
                self._found = {}
            return
        ids = sorted({o.amazon_order_id for o in wanted})
        fields = ["name", "docstatus", "status", "grand_total", "amended_from", "customer", "shipping_address_name",
                  "amazon_order_id"]
        rows: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for row in self.erp.list(SO, fields=fields, filters=[["amazon_order_id", "in", ids]]):
            rows.setdefault(str(row.get("amazon_order_id")), []).append(row)
        found: dict[str, dict[str, Any] | None] = {}
        for oid, its in rows.items():
            if any(r["docstatus"] == 2 for r in its):
                continue  # cancelled ones may have amendments to follow: find_sales_order does that
            found[oid] = next((r for wanted_status in (1, 0) for r in its if r["docstatus"] == wanted_status), None)
        with self._cache_lock:
            self._found = found
        self.masters.prefetch_customers([o for o in wanted if not o.status.is_canceled and (
            found.get(o.amazon_order_id, {}) or {}).get("docstatus", 0) == 0])

    # --- lookups ---------------------------------------------------------------------------------------

    def find_sales_order(self, amazon_order_id: str) -> dict[str, Any] | None:
        """The live Sales Order for an Amazon order: submitted, else draft, else the newest cancelled one;
        amendments (which may not carry the id) are followed through ``amended_from``."""
        with self._cache_lock:
            if amazon_order_id in self._found:
                return self._found.pop(amazon_order_id)
        fields = ["name", "docstatus", "status", "grand_total", "amended_from", "customer", "shipping_address_name"]
        rows = list(self.erp.list(SO, fields=fields, filters=[["amazon_order_id", "=", amazon_order_id]],
                                  order_by="creation desc"))
        if not rows:
            return None
        seen = {r["name"] for r in rows}
        frontier = [r["name"] for r in rows if r["docstatus"] == 2]
        while frontier:  # follow amendments of cancelled documents
            amendments = list(self.erp.list(SO, fields=fields, filters=[["amended_from", "in", frontier]]))
            new = [a for a in amendments if a["name"] not in seen]
            rows.extend(new)
            seen.update(a["name"] for a in new)
            frontier = [a["name"] for a in new if a["docstatus"] == 2]
        for wanted in (1, 0, 2):
            for row in rows:
                if row["docstatus"] == wanted:
                    return row
        return None

    def references(self, sales_order: str) -> list[str]:
        """Delivery Notes / Sales Invoices (not cancelled) that reference this Sales Order."""
        refs: list[str] = []
        for doctype, child, fieldname in (("Delivery Note", "Delivery Note Item", "against_sales_order"),
                                          ("Sales Invoice", "Sales Invoice Item", "sales_order")):
            rows = self.erp.list(doctype, fields=["name"], filters=[[child, fieldname, "=", sales_order],
                                                                    [doctype, "docstatus", "!=", 2]])
            refs.extend(f"{doctype} {r['name']}" for r in rows)
        return refs

    def resolve_items(self, order: Order, plan: list[PlannedWrite], *, create: bool = True) -> dict[str, str]:
        """order_item_id → ERPNext item_code, applying [items] unknown_sku to SKUs ERPNext doesn't know.
        ``create=False`` checks only: an Item that would be created is named but not written."""
        policy = self.settings.items.unknown_sku
        codes: dict[str, str] = {}
        for item in order.items:
            if item.quantity_ordered <= 0:
                continue
            code = mapping.item_code_for(item.sku, item.asin, self.settings.items)
            if code is not None and self.masters.item_exists(code):
                codes[item.order_item_id] = code
                continue
            if policy == "fail":
                raise OrderRecordError(f"order {order.amazon_order_id}: SKU {item.sku!r} has no Item in ERPNext "
                                       "([items] unknown_sku = \"fail\"; run sync-products or map it in [items.map])")
            if policy == "placeholder" or code is None:
                placeholder = self.settings.items.placeholder_item
                if not self.masters.item_exists(placeholder):
                    raise OrderRecordError(f"order {order.amazon_order_id}: SKU {item.sku!r} is unknown and the "
                                           f"placeholder Item {placeholder!r} does not exist (run `amz2erp setup`)")
                codes[item.order_item_id] = placeholder
                continue
            if not create:
                codes[item.order_item_id] = code
                continue
            with self.masters.item_lock(code):
                if not self.masters.item_exists(code) and self.masters.create_item(
                        code, mapping.order_line_to_item(item, code, self.ctx), plan):
                    self.rt.counts.add("items created from orders")
            codes[item.order_item_id] = code
        return codes

    def check_total(self, order: Order, doc: dict[str, Any]) -> None:
        expected = mapping.expected_grand_total(order, self.ctx)
        if expected is None:
            return
        got = mapping.sales_order_total(doc)
        if got != expected:
            message = (f"order {order.amazon_order_id}: Sales Order total {got} ≠ Amazon OrderTotal {expected} "
                       f"{order.currency or ''}".rstrip())
            if self.settings.orders.total_mismatch == "error":
                raise OrderRecordError(message)
            log.warning("%s", message)
            self.rt.counts.add("total mismatches")

    def _compare_server_total(self, order: Order, created: dict[str, Any]) -> None:
        expected = mapping.expected_grand_total(order, self.ctx)
        server = created.get("grand_total")
        if expected is None or server is None:
            return
        if Decimal(str(server)).quantize(Decimal("0.01")) != expected:
            log.warning("order %s: ERPNext computed grand total %s, Amazon OrderTotal %s", order.amazon_order_id,
                        server, expected)
            self.rt.counts.add("total mismatches")


def fetch_window(rt: Runtime, marketplace: Marketplace, start: datetime, end: datetime,
                 mode: ReadMode) -> Iterator[Order | UnparsableOrder]:
    """The orders of one window, by the read path ``mode`` (API or REPORT, see windows.resolve_read_mode)."""
    if mode is ReadMode.REPORT:
        return iter(rt.amazon.fetch_orders_report([marketplace.marketplace_id], start, end))
    return iter(rt.amazon.fetch_orders([marketplace.marketplace_id], start, end))


@dataclass
class WindowResult:
    processed: int = 0
    failed: int = 0
    earliest_failure: datetime | None = None
    undated_failures: int = 0  # failed records without a LastUpdateDate (unreadable payloads)
    plans: list[PlannedWrite] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (order id, error), for the grouped summary
    seen: set[str] = field(default_factory=set)  # ids asked for in ``track`` that the stream brought

    def add(self, other: WindowResult) -> None:
        self.processed += other.processed
        self.failed += other.failed
        self.plans.extend(other.plans)
        self.failures.extend(other.failures)
        self.seen |= other.seen


def process_orders(rt: Runtime, writer: OrderWriter, records: Iterable[Order | UnparsableOrder],
                   progress: Any | None = None, *, track: set[str] | frozenset[str] = frozenset()) -> WindowResult:
    """The exactly-once path over a stream of orders, shared by sync-orders, backfill and retry.

    The stream is read a page (LOOKUP_PAGE orders) at a time, each page looked up in ERPNext at once
    (``OrderWriter.prefetch``). New Sales Orders are collected and written ``writer.batch_size`` at a time by
    the same worker pool (``OrderWriter.write_batch``); what is left is written when the stream ends."""
    result = WindowResult()
    lock = threading.Lock()
    waiting: list[PendingCreate] = []  # decided new Sales Orders, not yet handed to a batch
    in_flight: set[str] = set()  # order ids handed to the pool whose result has not come back
    writing = 0  # batches handed to the pool and not yet written

    def account(res: OrderResult) -> None:
        rt.counts.add(f"orders {res.outcome.value}")
        with lock:
            result.processed += 1
            if res.order_id in track:
                result.seen.add(res.order_id)
            if writer.dry_run:
                result.plans.extend(res.plan)
            if res.outcome is Outcome.FAILED:
                result.failed += 1
                result.failures.append((res.order_id, res.detail))
                when = res.last_update
                if when is None:
                    result.undated_failures += 1
                elif result.earliest_failure is None or when < result.earliest_failure:
                    result.earliest_failure = when
            if progress is not None:
                progress.advance(1)

    def on_result(item: Order | UnparsableOrder | _Batch, res: OrderResult | list[OrderResult]) -> None:
        nonlocal writing
        if isinstance(res, list):
            with lock:
                writing -= 1
            for one in res:
                account(one)
            return
        with lock:
            in_flight.discard(res.order_id)
            if res.again and not isinstance(item, _Batch):
                again.append(item)
                return
            if res.pending is not None:
                waiting.append(res.pending)
                return
        account(res)

    def take(size: int) -> _Batch | None:
        """A full batch, or — while fewer than BATCH_WORKERS batches are being written — the orders waiting,
        if at least half a batch: the server is kept busy (a group commit), and a call (~75 ms of server time
        besides its documents) is not spent on a handful of orders while the others are still being prepared."""
        nonlocal writing
        with lock:
            if len(waiting) < size and (writing >= BATCH_WORKERS or len(waiting) < max(1, size // 2)):
                return None
            batch = _Batch(waiting[:size])
            del waiting[:size]
            writing += 1
            return batch

    def work(item: Order | UnparsableOrder | _Batch) -> OrderResult | list[OrderResult]:
        if isinstance(item, _Batch):
            return writer.write_batch(item.creates)
        return writer.process(item, batch=True)

    def items(stream: Iterable[Order | UnparsableOrder]) -> Iterator[Order | UnparsableOrder | _Batch]:
        size = max(1, writer.batch_size)
        for page in _pages(stream, LOOKUP_PAGE):
            with lock:
                busy = set(in_flight)
            writer.prefetch(page, busy)
            for record in page:
                batch = take(size)
                if batch is not None:
                    yield batch
                with lock:
                    in_flight.add(record.amazon_order_id)
                yield record

    again: list[Order | UnparsableOrder] = []
    stream: Iterable[Order | UnparsableOrder] = records
    while True:
        rt.run_pool(work, items(stream), on_result)
        size = max(1, writer.batch_size)
        rest = [_Batch(waiting[i:i + size]) for i in range(0, len(waiting), size)]
        waiting.clear()
        if rest:
            writing += len(rest)
            rt.run_pool(work, rest, on_result)
        if not again:
            return result
        stream, again = again, []


def _raise(exc: Exception) -> tuple[Outcome, str]:
    raise exc


@dataclass
class _Batch:
    creates: list[PendingCreate]


def _pages(records: Iterable[T], size: int) -> Iterator[list[T]]:
    page: list[T] = []
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page
