"""A local ERPNext v15 REST simulator, faithful to the real server's recorded answers (tests/fixtures/erpnext_v15_recordings).

Standard library only: ``http.server.ThreadingHTTPServer`` on 127.0.0.1, SQLite storage (a file, so a new
simulator on the same ``db_path`` sees every document), one lock around each write transaction.

    with ErpNextSimulator() as sim:
        requests.get(sim.url + "/api/resource/Company", headers={"Authorization": sim.auth_header})

Rules live in ``engine`` (naming, validation, sales order, lifecycle; doctype metadata in ``meta``; Journal
Entries in ``journal``, Sales Invoices and Delivery Notes in ``invoice``, Credit Notes in ``returns``, stock in
``stock``), errors in ``errors``.
``costs`` (a ``costs.CostModel``) prices every request like a real ERPNext v15 on two workers and two
cores, in real time scaled by its ``speed``; the older ``latency``/``workers`` give every request the same
cost instead (a ceiling of ``workers / latency`` requests/s). ``FaultConfig`` injects deterministic failures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import re
import socket
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from amz2erp_sim import serve_until_interrupted
from amz2erp_sim.erpnext import invoice as erpnext_invoice
from amz2erp_sim.erpnext import masters
from amz2erp_sim.erpnext import returns as erpnext_returns
from amz2erp_sim.erpnext import stock as erpnext_stock
from amz2erp_sim.erpnext.costs import CostModel, Request, WorkerPool, classify
from amz2erp_sim.erpnext.engine import Engine
from amz2erp_sim.erpnext.errors import FrappeError, error_message, server_messages, validation
from amz2erp_sim.erpnext.meta import DOC_FIELDS, DOC_TABLES, META_FIELDS
from amz2erp_sim.erpnext.store import Store, match, normalize_filters, parse_order_by, strip_field
from amz2erp_sim.erpnext.values import cint

__all__ = ["ErpNextSimulator", "FaultConfig", "FrappeError", "RequestRecord"]

SO_UPDATE_STATUS = "erpnext.selling.doctype.sales_order.sales_order.update_status"
FAULT_KINDS = ("500", "502html", "timeout", "reset", "417")


@dataclass(frozen=True)
class FaultConfig:
    """Inject failures into /api/resource and /api/method calls (not ping).

    ``rate``: probability per call; ``kinds``: drawn uniformly; ``seed``: the same seed and the same order of
    requests give the same faults. "500", "502html" (a proxy's HTML page) and "417" (a ValidationError on
    that one document) answer without touching the data. "timeout" processes the request (it commits) and
    then sleeps ``timeout_seconds`` before answering; "reset" processes it and drops the connection without
    an answer. Set ``after_commit=False`` to make those two fail before processing instead.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    timeout_seconds: float = 5.0
    after_commit: bool = True


class RequestRecord(NamedTuple):
    method: str
    path: str
    doctype: str | None
    status: int
    duration: float
    fault: str | None = None
    #: what the request did, as the cost model counts it ("insert Customer", "lookup Sales Order", …)
    kind: str = ""
    #: the server time the cost model gave it (seconds, at the model's speed), and the CPU part of it
    cost: float = 0.0
    cpu: float = 0.0


class _Reset(Exception):
    pass


class ErpNextSimulator:
    def __init__(
        self,
        db_path: str | None = None,
        *,
        api_key: str = "sim-key",
        api_secret: str = "sim-secret",
        company: str = "Amz Test Co",
        abbr: str = "ATC",
        currency: str = "USD",
        country: str = "United States",
        seed_masters: bool = True,
        latency: float = 0.0,
        workers: int | None = None,
        costs: CostModel | None = None,
        faults: FaultConfig | None = None,
        today: date | None = None,
    ) -> None:
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="erpnext-sim-")
            db_path = os.path.join(self._tmpdir.name, "erpnext.sqlite")
        self.db_path = db_path
        self.api_key = api_key
        self.api_secret = api_secret
        self.company = company
        self.abbr = abbr
        self.currency = currency
        self.country = country
        self.latency = latency
        self.costs = costs if costs is not None else CostModel.flat_latency(latency, workers)
        self.workers = self.costs.workers
        self._pool = WorkerPool(self.costs.workers, self.costs.capacity)
        #: the simulator's own processing time per request kind (a moving average), see ``_net``
        self._own: dict[str, float] = {}
        self.lock = threading.RLock()
        self.store = Store(db_path)
        self.engine = Engine(
            self.store,
            company=company,
            abbr=abbr,
            currency=currency,
            country=country,
            site_url=lambda: self.site_url,
            today=today,
        )
        for field in ("return_against", "voucher_no"):  # returns of an invoice, ledger rows of a voucher
            self.store.ensure_index(field)
        self.request_log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        #: called with each request's record once it is logged (a test can await a count without polling)
        self.request_listeners: list[Callable[[RequestRecord], None]] = []
        self._faults: FaultConfig | None = None
        self._fault_rng = random.Random(0)
        self.set_faults(faults)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.site_url = "http://127.0.0.1:8000"
        if seed_masters:
            self._seed()

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, port: int = 0) -> ErpNextSimulator:
        sim = self

        class Handler(_Handler):
            simulator = sim

        self._server = _Server(("127.0.0.1", port), Handler)
        real_port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{real_port}"
        self.site_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name="erpnext-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self.lock:
            self.store.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> ErpNextSimulator:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def auth_header(self) -> str:
        return f"token {self.api_key}:{self.api_secret}"

    def ceiling(self) -> float:
        """With a flat ``latency``: the server's throughput ceiling in requests per second. With a cost model
        requests differ in cost, so there is no such figure (inf); bench/ measures the best path instead."""
        if self.costs.flat is None or not self.latency or not self.workers:
            return float("inf")
        return self.workers / self.latency

    @property
    def latency_peak(self) -> int:
        """Most requests ever spending server time at once (``workers`` caps it)."""
        return self._pool.peak

    def set_faults(self, faults: FaultConfig | None) -> None:
        if faults is not None:
            bad = [k for k in faults.kinds if k not in FAULT_KINDS]
            if bad:
                raise ValueError(f"unknown fault kinds {bad}; known: {FAULT_KINDS}")
        with self._log_lock:
            self._faults = faults
            self._fault_rng = random.Random(faults.seed if faults else 0)

    def counts(self) -> Counter[tuple[str, str | None]]:
        with self._log_lock:
            return Counter((r.method, r.doctype) for r in self.request_log)

    # -- direct helpers (DB, not HTTP) -----------------------------------------------------------------
    def docs(self, doctype: str, **filters: Any) -> list[dict[str, Any]]:
        with self.lock:
            eq = {k: v for k, v in filters.items() if isinstance(v, str)}
            return [
                d
                for d in self.store.scan(doctype, eq)
                if all(match(d, k, "=", v) for k, v in filters.items())
            ]

    def get_doc(self, doctype: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.store.get(doctype, name)

    def count(self, doctype: str, **filters: Any) -> int:
        return len(self.docs(doctype, **filters))

    def insert_doc(self, doctype: str, data: dict[str, Any], *, validate: bool = False) -> dict[str, Any]:
        """Store a document directly. By default as given ("as another tool left it": no validation, name,
        docstatus and status taken from ``data``, missing fields defaulted); ``validate=True`` runs the same
        rules as a POST."""
        with self.lock, self.store.transaction():
            self.engine.notes = []
            return self.engine.insert(doctype, dict(data), raw=not validate)

    def set_series(self, prefix: str, current: int) -> None:
        """Set a naming-series counter, e.g. ``set_series("SAL-ORD-2026-", 140)`` -> next is ...-00141."""
        with self.lock, self.store.transaction():
            self.store.set_series(prefix, current)

    # -- seeding ---------------------------------------------------------------------------------------
    def _seed(self) -> None:
        with self.lock, self.store.transaction():
            if self.store.get_meta("seeded"):
                return
            ins = self.engine.insert
            for code, symbol, fraction, units, smallest in masters.CURRENCIES:
                ins(
                    "Currency",
                    {
                        "currency_name": code,
                        "symbol": symbol,
                        "fraction": fraction,
                        "fraction_units": units,
                        "smallest_currency_fraction_value": smallest,
                        "enabled": 1 if code in (self.currency, "EUR", "GBP") else 0,
                    },
                    raw=True,
                )
            for cname, code in masters.COUNTRIES:
                ins("Country", {"country_name": cname, "code": code}, raw=True)
            for uom, whole in masters.UOMS:
                ins("UOM", {"uom_name": uom, "must_be_whole_number": whole}, raw=True)
            abbr, comp = self.abbr, self.company
            ins(
                "Company",
                {
                    "company_name": comp,
                    "abbr": abbr,
                    "default_currency": self.currency,
                    "country": self.country,
                    "lft": 1,
                    "rgt": 2,
                    "old_parent": "",
                    "create_chart_of_accounts_based_on": "Standard Template",
                    "chart_of_accounts": "Standard",
                    "default_cash_account": f"Cash - {abbr}",
                    "default_receivable_account": f"Debtors - {abbr}",
                    "default_payable_account": f"Creditors - {abbr}",
                    "write_off_account": f"Write Off - {abbr}",
                    "default_expense_account": f"Cost of Goods Sold - {abbr}",
                    "default_income_account": f"Sales - {abbr}",
                    "cost_center": f"Main - {abbr}",
                    "exchange_gain_loss_account": f"Exchange Gain/Loss - {abbr}",
                    "round_off_account": f"Round Off - {abbr}",
                    "round_off_cost_center": f"Main - {abbr}",
                    "reconciliation_takes_effect_on": "Oldest Of Invoice Or Advance",
                    "auto_err_frequency": "Daily",
                    "accumulated_depreciation_account": f"Accumulated Depreciation - {abbr}",
                    "depreciation_expense_account": f"Depreciation - {abbr}",
                    "expenses_included_in_asset_valuation": f"Expenses Included In Asset Valuation - {abbr}",
                    "disposal_account": f"Gain/Loss on Asset Disposal - {abbr}",
                    "depreciation_cost_center": f"Main - {abbr}",
                    "capital_work_in_progress_account": f"CWIP Account - {abbr}",
                    "asset_received_but_not_billed": f"Asset Received But Not Billed - {abbr}",
                    "enable_perpetual_inventory": 1,
                    "default_inventory_account": f"Stock In Hand - {abbr}",
                    "stock_adjustment_account": f"Stock Adjustment - {abbr}",
                    "stock_received_but_not_billed": f"Stock Received But Not Billed - {abbr}",
                    "expenses_included_in_valuation": f"Expenses Included In Valuation - {abbr}",
                },
                raw=True,
            )
            lft = 0
            for acc, parent, is_group, root_type, acc_type in masters.ACCOUNTS:
                lft += 2
                report = (
                    "Balance Sheet" if root_type in ("Asset", "Liability", "Equity") else "Profit and Loss"
                )
                ins(
                    "Account",
                    {
                        "name": f"{acc} - {abbr}",
                        "account_name": acc,
                        "company": comp,
                        "parent_account": f"{parent} - {abbr}" if parent else "",
                        "is_group": is_group,
                        "root_type": root_type,
                        "report_type": report,
                        "account_type": acc_type,
                        "account_currency": self.currency,
                        "lft": lft - 1,
                        "rgt": lft,
                        "old_parent": f"{parent} - {abbr}" if parent else "",
                    },
                    raw=True,
                )
            self.store.set_meta("account_lft", str(lft))
            for wh, is_group, parent in masters.WAREHOUSES:
                ins(
                    "Warehouse",
                    {
                        "name": f"{wh} - {abbr}",
                        "warehouse_name": wh,
                        "is_group": is_group,
                        "company": comp,
                        "parent_warehouse": f"{parent} - {abbr}" if parent else None,
                    },
                    raw=True,
                )
            ins(
                "Price List",
                {
                    "price_list_name": "Standard Selling",
                    "currency": self.currency,
                    "selling": 1,
                    "enabled": 1,
                },
                raw=True,
            )
            ins(
                "Price List",
                {"price_list_name": "Standard Buying", "currency": self.currency, "buying": 1, "enabled": 1},
                raw=True,
            )
            for name, is_group, parent in masters.ITEM_GROUPS:
                ins(
                    "Item Group",
                    {"item_group_name": name, "is_group": is_group, "parent_item_group": parent},
                    raw=True,
                )
            for name, is_group, parent in masters.CUSTOMER_GROUPS:
                ins(
                    "Customer Group",
                    {"customer_group_name": name, "is_group": is_group, "parent_customer_group": parent},
                    raw=True,
                )
            for name, is_group, parent in (
                ("All Territories", 1, ""),
                (self.country, 0, "All Territories"),
                ("Rest Of The World", 0, "All Territories"),
            ):
                ins(
                    "Territory",
                    {"territory_name": name, "is_group": is_group, "parent_territory": parent},
                    raw=True,
                )
            for year in range(2020, 2031):
                ins(
                    "Fiscal Year",
                    {"year": str(year), "year_start_date": f"{year}-01-01", "year_end_date": f"{year}-12-31"},
                    raw=True,
                )
            erpnext_stock.ensure_settings(self.engine)
            self.store.set_meta("seeded", "1")

    # -- request handling ------------------------------------------------------------------------------
    def _draw_fault(self) -> str | None:
        with self._log_lock:
            f = self._faults
            if not f or f.rate <= 0 or not f.kinds:
                return None
            if self._fault_rng.random() >= f.rate:
                return None
            return self._fault_rng.choice(list(f.kinds))

    def _log(self, record: RequestRecord) -> None:
        with self._log_lock:
            self.request_log.append(record)
        for listener in list(self.request_listeners):
            listener(record)

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | str, str | None, str | None, str, tuple[float, float]]:
        """Process one request -> (status, json body or html text, doctype, fault, kind, (modelled cost, CPU))."""
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        doctype: str | None = None
        fault: str | None = None
        req: Request | None = None
        own_started: float | None = None
        cost = cpu = 0.0
        try:
            if not path.startswith("/api/"):
                return 404, {"exc_type": "DoesNotExistError", "exception": "Not Found"}, None, None, "", (0.0, 0.0)
            if path == "/api/method/ping":
                return 200, {"message": "pong"}, None, None, "", (0.0, 0.0)
            user = self._authenticate(headers.get("authorization"))
            parts = path.split("/", 4)
            kind = parts[2] if len(parts) > 2 else ""
            if kind == "resource" and len(parts) > 3:
                doctype = parts[3]
            elif kind == "method" and len(parts) > 3:
                doctype = None
            if user == "Guest":
                if kind == "method" and len(parts) > 3 and parts[3] == "frappe.auth.get_logged_user":
                    raise FrappeError(403, "PermissionError", None, exception="Not permitted")
                dt = doctype or "this resource"
                msg = [
                    {
                        "message": f"User <strong>Guest</strong> does not have doctype access via role "
                        f"permission for document <strong>{dt}</strong>",
                        "title": "Message",
                    }
                ]
                raise FrappeError(
                    403,
                    "PermissionError",
                    msg,
                    exception="",
                    with_exception=(method == "GET"),
                    extra={"_error_message": f"No permission for {dt}"},
                )
            fault = self._draw_fault()
            fcfg = self._faults
            before = fault in ("500", "502html", "417") or (
                fault in ("timeout", "reset") and fcfg is not None and not fcfg.after_commit
            )
            if before:
                floor = self.costs.floor()
                self._pool.work(floor)
                return (*self._fault_answer(fault, fcfg), doctype, fault, "", (floor, floor))
            try:
                data = self._parse_body(body, headers)
            except FrappeError:
                cost = cpu = self.costs.floor()
                self._pool.work(cost)
                raise
            req = classify(method, path, _request_args(kind, query, data))
            cpu, wait = self.costs.split(req)
            cost = cpu + wait
            self._pool.work(self._net(req.label, cpu))
            self._pool.idle(wait)
            own_started = time.monotonic()
            if kind == "resource" and len(parts) > 3:
                name = parts[4] if len(parts) > 4 else None
                status, out = self._resource(method, parts[3], name, query, data)
            elif kind == "method" and len(parts) > 3:
                args = {**query, **(data if isinstance(data, dict) else {})}
                doctype = _method_doctype(parts[3], args)
                status, out = self._method(parts[3], args)
            else:
                raise FrappeError(404, "DoesNotExistError", "Not found", with_exception=False)
        except FrappeError as e:
            status, out = e.status, e.body()
        except _Reset:
            raise
        except Exception as e:  # a simulator bug still answers like a server error
            status, out = (
                500,
                {
                    "exception": f"{type(e).__name__}: {e}",
                    "exc_type": type(e).__name__,
                    "exc": json.dumps([repr(e)]),
                },
            )
        if req is not None and own_started is not None:
            self._learn(req.label, time.monotonic() - own_started)
        if req is not None and status == 200:
            extra = self.costs.after(req, _rows(out))
            cost += extra
            cpu += extra
            self._pool.work(extra)
        label = req.label if req is not None else ""
        if fault in ("timeout", "reset"):
            if fault == "reset":
                raise _Reset(doctype, label, (cost, cpu))
            time.sleep(fcfg.timeout_seconds if fcfg else 0)
        return status, out, doctype, fault, label, (cost, cpu)

    def _net(self, label: str, cost: float) -> float:
        """A modelled cost less the simulator's own time for such a request (its Python and SQLite work is
        part of the server time the model prices, not extra)."""
        if self.costs.flat is not None:
            return cost
        return max(0.0, cost - self._own.get(label, 0.0))

    def _learn(self, label: str, seconds: float) -> None:
        old = self._own.get(label)
        self._own[label] = seconds if old is None else 0.8 * old + 0.2 * seconds

    def _fault_answer(self, fault: str | None, fcfg: FaultConfig | None) -> tuple[int, dict[str, Any] | str]:
        if fault == "500":
            return 500, {
                "exception": "pymysql.err.OperationalError: (2013, 'Lost connection to MySQL server "
                "during query')",
                "exc_type": "OperationalError",
                "exc": json.dumps(["Traceback (simulated fault)"]),
            }
        if fault == "502html":
            return 502, (
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
                "Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
            )
        if fault == "417":
            return 417, validation("Simulated validation failure (fault injection)").body()
        if fault == "timeout":
            time.sleep(fcfg.timeout_seconds if fcfg else 0)
            return 504, "<html><body><h1>504 Gateway Time-out</h1></body></html>"
        raise _Reset(None)

    def _authenticate(self, header: str | None) -> str:
        if not header:
            return "Guest"
        scheme, _, cred = header.strip().partition(" ")
        if scheme.lower() == "basic":
            with contextlib.suppress(Exception):
                cred = base64.b64decode(cred).decode()
        elif scheme.lower() != "token":
            raise FrappeError(401, "AuthenticationError", None, exception="")
        key, _, secret = cred.strip().partition(":")
        if key != self.api_key or secret != self.api_secret:
            raise FrappeError(401, "AuthenticationError", None, exception="")
        return "Administrator"

    def _parse_body(self, body: bytes, headers: dict[str, str]) -> Any:
        if not body:
            return {}
        ctype = headers.get("content-type", "")
        text = body.decode("utf-8", errors="replace")
        if "application/x-www-form-urlencoded" in ctype:
            out: dict[str, Any] = dict(parse_qsl(text, keep_blank_values=True))
            if "data" in out:
                out = {**out, **_loads(out.pop("data"))}
            return out
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise FrappeError(500, "JSONDecodeError", None, module="json.decoder", exception=str(e)) from None

    # -- resources -------------------------------------------------------------------------------------
    def _resource(
        self, method: str, doctype: str, name: str | None, query: dict[str, str], data: Any
    ) -> tuple[int, dict[str, Any]]:
        eng = self.engine
        if method == "GET":
            with self.lock:
                eng.check_doctype(doctype)
                if name is None:
                    return 200, {"data": self._list(doctype, query)}
                return 200, {"data": _out(eng.load(doctype, name))}
        if not isinstance(data, dict):
            data = {}
        if "data" in data and isinstance(data["data"], (str, dict)) and len(data) == 1:
            data = _loads(data["data"])
        with self.lock:
            eng.notes = []
            with self.store.transaction():
                if method == "POST" and name is None:
                    eng.check_doctype(doctype)
                    doc = eng.insert(doctype, data)
                    if isinstance(data.get("__onload"), dict):  # Frappe answers what the new doc was given
                        doc = {**doc, "__onload": data["__onload"]}
                elif method == "PUT" and name is not None:
                    doc = eng.update(doctype, name, data)
                elif method == "DELETE" and name is not None:
                    eng.delete(doctype, name)
                    return 202, {"data": "ok"}
                else:
                    raise FrappeError(405, "MethodNotAllowed", "Method not allowed")
            return 200, self._with_notes({"data": _out(doc)})

    def _with_notes(self, out: dict[str, Any]) -> dict[str, Any]:
        if self.engine.notes:
            out["_server_messages"] = server_messages(self.engine.notes)
        return out

    def _list(self, doctype: str, query: dict[str, Any], *, default_limit: int = 20) -> list[dict[str, Any]]:
        known = self.engine.known_fields(doctype)
        fields = _loads(query.get("fields")) if query.get("fields") else ["name"]
        if isinstance(fields, str):
            fields = [fields]
        out_fields: list[str] = []
        aggregates: dict[str, str] = {}  # alias -> field counted, for "count(name) as n" (with group_by)
        for f in fields:
            counted = _COUNT.fullmatch(f.strip())
            if counted:
                aggregates[counted.group(2) or f.strip()] = strip_field(counted.group(1))
                continue
            if f.strip() == "*":
                out_fields.extend(
                    k for k in ("name", *META_FIELDS[1:], *DOC_FIELDS.get(doctype, {})) if k not in out_fields
                )
                out_fields.extend(
                    k
                    for k in sorted(known)
                    if k not in out_fields and k not in DOC_TABLES.get(doctype, {}) and k != "doctype"
                )
                continue
            base = strip_field(f.split(" as ")[0])
            if base not in known or base in DOC_TABLES.get(doctype, {}):
                raise FrappeError(417, "DataError", [error_message(f"Field not permitted in query: {f}")])
            out_fields.append(base)
        filters = [
            self._filter(doctype, known, f) for f in normalize_filters(_loads(query.get("filters")), doctype)
        ]
        or_filters = [
            self._filter(doctype, known, f)
            for f in normalize_filters(_loads(query.get("or_filters")), doctype)
        ]
        eq = {f: v for f, op, v, table in filters if op == "=" and isinstance(v, str) and table is None}
        rows = [
            d
            for d in self.store.scan(doctype, eq)
            if all(_matches(d, f) for f in filters)
            and (not or_filters or any(_matches(d, f) for f in or_filters))
        ]
        group_by = strip_field(str(query.get("group_by") or ""))
        if group_by or aggregates:
            # Frappe: one row per group (MariaDB keeps the first row's other columns), count() over the group
            if group_by and group_by not in known:
                raise FrappeError(417, "DataError", [error_message(f"Field not permitted in query: {group_by}")])
            groups: dict[Any, list[dict[str, Any]]] = {}
            for d in rows:
                groups.setdefault(d.get(group_by) if group_by else None, []).append(d)
            rows = [dict(members[0], **{a: sum(1 for m in members if m.get(f) is not None)
                                        for a, f in aggregates.items()}) for members in groups.values()]
            out_fields.extend(aggregates)
            known = known | set(aggregates)
        for field, desc in reversed(parse_order_by(query.get("order_by"))):
            if field not in known:
                raise FrappeError(417, "DataError", [error_message(f"Field not permitted in query: {field}")])
            rows.sort(key=_field_key(field), reverse=desc)
        start = cint(query.get("limit_start"))
        limit_raw = query.get("limit_page_length", query.get("limit", query.get("page_length")))
        limit = default_limit if limit_raw in (None, "") else cint(limit_raw)
        rows = rows[start : start + limit] if limit else rows[start:]
        return [{f: d.get(f) for f in out_fields} for d in rows]

    def _filter(
        self, doctype: str, known: set[str], flt: tuple[str, str, Any, str]
    ) -> tuple[str, str, Any, str | None]:
        """Validate one filter -> (field, op, value, child table fieldname or None)."""
        field, op, value, fdt = flt
        field = strip_field(field)
        if fdt == doctype:
            if field not in known:
                raise FrappeError(417, "DataError", [error_message(f"Field not permitted in query: {field}")])
            return field, op, value, None
        table = next((t for t, cdt in DOC_TABLES.get(doctype, {}).items() if cdt == fdt), None)
        child_known = set(DOC_FIELDS.get(fdt, {})) | set(self.engine.custom_fields(fdt)) | {"name", "parent"}
        if table is None or field not in child_known:
            raise FrappeError(417, "DataError", [error_message(f"Field not permitted in query: {field}")])
        return field, op, value, table

    # -- methods ---------------------------------------------------------------------------------------
    def _method(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        eng = self.engine
        if method == "frappe.auth.get_logged_user":
            return 200, {"message": "Administrator"}
        if method in ("frappe.client.get_list", "frappe.client.get_all"):
            doctype = str(args.get("doctype"))
            with self.lock:
                eng.check_doctype(doctype)
                q: dict[str, Any] = {
                    k: (json.dumps(v) if not isinstance(v, (str, int)) else v) for k, v in args.items()
                }
                return 200, {"message": self._list(doctype, q)}
        if method == "frappe.client.get_count":
            doctype = str(args.get("doctype"))
            with self.lock:
                eng.check_doctype(doctype)
                raw_filters = args.get("filters")
                q = {
                    "filters": raw_filters if isinstance(raw_filters, str) else json.dumps(raw_filters or []),
                    "limit_page_length": 0,
                }
                return 200, {"message": len(self._list(doctype, q))}
        if method == "frappe.client.get":
            with self.lock:
                doctype = str(args.get("doctype"))
                eng.check_doctype(doctype)
                name = args.get("name")
                if not name and args.get("filters"):
                    q = {"filters": json.dumps(_loads(args["filters"])), "limit_page_length": 1}
                    found = self._list(doctype, q)
                    if not found:
                        raise FrappeError(
                            404, "DoesNotExistError", f"{doctype} not found", with_exception=False
                        )
                    name = found[0]["name"]
                return 200, {"message": _out(eng.load(doctype, str(name)))}
        if method == "frappe.client.get_value":
            with self.lock:
                doctype = str(args.get("doctype"))
                eng.check_doctype(doctype)
                fieldname = _loads(args.get("fieldname")) or "name"
                fields = fieldname if isinstance(fieldname, list) else [fieldname]
                filters = _loads(args.get("filters"))
                if isinstance(filters, str):
                    filters = {"name": filters}
                q = {
                    "filters": json.dumps(filters or {}),
                    "fields": json.dumps(fields),
                    "limit_page_length": 1,
                }
                found = self._list(doctype, q)
                return 200, {"message": found[0] if found else None} if found else {}
        if method == "frappe.client.insert":
            doc = _loads(args.get("doc"))
            with self.lock, self.store.transaction():
                eng.notes = []
                created = eng.insert(str(doc.get("doctype")), doc)
            return 200, self._with_notes({"message": _out(created)})
        if method == "frappe.client.insert_many":
            docs = _loads(args.get("docs")) or []
            if len(docs) > 200:
                raise validation("Only 200 inserts allowed in one request")
            names = []
            with self.lock, self.store.transaction():
                eng.notes = []
                for doc in docs:
                    doc = dict(doc)
                    names.append(eng.insert(str(doc.pop("doctype", None)), doc)["name"])
            return 200, {"message": names}
        if method == "frappe.client.submit":
            doc = _loads(args.get("doc"))
            with self.lock, self.store.transaction():
                eng.notes = []
                out = eng.submit(doc)
            return 200, self._with_notes({"message": _out(out)})
        if method == "frappe.client.cancel":
            with self.lock, self.store.transaction():
                out = eng.cancel(str(args.get("doctype")), str(args.get("name")))
            return 200, {"message": _out(out)}
        if method == "frappe.client.delete":
            with self.lock, self.store.transaction():
                eng.delete(str(args.get("doctype")), str(args.get("name")))
            return 200, {}
        if method == "frappe.client.set_value":
            fieldname = _loads(args.get("fieldname"))
            values = fieldname if isinstance(fieldname, dict) else {fieldname: args.get("value")}
            with self.lock, self.store.transaction():
                out = eng.update(str(args.get("doctype")), str(args.get("name")), values)
            return 200, {"message": _out(out)}
        if method == SO_UPDATE_STATUS:
            with self.lock, self.store.transaction():
                eng.update_status(str(args.get("name")), str(args.get("status")))
            return 200, {}
        if method in (erpnext_invoice.MAKE_SALES_INVOICE, erpnext_invoice.MAKE_DELIVERY_NOTE,
                      erpnext_returns.MAKE_SALES_RETURN):  # fmt: skip
            with self.lock:  # a mapper reads only: the unsaved document is the answer
                source = str(args.get("source_name"))
                if method == erpnext_returns.MAKE_SALES_RETURN:
                    mapped = erpnext_returns.make_sales_return(eng, source)
                elif method == erpnext_invoice.MAKE_SALES_INVOICE:
                    mapped = erpnext_invoice.make_sales_invoice(eng, source, args.get("args"))
                else:
                    mapped = erpnext_invoice.make_delivery_note(eng, source, args.get("args"))
            return 200, {"message": mapped}
        module, _, attr = method.rpartition(".")
        raise validation(
            f"Failed to get method for command {method} with module '{module}' has no attribute '{attr}'"
        )


def _method_doctype(method: str, args: dict[str, Any]) -> str | None:
    if args.get("doctype"):
        return str(args["doctype"])
    for key in ("doc", "docs"):
        with contextlib.suppress(Exception):
            v = _loads(args.get(key))
            if isinstance(v, list) and v:
                v = v[0]
            if isinstance(v, dict) and v.get("doctype"):
                return str(v["doctype"])
    if method == SO_UPDATE_STATUS:
        return "Sales Order"
    if method in (erpnext_invoice.MAKE_SALES_INVOICE, erpnext_returns.MAKE_SALES_RETURN):
        return "Sales Invoice"
    if method == erpnext_invoice.MAKE_DELIVERY_NOTE:
        return "Delivery Note"
    return None


_COUNT = re.compile(r"count\(\s*([`\w.]+)\s*\)(?:\s+as\s+(\w+))?", re.IGNORECASE)


def _request_args(kind: str, query: dict[str, Any], data: Any) -> dict[str, Any]:
    """The arguments a request's cost depends on: a method's query and body, a resource's document."""
    body = data if isinstance(data, dict) else {}
    if kind == "method":
        return {**query, **body}
    if "data" in body and isinstance(body["data"], (str, dict)) and len(body) == 1:
        inner = _loads(body["data"])
        return inner if isinstance(inner, dict) else {}
    return body


def _rows(out: Any) -> int:
    """Rows in a list answer (``data`` of /api/resource, ``message`` of get_list)."""
    if isinstance(out, dict):
        rows = out.get("data", out.get("message"))
        if isinstance(rows, list):
            return len(rows)
    return 0


def _loads(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        text = value.decode() if isinstance(value, bytes) else value
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return value


def _matches(doc: dict[str, Any], flt: tuple[str, str, Any, str | None]) -> bool:
    field, op, value, table = flt
    if table is None:
        return match(doc, field, op, value)
    return any(match(row, field, op, value) for row in doc.get(table) or [])


def _field_key(field: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda d: _sort_key(d.get(field))


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, "")
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))


def _out(doc: dict[str, Any]) -> dict[str, Any]:
    return doc


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[Any] = set()
        self._conn_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """What a restarted ERPNext does to its clients: every open keep-alive connection is cut."""
        with self._conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections (faults, client timeouts) are expected here


class _Handler(BaseHTTPRequestHandler):
    simulator: ErpNextSimulator
    protocol_version = "HTTP/1.1"
    server_version = "erpnext-sim/15"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        sim = self.simulator
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = unquote(urlsplit(self.path).path)
        gated = path.startswith(("/api/resource", "/api/method")) and path != "/api/method/ping"
        slot = sim._pool.slot() if gated else contextlib.nullcontext()
        try:
            with slot:
                status, out, doctype, fault, kind, (cost, cpu) = sim.handle(
                    self.command, self.path, headers, body
                )
        except _Reset as reset:
            sim._log(
                RequestRecord(
                    self.command,
                    path,
                    reset.args[0] if reset.args else None,
                    0,
                    time.monotonic() - started,
                    "reset",
                    reset.args[1] if len(reset.args) > 1 else "",
                    *(reset.args[2] if len(reset.args) > 2 else (0.0, 0.0)),
                )
            )
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            return
        if isinstance(out, str):
            payload, ctype = out.encode(), "text/html; charset=utf-8"
        else:
            payload, ctype = (
                json.dumps(out, ensure_ascii=False, default=_json_default).encode(),
                "application/json",
            )
        sim._log(
            RequestRecord(self.command, path, doctype, status, time.monotonic() - started, fault, kind, cost, cpu)
        )
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout) or went away
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


def _json_default(o: Any) -> Any:
    if isinstance(o, date):
        return o.isoformat()
    return str(o)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amz2erp_sim.erpnext", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", default=None, help="SQLite file (default: a temporary one)")
    parser.add_argument("--api-key", default="sim-key")
    parser.add_argument("--api-secret", default="sim-secret")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="price requests like a real ERPNext v15 on 2 workers, in real time × SPEED (1 = real time)",
    )
    ns = parser.parse_args(argv)
    costs = CostModel(speed=ns.speed) if ns.speed is not None else None
    sim = ErpNextSimulator(
        ns.db, api_key=ns.api_key, api_secret=ns.api_secret, latency=ns.latency, workers=ns.workers, costs=costs
    ).start(ns.port)
    print(sim.url, flush=True)
    return serve_until_interrupted(sim)


if __name__ == "__main__":
    raise SystemExit(main())
