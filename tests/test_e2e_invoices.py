"""Invoice mode end to end on both simulators (issue 15): two months of history where every shipped order gets
one submitted Sales Invoice equal to its settled amount, every refund one Credit Note, every settlement one
balanced Journal Entry whose bank line is the deposit, and the receipts leave every invoice of a closed
settlement paid and the clearing account at zero; stock follows shipments with deliver on; re-runs write
nothing and kills at the two dangerous points leave exactly one of each document."""

from __future__ import annotations

import json
import os
import random
import signal
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from amz2erp.clock import SystemClock
from amz2erp.invoice_refs import POSTING_KEY_FIELD, credit_note_key, invoice_key
from amz2erp.state import Kind, StateStore, Status
from amz2erp_sim.erpnext.journal import account_balances
from amz2erp_sim.erpnext.stock import set_allow_negative_stock, stock_ledger
from amz2erp_sim.spapi.settlements import SimSettlement
from tests.conftest import SimEnvFactory
from tests.reliability import RequestWatch
from tests.simenv import SimEnv

BANK, CLEARING, SUSPENSE = "Amazon Payouts - ATC", "Amazon Settlement Clearing - ATC", "Amazon Unmapped - ATC"
WRITES = ("POST", "PUT", "DELETE")
MAPPER = ".make_"
CAD_USD = Decimal("0.72")
#: rows whose money is the buyer's (what the invoice holds): prices, promotions, and the withholding that
#: takes the marketplace-facilitator tax back out of the prices ([orders] marketplace_facilitator_tax = exclude)
ORDER_SIDE = ("ItemPrice", "Promotion", "ItemWithheldTax")


def config(deliver: str = "none", mf_tax: str = "exclude") -> str:
    return (f'\n[settlements]\nbank_account = "Amazon Payouts"\nmode = "invoice"\n'
            f'\n[orders]\ndeliver = "{deliver}"\nmarketplace_facilitator_tax = "{mf_tax}"\n')


def _env(sim_env: SimEnvFactory, deliver: str = "none", mf_tax: str = "exclude", **kw: Any) -> SimEnv:
    env = sim_env(**{"orders": 120, "days": 60, "marketplaces": ("US",), "extra_config": config(deliver, mf_tax),
                     "seed": 15, **kw})
    env.setup_erp()
    return env


def closed(env: SimEnv) -> list[SimSettlement]:
    now = env.clock.now()
    return [s for s in env.spapi.settlements if s.report_available(now)]


def expected(settlements: list[SimSettlement], *, book_mf: bool = False) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Invoice key → settled amount per shipment; credit-note key → refunded amount, from the simulator's rows.
    ``book_mf``: the invoices also hold the marketplace-facilitator tax the buyer paid (credit notes never)."""
    invoices: dict[str, Decimal] = defaultdict(Decimal)
    refunds: dict[str, Decimal] = defaultdict(Decimal)
    for s in settlements:
        for r in s.rows:
            if not r.order_id or r.amount_type not in ORDER_SIDE:
                continue
            if r.transaction_type == "Refund":
                refunds[credit_note_key(r.order_id, r.adjustment_id)] += r.amount
            elif not (book_mf and r.amount_type == "ItemWithheldTax"):
                invoices[invoice_key(r.order_id, r.shipment_id)] += r.amount
    return dict(invoices), dict(refunds)


def submitted(env: SimEnv, doctype: str) -> dict[str, list[dict[str, Any]]]:
    """Submitted documents by amazon_posting_key."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in env.erp.docs(doctype):
        if doc.get("docstatus") == 1 and doc.get(POSTING_KEY_FIELD):
            out[str(doc[POSTING_KEY_FIELD])].append(doc)
    return dict(out)


def settlement_entries(env: SimEnv) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for je in env.erp.docs("Journal Entry"):
        if je.get("docstatus") == 1 and je.get("amazon_settlement_id"):
            out[str(je["amazon_settlement_id"])].append(env.erp.get_doc("Journal Entry", je["name"]))
    return dict(out)


def writes_since(env: SimEnv, start: int) -> list[tuple[str, str]]:
    """Requests that can change ERPNext (ERPNext's make_* mappers are POSTs that write nothing)."""
    return [(r.method, r.path) for r in env.erp.request_log[start:] if r.method in WRITES and MAPPER not in r.path]


def usd(cad: Decimal) -> Decimal:
    """The conftest config's [orders.exchange_rates] CAD:USD = 0.72 (the simulated CAD settlements' rate)."""
    return (cad * CAD_USD).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def assert_books(env: SimEnv, *, book_mf: bool = False, by_group: bool = False) -> None:
    """The promises of invoice mode, against the simulator's state. ``by_group``: the settlements were rebuilt
    from Finances transactions and carry their event group's id."""
    want = closed(env)
    invoices, refunds = expected(want, book_mf=book_mf)
    sis = submitted(env, "Sales Invoice")
    jes = submitted(env, "Journal Entry")
    for key, amount in invoices.items():
        docs = sis.get(key, [])
        assert len(docs) == 1, (key, len(docs))
        [si] = docs
        assert not si.get("is_return") and Decimal(str(si["grand_total"])) == amount, (key, si["grand_total"], amount)
        assert Decimal(str(si["outstanding_amount"])) == 0, (key, si["outstanding_amount"])  # paid by its settlement
    for key, amount in refunds.items():
        notes = sis.get(key, []) + jes.get(key, [])
        assert len(notes) == 1, (key, len(notes))
        [note] = notes
        if note.get("doctype", "Sales Invoice") == "Sales Invoice" and "is_return" in note:
            assert note["is_return"] == 1 and Decimal(str(note["grand_total"])) == amount
            assert Decimal(str(note["outstanding_amount"])) == 0
    assert not set(sis) - set(invoices) - set(refunds)  # nothing invoiced that was not settled
    posted = settlement_entries(env)
    assert sorted(posted) == sorted(s.group_id if by_group else s.settlement_id for s in want)
    negative = Decimal(0)
    for s in want:
        [je] = posted[s.group_id if by_group else s.settlement_id]
        debit = sum(Decimal(str(r.get("debit") or 0)) for r in je["accounts"])
        credit = sum(Decimal(str(r.get("credit") or 0)) for r in je["accounts"])
        assert debit == credit > 0
        bank = sum(Decimal(str(r.get("debit_in_account_currency") or 0)) for r in je["accounts"] if r["account"] == BANK)
        charge = sum(Decimal(str(r.get("credit_in_account_currency") or 0)) for r in je["accounts"]
                     if r["account"] == CLEARING and r.get("user_remark") is None)
        deposit = s.total() if s.currency == "USD" else usd(s.total())  # CAD: at the configured rate
        assert bank - charge == deposit, s.settlement_id  # the deposit, to the cent
        negative += min(deposit, Decimal(0))
    balances = account_balances(env.erp)
    # the clearing account holds only what Amazon charged instead of paying (as in summary mode): every
    # invoice and credit note it carried was cleared by its settlement's receipts
    assert balances.get(CLEARING, Decimal(0)) == negative
    assert balances.get(SUSPENSE, Decimal(0)) == 0


def test_two_months_in_invoice_mode_and_a_rerun_writes_nothing(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env)
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("--json", "sync-settlements")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert len(closed(env)) >= 3
    invoices, refunds = expected(closed(env))
    assert len(invoices) >= 50 and len(refunds) >= 3  # a history worth the name
    assert_books(env)
    for r in report["settlements"]:
        assert r["invoicing"]["unmatched"] == [] and r["invoicing"]["receipts"], r["settlement_id"]
    with StateStore(env.state_path) as state:  # the ledger knows every document as done
        assert state.count(Kind.INVOICE, Status.DONE) == len(invoices)
        assert state.count(Kind.CREDIT_NOTE, Status.DONE) == len(refunds)

    start = len(env.erp.request_log)
    again = env.run("sync-settlements")
    assert again.code == 0, again.err
    assert writes_since(env, start) == []
    assert_books(env)


def test_a_canadian_marketplace_invoices_in_cad_and_the_receipts_clear_at_the_invoice_rate(
        sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, orders=80, marketplaces=("US", "CA"))
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("sync-settlements")
    assert result.code == 0, result.err
    cad = [s for s in closed(env) if s.currency == "CAD"]
    assert cad and expected(cad)[0]
    invoices = submitted(env, "Sales Invoice")
    for key in expected(cad)[0]:
        [si] = invoices[key]
        assert si["currency"] == "CAD" and Decimal(str(si["conversion_rate"])) == CAD_USD
    assert_books(env)


def test_history_from_finances_transactions_invoices_the_same_way(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env)
    assert env.run("-q", "sync-orders").code == 0
    since = (env.clock.now() - timedelta(days=70)).date().isoformat()
    result = env.run("sync-settlements", "--since", since)
    assert result.code == 0, result.err
    assert_books(env, by_group=True)
    assert all(len(v) == 1 and v[0].get("is_return") for k, v in submitted(env, "Sales Invoice").items()
               if k.startswith("CN:"))  # the refunds' labels in transactions give Credit Notes too


def test_booked_marketplace_facilitator_tax_is_on_the_invoices_and_its_account_nets_to_zero(
        sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, mf_tax="book")
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("sync-settlements")
    assert result.code == 0, result.err
    with_tax = [k for k, v in expected(closed(env), book_mf=True)[0].items() if v != expected(closed(env))[0][k]]
    assert with_tax  # the US orders are marketplace-facilitator orders: their invoices carry the tax
    assert_books(env, book_mf=True)
    mf = "Amazon Marketplace Facilitator Tax - ATC"
    assert account_balances(env.erp).get(mf, Decimal(0)) == 0  # booked by the invoices, cleared by Amazon


def test_dry_run_plans_every_document_and_writes_nothing(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, orders=60)
    assert env.run("-q", "sync-orders").code == 0
    start = len(env.erp.request_log)
    result = env.run("--json", "sync-settlements", "--dry-run")
    assert result.code == 0, result.err
    assert writes_since(env, start) == []
    plans = json.loads(result.out)["plans"]
    invoices, refunds = expected(closed(env))
    planned = [p for p in plans if p.get("doctype") == "Sales Invoice" and not p["doc"].get("is_return")]
    assert len(planned) == len(invoices)
    assert {p["doc"][POSTING_KEY_FIELD] for p in planned} == set(invoices)
    notes = {p["doc"].get(POSTING_KEY_FIELD) for p in plans if str(p["doc"].get(POSTING_KEY_FIELD, "")).startswith("CN:")}
    assert notes == set(refunds)
    assert [p for p in plans if str(p["doc"].get(POSTING_KEY_FIELD, "")).startswith("RCPT:")]  # and the receipts
    assert env.run("sync-settlements").code == 0  # the dry run left nothing behind
    assert_books(env)


def test_orders_without_a_sales_order_go_to_suspense_and_are_reported(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, orders=60)
    assert env.run("-q", "sync-orders").code == 0
    invoices, _ = expected(closed(env))
    victim = sorted(invoices)[0].split(":")[1]
    [so] = [d for d in env.erp.docs("Sales Order") if d.get("amazon_order_id") == victim]
    cancelled = httpx.post(f"{env.erp.url}/api/method/frappe.client.cancel",  # no live Sales Order any more
                           json={"doctype": "Sales Order", "name": so["name"]},
                           headers={"Authorization": env.erp.auth_header})
    assert cancelled.status_code == 200, cancelled.text
    result = env.run("--json", "sync-settlements")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert [victim] == [o for r in report["settlements"] for o in r["invoicing"]["unmatched"]]
    assert not [k for k in submitted(env, "Sales Invoice") if k.split(":")[1] == victim]
    settled = sum(amount for key, amount in invoices.items() if key.split(":")[1] == victim)
    assert account_balances(env.erp).get(SUSPENSE, Decimal(0)) == -settled


def shipped(env: SimEnv, *, less_returns: bool = False) -> dict[tuple[str, str], int]:
    """(SKU, warehouse) → units shipped in the closed settlements (FBA orders from the FBA warehouse), less the
    refunded units when ``less_returns``."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for s in closed(env):
        for r in s.rows:
            if r.amount_type == "ItemPrice" and r.amount_description == "Principal":
                warehouse = "Finished Goods - ATC" if r.fulfillment_id == "AFN" else "Stores - ATC"
                if r.transaction_type == "Order":
                    out[(r.sku, warehouse)] += r.quantity or 0
                elif less_returns and r.transaction_type == "Refund":
                    out[(r.sku, warehouse)] -= r.quantity or 0
    return {k: v for k, v in out.items() if v}


def moved(env: SimEnv, voucher_type: str) -> dict[tuple[str, str], int]:
    """(item, warehouse) → units out, from the live stock ledger entries of ``voucher_type``."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for e in stock_ledger(env.erp):
        if e.get("voucher_type") == voucher_type:
            out[(str(e["item_code"]), str(e["warehouse"]))] -= int(e["actual_qty"])
    return {k: v for k, v in out.items() if v}


@pytest.mark.parametrize("deliver", ["delivery_note", "invoice"])
def test_deliver_moves_the_shipped_quantities_per_warehouse(sim_env: SimEnvFactory, deliver: str) -> None:
    env = _env(sim_env, deliver, orders=60)
    set_allow_negative_stock(env.erp, True)  # the simulated seller never booked a stock receipt
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("sync-settlements")
    assert result.code == 0, result.err
    want = shipped(env)
    assert sum(want.values()) > 0
    if deliver == "delivery_note":
        assert moved(env, "Delivery Note") == want
        assert moved(env, "Sales Invoice") == {}
        assert len(submitted(env, "Delivery Note")) == len(expected(closed(env))[0])
    else:
        assert moved(env, "Sales Invoice") == want and moved(env, "Delivery Note") == {}
    assert_books(env)
    start = len(env.erp.request_log)
    assert env.run("sync-settlements").code == 0
    assert writes_since(env, start) == []


def test_restock_returns_brings_refunded_units_back(sim_env: SimEnvFactory) -> None:
    env = sim_env(orders=120, days=60, marketplaces=("US",), seed=15,
                  extra_config=config("invoice") + "restock_returns = true\n")
    env.setup_erp()
    set_allow_negative_stock(env.erp, True)
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("sync-settlements")
    assert result.code == 0, result.err
    assert shipped(env, less_returns=True) != shipped(env)  # some units came back
    assert moved(env, "Sales Invoice") == shipped(env, less_returns=True)
    assert_books(env)


def test_negative_stock_is_a_per_order_problem_and_the_invoices_still_post(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, "delivery_note", orders=40)  # nothing in stock, negative stock not allowed
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("--json", "sync-settlements")
    assert result.code == 0, result.err  # reported, not a failure
    problems = [p for r in json.loads(result.out)["settlements"] for p in r["invoicing"]["problems"]]
    assert problems and all("no Delivery Note" in p["problem"] and "needed in Warehouse" in p["problem"]
                            for p in problems)
    assert submitted(env, "Delivery Note") == {} and moved(env, "Delivery Note") == {}
    assert_books(env)


def test_an_amount_only_refund_is_a_journal_credit_note_against_the_invoice(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, orders=60)
    assert env.run("-q", "sync-orders").code == 0
    first = closed(env)[0]
    sale = next(r for r in first.rows if r.transaction_type == "Order" and r.amount_description == "Principal")
    goodwill = replace(sale, transaction_type="Refund", amount_type="ItemPrice", amount_description="Goodwill",
                       amount=Decimal("-3.00"), adjustment_id="GOODWILL1", shipment_id="", quantity=None)
    env.spapi.reissue_settlement(first.settlement_id, rows=[*first.rows, goodwill])
    result = env.run("sync-settlements")
    assert result.code == 0, result.err
    key = credit_note_key(sale.order_id, "GOODWILL1")
    [note] = submitted(env, "Journal Entry")[key]
    note = env.erp.get_doc("Journal Entry", note["name"])
    assert note["voucher_type"] == "Credit Note"
    [invoice] = submitted(env, "Sales Invoice")[invoice_key(sale.order_id, sale.shipment_id)]
    receivable = [r for r in note["accounts"] if r.get("party")]
    assert [(r["reference_type"], r["reference_name"], Decimal(str(r["credit"]))) for r in receivable] == [
        ("Sales Invoice", invoice["name"], Decimal("3.00"))]
    assert_books(env)  # the invoice is still paid in full: the receipt credits it what the settlement paid


def test_a_closed_period_stops_invoicing_in_order_and_nothing_goes_to_suspense(sim_env: SimEnvFactory) -> None:
    env = _env(sim_env, orders=60)
    assert env.run("-q", "sync-orders").code == 0
    first = closed(env)[0]
    headers = {"Authorization": env.erp.auth_header}
    period = httpx.post(f"{env.erp.url}/api/resource/Accounting Period", headers=headers, json={
        "period_name": "AMZ closed", "company": "Amz Test Co", "start_date": first.start.date().isoformat(),
        "end_date": first.end.date().isoformat(), "closed_documents": [{"document_type": "Sales Invoice", "closed": 1}]})
    assert period.status_code == 200, period.text
    result = env.run("sync-settlements")
    assert result.code == 1
    assert "closed Accounting Period AMZ closed - ATC" in result.err and "Traceback" not in result.err
    assert "invoice mode posts settlements in order" in result.err  # the later ones wait
    assert settlement_entries(env) == {} and submitted(env, "Sales Invoice") == {}
    assert account_balances(env.erp).get(SUSPENSE, Decimal(0)) == 0
    # the user reopens the period: the next run posts everything, in order
    reopened = httpx.delete(f"{env.erp.url}/api/resource/Accounting Period/AMZ closed - ATC", headers=headers)
    assert reopened.status_code in (200, 202), reopened.text
    again = env.run("sync-settlements")
    assert again.code == 0, again.err
    assert_books(env)


def _kill_after(env: SimEnv, method: str, doctype: str, pid: list[int], match: str = "") -> None:
    """SIGKILL the amz2erp process right after ERPNext committed its first POST of ``doctype`` (the answer
    never reaches it): the crash between the write and the ledger's outcome."""
    original = env.erp.handle
    hit = {"n": 0}

    def handle(m: str, raw_path: str, headers: dict[str, str], body: bytes) -> Any:
        answer = original(m, raw_path, headers, body)
        if (m == method and doctype in raw_path.replace("%20", " ") and match.encode() in body and not hit["n"]
                and pid):
            hit["n"] += 1
            os.kill(pid[0], signal.SIGKILL)
        return answer

    env.erp.handle = handle  # type: ignore[method-assign]


@pytest.mark.parametrize(("doctype", "match"), [("Sales Invoice", '"SI:'), ("Journal Entry", "amazon_settlement_id"),
                                               ("Journal Entry", '"RCPT:')],
                         ids=["between-invoice-and-ledger", "between-entry-and-receipts", "between-receipt-and-ledger"])
def test_a_kill_at_the_dangerous_points_leaves_exactly_one_of_each(sim_env: SimEnvFactory, doctype: str,
                                                                   match: str) -> None:
    env = _env(sim_env, orders=50, clock=SystemClock(), spapi_kwargs={"rate_limits": False})
    assert env.popen("-q", "sync-orders").wait(timeout=120) == 0
    pid: list[int] = []
    _kill_after(env, "POST", doctype, pid, match)
    proc = env.popen("sync-settlements")
    pid.append(proc.pid)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL  # it died at that point
    final = env.popen("sync-settlements")
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert_books(env)
    with StateStore(env.state_path) as state:  # nothing left pending: the settlement was finished, not skipped
        assert {e.info.get("receipts") for e in state.entries(Kind.SETTLEMENT)} == {"done"}
        receipts = {e.key: (e.status, e.erp_name) for e in state.entries(Kind.RECEIPT)}
    assert receipts == {k: (Status.DONE, v[0]["name"]) for k, v in submitted(env, "Journal Entry").items()
                        if k.startswith("RCPT:")}
    start = len(env.erp.request_log)
    assert env.popen("sync-settlements").wait(timeout=120) == 0
    assert writes_since(env, start) == []


def test_sigkill_at_random_points_leaves_exactly_one_of_each_document(sim_env: SimEnvFactory) -> None:
    rng = random.Random(1515)
    env = _env(sim_env, "delivery_note", orders=50, clock=SystemClock(), spapi_kwargs={"rate_limits": False},
               erp_kwargs={"latency": 0.01})
    set_allow_negative_stock(env.erp, True)
    assert env.popen("-q", "sync-orders").wait(timeout=120) == 0
    watch = RequestWatch(env)
    kills = 0
    for _ in range(8):
        before = watch.count
        proc = env.popen("sync-settlements")
        reached = watch.wait_for(before + rng.randint(5, 90), timeout=60, stop=lambda p=proc: p.poll() is not None)  # type: ignore[misc]
        if reached and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    final = env.popen("sync-settlements")
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert kills >= 3, kills
    assert_books(env)
    notes = submitted(env, "Delivery Note")
    assert all(len(v) == 1 for v in notes.values()) and len(notes) == len(expected(closed(env))[0])
    with StateStore(env.state_path) as state:  # the ledger agrees with ERPNext
        ledger = {e.key: (e.status, e.erp_name) for e in state.entries(Kind.INVOICE)}
    assert ledger == {k: (Status.DONE, v[0]["name"]) for k, v in submitted(env, "Sales Invoice").items()
                      if k.startswith("SI:")}
    start = len(env.erp.request_log)
    assert env.popen("sync-settlements").wait(timeout=120) == 0
    assert writes_since(env, start) == []
