"""What a request costs a real ERPNext v15, and how its two server workers share the CPU.

Calibrated on a real server (Frappe 15.101 / ERPNext 15.99, MariaDB 10.11, gunicorn with 2 sync workers, all
on 2 CPU cores together with the client), 200 documents per mode, p50 figures:

- ``GET /api/method/ping`` 11.8 ms, token-authenticated ``get_logged_user`` 12.4 ms: the request floor;
- a list filtered by one field (1 row) 14.3–16.8 ms; one Sales Order by name (full doc) 26.9–31.8 ms;
- POST Customer 31–41 ms (24–32 customers/s sequentially);
- POST Sales Order (1 line, 1 tax row, submitted or draft) 112–142 ms, 7.3–8.6 orders/s sequentially;
  PUT docstatus=1 on a draft 165–181 ms; ``update_status`` 74–96 ms (small sample);
- ``frappe.client.insert_many`` of submitted Sales Orders: 0.59 s per 10, 3.1 s per 50, 10.4 s per 200
  (≈ 52 ms per document plus one call's overhead): 16–19 orders/s, whatever the batch size;
- 2 / 4 / 8 client threads of single POSTs: 9.1 / 9.9–12.0 / 9.6 orders/s; two insert_many calls in
  parallel 18.2 docs/s. So the busy workers share about one core's worth of CPU (the second core runs
  MariaDB and the client); what single requests gain from a second worker is the part of each request that
  is not CPU (commit, the answer's way back), which insert_many hardly has; threads beyond ~4 only queue.

Figures marked "estimate" were not measured; they follow ERPNext's code (what a document's validate and
submit do) and are kept in proportion to the measured ones.

``CostModel`` prices a request (``classify`` says what it is); ``WorkerPool`` runs priced requests in real
time with at most ``workers`` in service and the cores shared between them (processor sharing); the same
arithmetic, on explicit times, is ``Sharing``/``schedule`` (what the tests check).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType
from typing import Any

SO_UPDATE_STATUS = "erpnext.selling.doctype.sales_order.sales_order.update_status"
#: ERPNext's mappers: the document each one makes from its source
MAPPERS: Mapping[str, str] = MappingProxyType(
    {
        "erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice": "Sales Invoice",
        "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note": "Delivery Note",
        "erpnext.accounts.doctype.sales_invoice.sales_invoice.make_sales_return": "Sales Invoice",
    }
)

MS = 0.001


class Kind(str, Enum):
    """What a request does, as the server's cost sees it."""

    LOOKUP = "lookup"  # a list / get_value / get_count query
    GET = "get"  # one full document by name
    INSERT = "insert"
    INSERT_MANY = "insert_many"
    UPDATE = "update"  # PUT / set_value of a saved document
    SUBMIT = "submit"  # PUT docstatus=1 / frappe.client.submit
    UPDATE_STATUS = "update_status"
    MAP = "map"  # make_sales_invoice / make_delivery_note / make_sales_return: a new unsaved document
    CANCEL = "cancel"
    DELETE = "delete"
    METHOD = "method"  # anything else (get_logged_user, …): the request floor only


@dataclass(frozen=True)
class DocShape:
    """The size of one document in a request: what its cost depends on."""

    doctype: str
    lines: int = 0  # rows of the main child table (items, accounts)
    taxes: int = 0
    #: documents ERPNext creates on the side from quick-entry fields (a Customer's Address and Contact)
    side: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    kind: Kind
    doctype: str | None = None
    docs: tuple[DocShape, ...] = ()

    @property
    def label(self) -> str:
        """How bench/ counts it: "insert Customer", "lookup Sales Order", "insert_many Sales Order", …"""
        return f"{self.kind.value} {self.doctype}" if self.doctype else self.kind.value


@dataclass(frozen=True)
class DocCost:
    """Server time for one document of a doctype inserted on its own, beyond the request floor."""

    base: float
    per_line: float = 0.0
    per_tax: float = 0.0

    def of(self, shape: DocShape) -> float:
        return self.base + self.per_line * shape.lines + self.per_tax * shape.taxes


DOC_COSTS: Mapping[str, DocCost] = MappingProxyType(
    {
        # measured: 1 line + 1 tax row = 103 ms (POST p50 ~115 ms less the floor); the split between the
        # document, its lines and taxes is an estimate (get_item_details and the totals run per row)
        "Sales Order": DocCost(83 * MS, per_line=15 * MS, per_tax=5 * MS),
        # measured: POST p50 31–41 ms less the floor
        "Customer": DocCost(24 * MS),
        # estimate: a flat document with one dynamic link, validated like a Customer
        "Address": DocCost(20 * MS),
        # estimate: like an Address, plus its email / phone child rows
        "Contact": DocCost(20 * MS),
        # estimate: an Item validates its defaults, UOMs, barcodes and creates its Bin rows lazily
        "Item": DocCost(45 * MS),
        # estimate: a flat document with a uniqueness check on (item, price list, …)
        "Item Price": DocCost(15 * MS),
        # estimate: a submitted Journal Entry writes one GL Entry per account row
        "Journal Entry": DocCost(50 * MS, per_line=10 * MS),
        # estimate: a Sales Order's work plus GL entries and the receivable ledger on submit
        "Sales Invoice": DocCost(110 * MS, per_line=18 * MS, per_tax=8 * MS),
        # estimate: a Sales Order's work plus one Stock Ledger Entry and Bin update per line
        "Delivery Note": DocCost(90 * MS, per_line=25 * MS, per_tax=5 * MS),
    }
)

# estimate: masters amz2erp's setup writes (Custom Field, Account, Warehouse, …): a flat document
OTHER_DOC = DocCost(20 * MS)

# The child table whose rows a document's cost grows with.
LINE_TABLES: Mapping[str, str] = MappingProxyType(
    {"Sales Order": "items", "Sales Invoice": "items", "Delivery Note": "items", "Journal Entry": "accounts"}
)


@dataclass(frozen=True)
class CostModel:
    """Seconds of server time per request, scaled by ``speed`` (1.0 = a real server's time; tests run at
    1/20). ``flat`` replaces the whole model by one cost per request (the simulator's old ``latency``)."""

    speed: float = 1.0
    #: gunicorn sync workers: requests beyond them wait for a free one
    workers: int | None = 2
    #: how many workers' worth of CPU the busy workers share: the second core runs MariaDB and the client
    capacity: float = 1.0
    #: the share of a request's time that does not compete for that CPU (commit + fsync, the answer's way
    #: back): single POSTs went from 113 ms each (8.8/s) to 10.9/s at 4 threads, i.e. ~92 ms of CPU each,
    #: while two insert_many calls in parallel (one commit per 50 documents) gained almost nothing (18.2/s)
    overlap: float = 0.19
    #: the request floor: ping 11.8 ms p50 measured from a client on the same box, less the client's part
    request: float = 10 * MS
    #: a list filtered on one field: p50 14.3–16.8 ms, i.e. ~4 ms above the floor
    lookup: float = 4 * MS
    #: estimate: each returned row (a page of 100 names is cheap next to the query)
    lookup_row: float = 0.1 * MS
    #: one full Sales Order by name: 26.9–31.8 ms, i.e. ~17 ms above the floor
    get: float = 17 * MS
    #: estimate: a mapper loads its source like a GET and builds (does not save) the new document
    map: float = 30 * MS
    docs: Mapping[str, DocCost] = field(default_factory=lambda: DOC_COSTS)
    #: insert_many: 10 docs 0.59 s, 200 docs 10.4 s → ~52 ms per Sales Order (half its single-POST cost,
    #: all of it CPU) and ~65 ms per call on top of the floor
    insert_many_call: float = 65 * MS
    insert_many_share: float = 0.5
    #: PUT docstatus=1 165–181 ms against POST 112–142 ms: loading, saving and submitting ≈ 1.45 inserts
    update_share: float = 1.45
    #: update_status 74–96 ms p50, i.e. ~75 ms above the floor
    update_status: float = 75 * MS
    #: estimate: a cancel undoes the submit (ledger rows, linked docs): about one insert
    cancel_share: float = 1.0
    #: estimate: cancel + delete measured together at 4.4–4.9 orders/s on 2 threads
    delete_share: float = 0.5
    flat: float | None = None

    @classmethod
    def flat_latency(cls, latency: float, workers: int | None) -> CostModel:
        """Every request costs ``latency``; ``workers`` requests in parallel at full speed each."""
        return cls(workers=workers, capacity=float(workers) if workers else float("inf"), flat=latency)

    def scaled(self, speed: float) -> CostModel:
        return replace(self, speed=speed)

    def doc(self, shape: DocShape) -> float:
        own = self.docs.get(shape.doctype, OTHER_DOC).of(shape)
        return own + sum(self.docs.get(dt, OTHER_DOC).base for dt in shape.side)

    def before(self, req: Request) -> float:
        """Server time of ``req`` before its answer is known (everything but the rows of a list)."""
        return sum(self.split(req))

    def split(self, req: Request) -> tuple[float, float]:
        """``before`` as (CPU time shared between the busy workers, time that overlaps with them)."""
        if self.flat is not None:
            return self.flat * self.speed, 0.0
        docs = sum(self.doc(d) for d in req.docs)
        if req.kind is Kind.INSERT_MANY:
            call = self.request + self.insert_many_call
            cpu = call * (1 - self.overlap) + self.insert_many_share * docs
            return cpu * self.speed, call * self.overlap * self.speed
        cost = self._request_cost(req, docs)
        return cost * (1 - self.overlap) * self.speed, cost * self.overlap * self.speed

    def _request_cost(self, req: Request, docs: float) -> float:
        cost = self.request
        if req.kind is Kind.LOOKUP:
            cost += self.lookup
        elif req.kind is Kind.GET:
            cost += self.get
        elif req.kind is Kind.MAP:
            cost += self.map
        elif req.kind is Kind.INSERT:
            cost += docs
        elif req.kind in (Kind.UPDATE, Kind.SUBMIT):
            cost += self.update_share * docs
        elif req.kind is Kind.UPDATE_STATUS:
            cost += self.update_status
        elif req.kind is Kind.CANCEL:
            cost += self.cancel_share * docs
        elif req.kind is Kind.DELETE:
            cost += self.delete_share * docs
        return cost

    def after(self, req: Request, rows: int) -> float:
        """Server time that depends on the answer: the rows a lookup returns."""
        if self.flat is not None or req.kind is not Kind.LOOKUP:
            return 0.0
        return self.lookup_row * rows * self.speed

    def floor(self) -> float:
        """A request refused before any work (a 5xx fault, a bad body): CPU only."""
        return (self.flat if self.flat is not None else self.request) * self.speed


# --- what a request is -----------------------------------------------------------------------------------------


def _loads(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    return value


def shape(doctype: str, doc: Mapping[str, Any]) -> DocShape:
    table = LINE_TABLES.get(doctype)
    lines = doc.get(table) if table else None
    taxes = doc.get("taxes")
    side: tuple[str, ...] = ()
    if doctype == "Customer":
        # quick entry: ERPNext v15 makes the primary Address / Contact from these fields on insert
        side = (("Address",) if doc.get("address_line1") else ()) + (
            ("Contact",) if doc.get("email_id") or doc.get("mobile_no") else ()
        )
    return DocShape(
        doctype,
        lines=len(lines) if isinstance(lines, list) else 0,
        taxes=len(taxes) if isinstance(taxes, list) else 0,
        side=side,
    )


_METHOD_KINDS: Mapping[str, Kind] = MappingProxyType(
    {
        "frappe.client.get_list": Kind.LOOKUP,
        "frappe.client.get_all": Kind.LOOKUP,
        "frappe.client.get_count": Kind.LOOKUP,
        "frappe.client.get_value": Kind.LOOKUP,
        "frappe.client.get": Kind.GET,
        "frappe.client.insert": Kind.INSERT,
        "frappe.client.insert_many": Kind.INSERT_MANY,
        "frappe.client.submit": Kind.SUBMIT,
        "frappe.client.cancel": Kind.CANCEL,
        "frappe.client.delete": Kind.DELETE,
        "frappe.client.set_value": Kind.UPDATE,
        SO_UPDATE_STATUS: Kind.UPDATE_STATUS,
    }
)


def classify(method: str, path: str, args: Mapping[str, Any]) -> Request:
    """What an ``/api/resource`` or ``/api/method`` request does. ``path`` is unquoted; ``args`` is the
    parsed body merged with the query string."""
    parts = path.split("/", 4)
    if len(parts) > 3 and parts[2] == "resource":
        doctype, name = parts[3], (parts[4] if len(parts) > 4 else None)
        if method == "GET":
            return Request(Kind.GET if name else Kind.LOOKUP, doctype)
        doc = args if isinstance(args, Mapping) else {}
        if method == "POST" and name is None:
            return Request(Kind.INSERT, doctype, (shape(doctype, doc),))
        if method == "PUT":
            kind = Kind.SUBMIT if str(doc.get("docstatus")) == "1" else Kind.UPDATE
            return Request(kind, doctype, (_stored(doctype, doc),))
        if method == "DELETE":
            return Request(Kind.DELETE, doctype, (DocShape(doctype, lines=1),))
        return Request(Kind.METHOD, doctype)
    name = parts[3] if len(parts) > 3 else ""
    kind = _METHOD_KINDS.get(name, Kind.METHOD)
    if kind is Kind.UPDATE_STATUS:
        return Request(kind, "Sales Order")
    if name in MAPPERS:
        return Request(Kind.MAP, MAPPERS[name])
    if kind is Kind.INSERT_MANY:
        docs = [d for d in (_loads(args.get("docs")) or []) if isinstance(d, Mapping)]
        first = str(docs[0].get("doctype")) if docs else None
        return Request(kind, first, tuple(shape(str(d.get("doctype")), d) for d in docs))
    if kind in (Kind.INSERT, Kind.SUBMIT):
        sent = _loads(args.get("doc"))
        body: Mapping[str, Any] = sent if isinstance(sent, Mapping) else {}
        target = str(body.get("doctype") or "")
        if not target:
            return Request(kind)
        return Request(kind, target, (shape(target, body) if kind is Kind.INSERT else _stored(target, body),))
    target = str(args.get("doctype") or "")
    if kind in (Kind.CANCEL, Kind.DELETE, Kind.UPDATE) and target:
        return Request(kind, target, (DocShape(target, lines=1),))
    return Request(kind, target or None)


def _stored(doctype: str, changes: Mapping[str, Any]) -> DocShape:
    # a change names few fields; the server still loads, validates and saves the whole stored document,
    # whose size it does not tell: price it as the measured one (1 line, 1 tax row) unless its table is sent
    got = shape(doctype, changes)
    return got if got.lines else replace(got, lines=1, taxes=max(got.taxes, 1))


# --- two workers sharing two cores ---------------------------------------------------------------------------


class Sharing:
    """Processor sharing among the requests in service: with ``n`` of them working, each advances at
    ``min(1, capacity / n)`` seconds of its work per second. Pure arithmetic on explicit times."""

    def __init__(self, capacity: float) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.remaining: dict[int, float] = {}
        self._at = 0.0

    def rate(self) -> float:
        n = len(self.remaining)
        return min(1.0, self.capacity / n) if n else 1.0

    def advance(self, now: float) -> None:
        if now > self._at:
            step = (now - self._at) * self.rate()
            for job in self.remaining:
                self.remaining[job] = max(0.0, self.remaining[job] - step)
            self._at = now

    def add(self, job: int, work: float, now: float) -> None:
        self.advance(now)
        self.remaining[job] = work

    def remove(self, job: int, now: float) -> None:
        self.advance(now)
        self.remaining.pop(job, None)

    def eta(self, job: int) -> float:
        """Seconds until ``job`` is done if nothing arrives or leaves meanwhile."""
        return self.remaining[job] / self.rate()


def schedule(jobs: Sequence[tuple[float, float] | tuple[float, float, float]], *, workers: int | None,
             capacity: float) -> list[float]:
    """When each job ``(arrival time, CPU work[, overlapping wait])`` finishes on ``workers`` slots (first come,
    first served): its CPU work shared at ``capacity``, then its wait, still holding the slot. The same
    arithmetic as ``WorkerPool`` on explicit times, for tests and estimates."""
    arrival = [j[0] for j in jobs]
    work = [j[1] for j in jobs]
    wait = [j[2] if len(j) > 2 else 0.0 for j in jobs]
    pending = sorted(range(len(jobs)), key=lambda i: (arrival[i], i))
    share = Sharing(capacity)
    waiting_until: dict[int, float] = {}
    done: dict[int, float] = {}
    queue: list[int] = []
    now = 0.0
    while pending or queue or share.remaining or waiting_until:
        events = [(arrival[pending[0]], 0, pending[0])] if pending else []
        events += [(now + share.eta(j), 1, j) for j in share.remaining]
        events += [(t, 2, j) for j, t in waiting_until.items()]
        when, what, job = min(events)
        now = max(now, when)
        share.advance(now)
        if what == 0:
            queue.append(pending.pop(0))
        elif what == 1:
            share.remove(job, now)
            waiting_until[job] = now + wait[job]
        else:
            del waiting_until[job]
            done[job] = now
        while queue and (workers is None or len(share.remaining) + len(waiting_until) < workers):
            nxt = queue.pop(0)
            share.add(nxt, work[nxt], now)
    return [done[i] for i in range(len(jobs))]


class WorkerPool:
    """``schedule`` in real time for the simulator's request threads: ``slot()`` waits for a free worker
    (first come, first served), ``work(seconds)`` spends server time at the shared rate."""

    def __init__(self, workers: int | None, capacity: float, *, clock: Callable[[], float] = time.monotonic):
        self.workers = workers
        self._clock = clock
        self._cond = threading.Condition()
        self._share = Sharing(capacity)
        self._busy = 0
        self._queue: list[int] = []
        self._next = 0
        #: most requests ever working at once
        self.peak = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._cond:
            ticket = self._next
            self._next += 1
            self._queue.append(ticket)
            try:
                while self._queue[0] != ticket or (self.workers is not None and self._busy >= self.workers):
                    self._cond.wait()
            except BaseException:  # never leave a dead ticket at the head of the queue
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.pop(0)
            self._busy += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def idle(self, seconds: float) -> None:
        """Time in service that does not compete for the CPU (a commit's fsync, the answer's way back)."""
        if seconds > 0:
            time.sleep(seconds)

    def work(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._cond:
            job = self._next
            self._next += 1
            self._share.add(job, seconds, self._clock())
            self.peak = max(self.peak, len(self._share.remaining))
            self._cond.notify_all()  # the others now share with one more
            try:
                while True:
                    self._share.advance(self._clock())
                    if self._share.remaining[job] <= 1e-6:
                        return
                    self._cond.wait(timeout=self._share.eta(job))
            finally:
                self._share.remove(job, self._clock())
                self._cond.notify_all()
