"""`amz2erp audit` end to end on both simulators (issue 16): an ERPNext seeded with the damage users report is
audited, repaired where that is safe, and audited again."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv

SETTLEMENTS = '\n[settlements]\nbank_account = "Amazon Payouts"\n'
SO, JE = "Sales Order", "Journal Entry"
WRITES = ("POST", "PUT", "DELETE")


def _delete(env: SimEnv, doctype: str, name: str) -> None:
    """As if someone deleted the document in ERPNext (or an import never landed)."""
    with env.erp.lock, env.erp.store.transaction():
        env.erp.store.delete(doctype, name)


def _update(env: SimEnv, doctype: str, name: str, **changes: Any) -> None:
    with env.erp.lock, env.erp.store.transaction():
        doc = env.erp.store.get(doctype, name)
        assert doc is not None
        env.erp.store.update(dict(doc, **changes))


def _copy(env: SimEnv, doctype: str, name: str, new_name: str) -> None:
    """A second document with the same Amazon id, as another connector leaves it."""
    doc = env.erp.get_doc(doctype, name)
    assert doc is not None
    env.erp.insert_doc(doctype, dict(doc, name=new_name, creation=None, modified=None))


def _live_by_order(env: SimEnv) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for so in env.sales_orders():
        if so.get("docstatus") in (0, 1):
            out.setdefault(str(so.get("amazon_order_id")), []).append(so)
    return out


def _findings(result: Any) -> set[tuple[str, str]]:
    return {(f["kind"], f["key"]) for f in json.loads(result.out)["findings"]}


ENV = {"orders": 120, "days": 60, "marketplaces": ("US",), "extra_config": SETTLEMENTS, "seed": 16}


@pytest.fixture
def damaged(sim_env: SimEnvFactory) -> tuple[SimEnv, dict[str, Any]]:
    env = sim_env(**ENV)
    return env, make_damage(env)


def make_damage(env: SimEnv) -> dict[str, Any]:
    """Two months of orders and settlements synced, then the damage: an order missing, a duplicate from another
    connector, a wrong total, an order cancelled on Amazon but live in ERPNext, a Sales Order Amazon does not
    know, a settlement booked twice and one never booked."""
    env.setup_erp()
    assert env.run("-q", "sync-orders").code == 0
    assert env.run("-q", "sync-settlements").code == 0
    live = _live_by_order(env)
    submitted = sorted(oid for oid, rows in live.items() if rows[0]["docstatus"] == 1)
    unshipped = sorted(o.amazon_order_id for o in env.orders if o.status == "Unshipped" and o.amazon_order_id in live)
    cancelled = unshipped[0]
    missing, duplicate, wrong_total = [oid for oid in submitted[3::10] if oid != cancelled][:3]
    _delete(env, SO, live[missing][0]["name"])
    _copy(env, SO, live[duplicate][0]["name"], "SO-FRAPPE-CONNECTOR-1")
    old_total = Decimal(str(live[wrong_total][0]["grand_total"]))
    _update(env, SO, live[wrong_total][0]["name"], grand_total=float(old_total + Decimal("5.00")))
    env.spapi.cancel_order(cancelled)  # sync-orders has not run since: ERPNext still holds it live
    unknown = dict(live[submitted[40]][0], name="SO-MWS-OLD-7", amazon_order_id="999-0000000-0000001",
                   amazon_marketplace_id=None)
    env.erp.insert_doc(SO, unknown)
    entries = sorted((je for je in env.erp.docs(JE) if je.get("docstatus") == 1), key=lambda j: j["name"])
    assert len(entries) >= 3
    twice, never = entries[0], entries[1]
    _copy(env, JE, twice["name"], "JE-BOOKED-TWICE")
    _delete(env, JE, never["name"])
    damage = {"missing": missing, "duplicate": duplicate, "wrong_total": wrong_total, "cancelled": cancelled,
              "unknown": "999-0000000-0000001", "twice": twice["amazon_settlement_id"],
              "never": never["amazon_settlement_id"], "cancelled_so": live[cancelled][0]["name"]}
    return damage


def test_audit_finds_exactly_the_damage_and_fix_repairs_only_the_safe_part(
        damaged: tuple[SimEnv, dict[str, Any]]) -> None:
    env, d = damaged
    frm = "--from=" + env.clock.now().date().replace(month=9, day=1).isoformat()  # two months back
    first = env.run("--json", "audit", frm)
    assert first.code == 1, first.err
    assert _findings(first) == {
        ("missing", d["missing"]),
        ("duplicate", d["duplicate"]),
        ("total mismatch", d["wrong_total"]),
        ("cancelled on Amazon, live in ERPNext", d["cancelled"]),
        ("unknown", d["unknown"]),
        ("settlement posted twice", d["twice"]),
        ("settlement not posted", d["never"]),
    }
    report = json.loads(first.out)
    assert report["ok"] is False and report["settlements_checked"] is True
    by_kind = {f["kind"]: f for f in report["findings"]}
    assert sorted(by_kind["duplicate"]["documents"])[-1] == "SO-FRAPPE-CONNECTOR-1"
    assert by_kind["duplicate"]["known_to_ledger"] in by_kind["duplicate"]["documents"]
    assert by_kind["cancelled on Amazon, live in ERPNext"]["documents"] == [d["cancelled_so"]]
    assert by_kind["unknown"]["fixable"] is False and by_kind["duplicate"]["fixable"] is False
    # the months side by side: the wrong total is the only money difference among orders Amazon and ERPNext share
    months = report["months"]
    assert sum(m["amazon_orders"] for m in months) >= 100
    assert all(m["findings"] or Decimal(m["difference"]) == 0 for m in months)

    log_start = len(env.erp.request_log)
    dry = env.run("--json", "audit", frm, "--fix", "--dry-run")
    assert dry.code == 1, dry.err
    assert [r for r in env.erp.request_log[log_start:] if r.method in WRITES] == []
    plans = {(p["action"], p["doctype"], p.get("name") or (p.get("doc") or {}).get("amazon_order_id")
              or (p.get("doc") or {}).get("amazon_settlement_id")) for p in json.loads(dry.out)["plans"]}
    assert {("create", SO, d["missing"]), ("cancel", SO, d["cancelled_so"]), ("create", JE, d["never"])} <= plans

    fixed = env.run("--json", "audit", frm, "--fix")
    assert fixed.code == 1, fixed.err  # duplicates and unknowns remain: the books still do not tie
    out = json.loads(fixed.out)
    repaired = {(f["kind"], f["key"]) for f in out["fixed"] if f["ok"]}
    assert repaired == {("missing", d["missing"]), ("cancelled on Amazon, live in ERPNext", d["cancelled"]),
                        ("settlement not posted", d["never"])}
    live = _live_by_order(env)
    assert len(live[d["missing"]]) == 1
    assert d["cancelled"] not in live
    assert len(live[d["duplicate"]]) == 2  # never deleted automatically
    assert [je["name"] for je in env.erp.docs(JE) if je.get("amazon_settlement_id") == d["never"]
            and je.get("docstatus") == 1]

    again = env.run("--json", "audit", frm)
    assert again.code == 1
    assert _findings(again) == {("duplicate", d["duplicate"]), ("total mismatch", d["wrong_total"]),
                                ("unknown", d["unknown"]), ("settlement posted twice", d["twice"])}
    assert all(not f["fixable"] for f in json.loads(again.out)["remaining"])

    # --fix on what is left writes nothing
    log_start = len(env.erp.request_log)
    idle = env.run("--json", "audit", frm, "--fix")
    assert idle.code == 1
    assert [r for r in env.erp.request_log[log_start:] if r.method in WRITES] == []
    counts = Counter(f["kind"] for f in json.loads(idle.out)["findings"])
    assert counts["duplicate"] == 1 and counts["unknown"] == 1


def test_check_warns_about_duplicates_and_fix_never_cancels_an_invoiced_order(
        damaged: tuple[SimEnv, dict[str, Any]]) -> None:
    env, d = damaged
    log_start = len(env.erp.request_log)
    check = env.run("--json", "check")
    assert check.code == 0, check.out  # a warning: the configuration is fine
    [line] = [c for c in json.loads(check.out)["checks"] if c["name"] == "duplicate orders"]
    assert line["ok"] and d["duplicate"] in line["detail"] and "amz2erp audit" in line["detail"]
    reads = [r for r in env.erp.request_log[log_start:] if r.doctype == SO]
    assert len(reads) == 1  # one grouped query, not one per order

    # an invoice made from the order Amazon cancelled forbids the cancellation (Sales Invoice Item.sales_order)
    env.erp.insert_doc("Sales Invoice", {"name": "SINV-AUDIT-1", "docstatus": 1, "customer": "x",
                                         "items": [{"item_code": "x", "qty": 1, "sales_order": d["cancelled_so"]}]})
    frm = "--from=" + env.clock.now().date().replace(month=9, day=1).isoformat()
    fixed = env.run("--json", "audit", frm, "--fix")
    assert fixed.code == 1
    out = json.loads(fixed.out)
    [blocked] = [f for f in out["findings"] if f["kind"] == "cancelled on Amazon, live in ERPNext"]
    assert blocked["fixable"] is False and blocked["blocked_by"] == ["Sales Invoice SINV-AUDIT-1"]
    assert {(f["key"], f["ok"]) for f in out["fixed"]} >= {(d["cancelled"], False), (d["missing"], True)}
    assert env.erp.get_doc(SO, d["cancelled_so"])["docstatus"] == 1  # untouched


@pytest.mark.parametrize(("args", "message"), [
    (("--from=2026-10-10", "--to=2026-10-01"), "--to 2026-10-01 is before --from 2026-10-10"),
    (("--from=2027-01-01",), "--from 2027-01-01 is in the future"),
    (("--from=2026-13-01",), "is not a date like 2023-01-01"),
    (("--dry-run",), "--dry-run only applies to --fix"),
    (("--marketplace=XX",), "--marketplace XX: unknown marketplace"),
    (("--marketplace=DE",), "--marketplace DE: not in [amazon] marketplaces"),
])
def test_bad_input_is_one_line_and_exit_2(sim_env: SimEnvFactory, args: tuple[str, ...], message: str) -> None:
    env = sim_env(orders=0, marketplaces=("US",))
    result = env.run("audit", *args)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err
    assert result.err.count("Error") == 1


def test_an_audit_of_books_that_tie_exits_0(sim_env: SimEnvFactory) -> None:
    env = sim_env(orders=40, days=20, marketplaces=("US", "CA"), seed=5)
    env.setup_erp()
    assert env.run("-q", "sync-orders").code == 0
    result = env.run("--json", "audit", "--from=2026-10-01")
    assert result.code == 0, result.out
    out = json.loads(result.out)
    assert out["ok"] is True and out["findings"] == [] and out["settlements_checked"] is False
    assert {m["marketplace"] for m in out["months"]} == {"ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"}
    assert all(Decimal(m["difference"]) == 0 for m in out["months"])
    text = env.run("audit", "--from=2026-10-01", "--marketplace=CA")
    assert text.code == 0 and "Everything ties" in text.out and "\nUS " not in text.out


def test_invoice_mode_books_tie(sim_env: SimEnvFactory) -> None:
    """Sales Invoices made from the Sales Orders, settlements cleared against them: the audit finds nothing to
    say (the invoices are no Sales Orders, the settlement entries still bank the deposit)."""
    from tests.test_e2e_invoices import config

    env = sim_env(**dict(ENV, extra_config=config("invoice"), seed=15))
    env.setup_erp()
    assert env.run("-q", "sync-orders").code == 0
    assert env.run("-q", "sync-settlements").code == 0
    assert env.erp.docs("Sales Invoice")
    result = env.run("--json", "audit", "--from=2026-09-01")
    out = json.loads(result.out)
    assert result.code == 0 and out["findings"] == [] and out["settlements_checked"], result.out
