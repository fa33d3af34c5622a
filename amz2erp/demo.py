"""`amz2erp demo`: the whole pipeline on this machine, against the bundled simulators, with no accounts.

Both simulators run in this process on free loopback ports with generated data; a temporary config points
amz2erp at them; then the real commands run one after the other, exactly as a user would type them:
check → setup → check → sync-products → sync-orders → (Amazon changes: orders ship, cancel, partially
cancel) → sync-orders → status. The simulators and the commands share one simulated clock, so Amazon's
real rate limits and report processing times apply without waiting for them.

With ``--keep`` the simulators stay up as a playground for commands typed by hand, which run on the real
clock. So the simulated clock starts hours in the past (the scripted run uses minutes of simulated time),
and when the script is done the SP-API simulator moves onto the real clock: time jumps forward, as if the
user had waited, cursors lie in the past, reports finish, and the two-minute rule agrees on "now".
"""

from __future__ import annotations

import random
import tempfile
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from amz2erp.clock import SimulatedClock, SystemClock, set_default_clock
from amz2erp.ui import Reporter, plural

#: the demo company books in USD; CAD orders and settlements at this rate (no Currency Exchange in ERPNext)
DEMO_RATES = {"CAD:USD": 0.72}

DEMO_CONFIG = """\
# Written by `amz2erp demo`: points amz2erp at the local simulators.
[amazon]
refresh_token = "{refresh_token}"
lwa_app_id = "{client_id}"
lwa_client_secret = "{client_secret}"
region = "na"
marketplaces = ["US", "CA"]
endpoint = "{spapi_url}"
lwa_endpoint = "{lwa_url}"
orders_api = "2026-01-01"

[erpnext]
url = "{erp_url}"
api_key = "{api_key}"
api_secret = "{api_secret}"
workers = 4

[defaults]
company = "Amz Test Co"
warehouse = "Stores - ATC"
fba_warehouse = "Finished Goods - ATC"
item_group = "Products"
price_list = "Standard Selling"
customer_group = "Individual"
territory = "All Territories"
account_group = "Duties and Taxes - ATC"

[orders.exchange_rates]
"CAD:USD" = {cad_usd}

[sync]
after = {after}

[state]
path = "{state_path}"

[settlements]
bank_account = "Amazon Payouts"
mode = "{mode}"
"""


# How far in the past the simulated clock of a kept demo starts: the scripted run takes about 17 minutes of
# simulated time (rate-limit waits, report processing, "ten minutes later"), far less than this.
KEEP_REWIND = timedelta(hours=6)
# The kept playground: reports are ready in seconds, and every usage plan allows commands typed by hand
# (Amazon's real plans allow, e.g., one getMarketplaceParticipations a minute after a burst of 15).
KEPT_REPORT_SECONDS = 2.0
KEPT_MIN_RATE = 5.0
KEPT_MIN_BURST = 60


class Demo:
    def __init__(self, reporter: Reporter, *, orders: int, seed: int, workdir: Path, keep: bool = False,
                 mode: str = "summary") -> None:
        from amz2erp_sim import datagen
        from amz2erp_sim.erpnext import ErpNextSimulator
        from amz2erp_sim.spapi import SpApiOptions, SpApiSimulator

        self.reporter = reporter
        self.seed = seed
        self.mode = mode  # [settlements] mode: summary | invoice
        self.workdir = workdir
        self.clock = SimulatedClock(datetime.now(timezone.utc) - KEEP_REWIND if keep else None)
        now = self.clock.now()
        listings = datagen.generate_listings(seed, max(30, orders // 3), ("US", "CA"))
        self.sim_orders = datagen.generate_orders(seed, orders, listings, now - timedelta(days=30),
                                                  now - timedelta(minutes=10))
        self.spapi = SpApiSimulator(SpApiOptions(report_processing_seconds=45.0, pii_allowed=False),
                                    clock=self.clock, listings=listings, orders=self.sim_orders)
        self.erp = ErpNextSimulator(str(workdir / "erpnext.sqlite"))
        self.config_path = workdir / "amz2erp.toml"

    def start(self) -> None:
        self.spapi.start()
        self.erp.start()
        creds = self.spapi.credentials
        text = DEMO_CONFIG.format(
            refresh_token=creds["refresh_token"], client_id=creds["lwa_app_id"],
            client_secret=creds["lwa_client_secret"], spapi_url=self.spapi.url, lwa_url=self.spapi.lwa_url,
            erp_url=self.erp.url, api_key=self.erp.api_key, api_secret=self.erp.api_secret,
            after=(self.clock.now() - timedelta(days=31)).date().isoformat(),
            state_path=self.workdir / "state.db", cad_usd=DEMO_RATES["CAD:USD"], mode=self.mode,
        )
        self.config_path.write_text(text, encoding="utf-8")
        self.config_path.chmod(0o600)
        set_default_clock(self.clock)

    def keep_running(self) -> None:
        """Hand the SP-API simulator to the real clock (see the module docstring). Raises RuntimeError when
        the scripted run used more simulated time than KEEP_REWIND (cursors would lie in the future)."""
        ahead = (self.clock.now() - datetime.now(timezone.utc)).total_seconds()
        if ahead > 0:
            raise RuntimeError(
                f"the demo's simulated clock ran {ahead:.0f}s past the real one; run `demo --keep` with fewer --orders"
            )
        set_default_clock(None)
        self.spapi.switch_clock(SystemClock(), report_processing_seconds=KEPT_REPORT_SECONDS,
                                min_rate=KEPT_MIN_RATE, min_burst=KEPT_MIN_BURST)

    def stop(self) -> None:
        set_default_clock(None)
        self.spapi.stop()
        self.erp.stop()

    def settlements(self) -> list[dict[str, Any]]:
        """Each closed settlement: Amazon's deposit next to the bank line of its Journal Entry. A CAD settlement
        of the demo's USD company is booked at the configured rate, so its bank line is the deposit × rate."""
        from decimal import ROUND_HALF_UP, Decimal

        from amz2erp.amazon import marketplaces as mp

        now = self.clock.now()
        by_id: dict[str, dict[str, Any]] = {}
        for je in self.erp.docs("Journal Entry"):
            if je.get("docstatus") == 1 and je.get("amazon_settlement_id"):
                full = self.erp.get_doc("Journal Entry", je["name"])
                by_id[str(je["amazon_settlement_id"])] = full if full is not None else je
        out = []
        for s in self.spapi.settlements:
            if not s.report_available(now):
                continue
            currency = mp.resolve(s.marketplace_id).currency
            rate = Decimal(1) if currency == "USD" else Decimal(str(DEMO_RATES[f"{currency}:USD"]))
            expected = (s.total() * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
            entry = by_id.get(s.settlement_id)
            bank = None
            if entry is not None:
                bank = Decimal(0)
                for row in entry.get("accounts") or []:
                    if row.get("user_remark"):  # category lines carry their remark; the bank line does not
                        continue
                    bank += Decimal(str(row.get("debit_in_account_currency") or 0))
                    bank -= Decimal(str(row.get("credit_in_account_currency") or 0))
            out.append({"settlement_id": s.settlement_id, "deposit_date": s.deposit_date.date().isoformat(),
                        "deposit": f"{s.total()} {currency}", "rate": str(rate),
                        "journal_entry": entry["name"] if entry else None,
                        "bank_line": None if bank is None else f"{bank.quantize(Decimal('0.01'))} USD", "match": bank == expected})
        return out

    def invoices(self) -> dict[str, Any]:
        """Invoice mode: per posted settlement, the documents its receipt entries clear, whether each is paid
        (outstanding 0), and the clearing account's net over the settlement's entry and its receipts."""
        from amz2erp.invoice_refs import POSTING_KEY_FIELD

        clearing = "Amazon Settlement Clearing - ATC"
        entries = [self.erp.get_doc("Journal Entry", str(d["name"])) or d for d in self.erp.docs("Journal Entry")
                   if d.get("docstatus") == 1]

        def net(rows: list[dict[str, Any]], pick: Callable[[dict[str, Any]], bool]) -> Decimal:
            return sum((Decimal(str(r.get("debit_in_account_currency") or 0))
                        - Decimal(str(r.get("credit_in_account_currency") or 0)) for r in rows if pick(r)), Decimal(0))

        invoices = {str(d["name"]): d for d in self.erp.docs("Sales Invoice") if d.get("docstatus") == 1}
        cleared: set[str] = set()
        out = []
        for je in entries:
            sid = je.get("amazon_settlement_id")
            if not sid:
                continue
            receipts = [r for r in entries if str(r.get(POSTING_KEY_FIELD) or "").startswith(f"RCPT:{sid}:")]
            docs = {str(row["reference_name"]) for r in receipts for row in r.get("accounts") or []
                    if row.get("reference_type") == "Sales Invoice" and row.get("reference_name")}
            cleared |= docs
            unpaid = [n for n in docs if n in invoices and Decimal(str(invoices[n].get("outstanding_amount") or 0))]
            entry_line = net(je.get("accounts") or [], lambda r: r.get("account") == clearing
                             and str(r.get("user_remark") or "").startswith("invoiced"))
            receipt_lines = net([row for r in receipts for row in r.get("accounts") or []],
                                lambda r: r.get("account") == clearing)
            out.append({
                "settlement_id": str(sid), "journal_entry": je.get("name"),
                "invoices": sum(1 for n in docs if n in invoices and not int(invoices[n].get("is_return") or 0)),
                "credit_notes": sum(1 for n in docs if n in invoices and int(invoices[n].get("is_return") or 0)),
                "receipts": [r.get("name") for r in receipts], "unpaid": sorted(unpaid),
                "clearing": str((entry_line + receipt_lines).quantize(Decimal("0.01"))),
            })
        return {
            "settlements": sorted(out, key=lambda x: x["settlement_id"]),
            "sales_invoices": sum(1 for d in invoices.values() if not int(d.get("is_return") or 0)),
            "credit_notes": sum(1 for d in invoices.values() if int(d.get("is_return") or 0)),
            "journal_credit_notes": sum(1 for d in entries if d.get("voucher_type") == "Credit Note"),
            "delivery_notes": sum(1 for d in self.erp.docs("Delivery Note") if d.get("docstatus") == 1),
            "not_cleared": sorted(set(invoices) - cleared),
        }

    def amazon_changes(self) -> dict[str, list[str]]:
        """Ten minutes later on Amazon: some orders ship, some are cancelled, one is partly cancelled."""
        self.clock.advance(600)
        rng = random.Random(self.seed)
        unshipped = [o for o in self.spapi.orders if o.status == "Unshipped"]
        rng.shuffle(unshipped)
        shipped = [o.amazon_order_id for o in unshipped[: max(1, len(unshipped) // 3)]]
        cancelled = [o.amazon_order_id for o in unshipped[len(shipped): len(shipped) + 3]]
        for order_id in shipped:
            self.spapi.ship_order(order_id)
        for order_id in cancelled:
            self.spapi.cancel_order(order_id)
        partial = []
        for o in unshipped[len(shipped) + 3:]:
            multi = [i for i in o.items if i.quantity_ordered > 1]
            if multi:
                self.spapi.partially_cancel(o.amazon_order_id, multi[0].order_item_id, 1)
                partial.append(o.amazon_order_id)
                break
        self.clock.advance(180)  # Amazon shows changes two minutes after they happen
        return {"shipped": shipped, "cancelled": cancelled, "partially cancelled": partial}

    def landed(self) -> dict[str, Any]:
        orders = {o.amazon_order_id: o for o in self.spapi.orders}
        sales_orders = self.erp.docs("Sales Order")
        by_status: dict[str, int] = {}
        for so in sales_orders:
            by_status[str(so.get("status"))] = by_status.get(str(so.get("status")), 0) + 1
        sample = []
        submitted = [so for so in sales_orders if so.get("docstatus") == 1]
        for so in sorted(submitted, key=lambda d: str(d.get("name")))[:6]:
            amazon = orders.get(str(so.get("amazon_order_id")))
            mf_tax = sum((i.tax_total for i in amazon.items if i.tax_collection_model == "MarketplaceFacilitator"),
                         Decimal("0")) if amazon else Decimal("0")
            sample.append({
                "name": so.get("name"),
                "amazon_order_id": so.get("amazon_order_id"),
                "status": so.get("status"),
                "currency": so.get("currency"),
                "grand_total": so.get("grand_total"),
                "amazon_order_total": str(amazon.order_total) if amazon else None,
                "marketplace_facilitator_tax": str(mf_tax),
            })
        cancelled = [{"name": so.get("name"), "amazon_order_id": so.get("amazon_order_id")}
                     for so in sales_orders if so.get("docstatus") == 2]
        return {
            "items": self.erp.count("Item"),
            "item_prices": self.erp.count("Item Price"),
            "customers": self.erp.count("Customer"),
            "addresses": self.erp.count("Address"),
            "sales_orders": len(sales_orders),
            "sales_orders_by_status": by_status,
            "sample": sample,
            "cancelled": cancelled,
            "amazon_calls": dict(self.spapi.operation_counts()),
        }


def run_demo(reporter: Reporter, run_cli: Callable[[list[str]], int], *, orders: int = 200, seed: int = 7,
             keep: bool = False, workdir: Path | None = None, until: threading.Event | None = None,
             mode: str = "summary") -> int:
    """The scripted demo; with ``keep`` the simulators then serve on the real clock until ``until`` is set
    (default: never, i.e. until Ctrl-C). ``mode`` is ``[settlements] mode``: with "invoice" each settled
    order gets its Sales Invoice, each refund its Credit Note, and receipt entries clear them."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="amz2erp-demo-")
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(reporter, orders=orders, seed=seed, workdir=workdir, keep=keep, mode=mode)
    demo.start()
    cfg = ["--config", str(demo.config_path)]
    say = reporter.info
    try:
        say(f"Simulated SP-API at {demo.spapi.url}, ERPNext at {demo.erp.url}; "
            f"{plural(len(demo.sim_orders), 'Amazon order')} over the last 30 days in US (USD) and CA (CAD).")
        say("\n$ amz2erp check   (before setup: the custom fields are missing)")
        run_cli([*cfg, "check"])
        steps: list[tuple[str, list[str]]] = [
            ("setup", ["setup"]),
            ("check", ["check"]),
            ("sync-products", ["sync-products"]),
            ("sync-orders", ["sync-orders"]),
        ]
        for label, args in steps:
            say(f"\n$ amz2erp {' '.join(args)}")
            code = run_cli([*cfg, *args])
            if code not in (0, 1):
                say(f"demo stopped: `amz2erp {label}` exited {code}")
                return code
        changes = demo.amazon_changes()
        say("\nTen minutes later on Amazon: " + "; ".join(f"{plural(len(v), 'order')} {k}" for k, v in changes.items()))
        say("\n$ amz2erp sync-orders")
        code = run_cli([*cfg, "sync-orders"])
        if code not in (0, 1):
            return code
        say("\n$ amz2erp sync-orders   (again: nothing changed, nothing is written)")
        before = len(demo.erp.request_log)
        run_cli([*cfg, "sync-orders"])
        writes = sum(1 for r in demo.erp.request_log[before:] if r.method in ("POST", "PUT", "DELETE"))
        landed = demo.landed()
        _show(reporter, landed, writes)
        # settlements: the money after the order; a USD deposit is the bank line to the cent, a CAD one is booked at
        # the configured rate (the demo's Amazon does not convert payouts)
        say("\n$ amz2erp sync-settlements")
        code = run_cli([*cfg, "sync-settlements"])
        if code not in (0, 1):
            return code
        settled = demo.settlements()
        _show_settlements(reporter, settled)
        invoiced: dict[str, Any] | None = None
        if mode == "invoice":
            say("\n$ amz2erp sync-settlements   (again: every document is found by its key, nothing is written)")
            before = len(demo.erp.request_log)
            run_cli([*cfg, "sync-settlements"])
            invoiced = demo.invoices()
            invoiced["writes_on_rerun"] = sum(1 for r in demo.erp.request_log[before:]
                                              if r.method in ("POST", "PUT", "DELETE"))
            _show_invoices(reporter, invoiced)
        reporter.emit_json({"landed": landed, "changes": changes, "writes_on_rerun": writes,
                            "settlements": settled, "invoice_mode": invoiced, "config": str(demo.config_path)})
        if keep:
            demo.keep_running()
            say(textwrap.dedent(f"""
                The simulators keep running on the real clock (Ctrl-C to stop); every command works against
                them (reports take {KEPT_REPORT_SECONDS:g}s, rate limits are relaxed for typing by hand):
                  SP-API   {demo.spapi.url}
                  ERPNext  {demo.erp.url}   (Authorization: token {demo.erp.api_key}:…)
                  config   {demo.config_path}
                Try: amz2erp --config {demo.config_path} check
                     amz2erp --config {demo.config_path} sync-orders --mode report
                     amz2erp --config {demo.config_path} status"""))
            (until or threading.Event()).wait()
        return 0
    finally:
        demo.stop()
        if tmp is not None and not keep:
            tmp.cleanup()


def _show(reporter: Reporter, landed: dict[str, Any], writes: int) -> None:
    reporter.table("What landed in ERPNext", ["doctype", "count"], [
        ("Item", landed["items"]), ("Item Price", landed["item_prices"]), ("Customer", landed["customers"]),
        ("Address", landed["addresses"]), ("Sales Order", landed["sales_orders"]),
    ] + [(f"  status {k}", v) for k, v in sorted(landed["sales_orders_by_status"].items())])
    rows = []
    for s in landed["sample"]:
        expected = None
        if s["amazon_order_total"] is not None:
            expected = Decimal(s["amazon_order_total"]) - Decimal(s["marketplace_facilitator_tax"])
        ok = expected is not None and Decimal(str(s["grand_total"])).quantize(Decimal("0.01")) == expected
        rows.append((s["name"], s["amazon_order_id"], f"{s['grand_total']} {s['currency']}",
                     s["amazon_order_total"] or "-", s["marketplace_facilitator_tax"], "✓" if ok else "✗"))
    reporter.table("Sales Orders next to Amazon (marketplace-facilitator tax is Amazon's to remit: left out)",
                   ["Sales Order", "Amazon order", "grand total", "OrderTotal", "MF tax", "match"], rows,
                   ids=("Sales Order", "Amazon order"))
    if landed["cancelled"]:
        reporter.table("Cancelled on Amazon → cancelled in ERPNext", ["Sales Order", "Amazon order"],
                       [(c["name"], c["amazon_order_id"]) for c in landed["cancelled"]], ids=("Sales Order", "Amazon order"))
    reporter.line(f"Second run with no Amazon changes: {plural(writes, 'ERPNext write')}.")
    reporter.line("Amazon calls: " + ", ".join(f"{k} {v}" for k, v in sorted(landed["amazon_calls"].items())))


def _show_settlements(reporter: Reporter, settled: list[dict[str, Any]]) -> None:
    reporter.table("Settlements: Amazon's deposit next to the Journal Entry's bank line",
                   ["settlement", "deposit", "rate", "Journal Entry", "bank line", "ok"],
                   [(s["settlement_id"], s["deposit"], s["rate"], s["journal_entry"] or "-",
                     s["bank_line"] or "-", "✓" if s["match"] else "✗") for s in settled],
                   ids=("settlement", "deposit", "Journal Entry", "bank line"))


def _show_invoices(reporter: Reporter, invoiced: dict[str, Any]) -> None:
    reporter.table("Invoice mode: the documents each settlement's receipt entries clear",
                   ["settlement", "invoices", "returns", "receipts", "unpaid", "clearing", "ok"],
                   [(s["settlement_id"], s["invoices"], s["credit_notes"], len(s["receipts"]), len(s["unpaid"]),
                     s["clearing"], "✓" if not s["unpaid"] and Decimal(s["clearing"]) == 0 else "✗")
                    for s in invoiced["settlements"]],
                   ids=("settlement",))
    off = sum(1 for s in invoiced["settlements"] if Decimal(s["clearing"]) != 0)
    reporter.line(
        f"{plural(invoiced['sales_invoices'], 'Sales Invoice')}, {plural(invoiced['credit_notes'], 'Credit Note')}, "
        f"{plural(invoiced['journal_credit_notes'], 'amount-only credit note')} (Journal Entries); "
        f"{plural(len(invoiced['not_cleared']), 'invoice')} not cleared by a settlement; the clearing account "
        + ("nets to 0 per settlement" if not off else f"does not net to 0 for {plural(off, 'settlement')}")
        + f". Second run: {plural(invoiced['writes_on_rerun'], 'ERPNext write')}.")
