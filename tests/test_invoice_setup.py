"""`setup` and `check` for invoice mode ([settlements] mode = "invoice") against the ERPNext simulator: the
posting-key and order-id custom fields, the company accounts the invoices and receipts use, fiscal years,
and what [orders] deliver needs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from amz2erp.config import Settings
from amz2erp.erpnext.checks import CheckResult, _fiscal_gaps, erpnext_checks
from amz2erp.erpnext.client import ErpNextClient
from amz2erp.erpnext.schema import (
    CUSTOM_FIELDS,
    DELIVERY_CUSTOM_FIELDS,
    INVOICE_CUSTOM_FIELDS,
    SETTLEMENT_CUSTOM_FIELDS,
    custom_field_name,
    custom_fields_for,
)
from amz2erp.erpnext.setup import apply_setup, plan_setup
from amz2erp_sim.erpnext import ErpNextSimulator

TODAY = date(2026, 11, 20)


@pytest.fixture()
def sim() -> Iterator[ErpNextSimulator]:
    with ErpNextSimulator() as simulator:
        yield simulator


def make_settings(url: str, *, settlements: dict[str, Any] | None = None, orders: dict[str, Any] | None = None,
                  marketplaces: list[str] | None = None, sync: dict[str, Any] | None = None) -> Settings:
    return Settings.model_validate({
        "amazon": {"refresh_token": "Atzr|x", "lwa_app_id": "app", "lwa_client_secret": "lwa-secret",
                   "marketplaces": marketplaces or ["US"]},
        "erpnext": {"url": url, "api_key": "sim-key", "api_secret": "sim-secret", "max_retries": 0},
        "defaults": {"company": "Amz Test Co", "warehouse": "Stores - ATC", "item_group": "Amazon Products"},
        "settlements": {"bank_account": "Cash", **(settlements or {"mode": "invoice"})},
        "orders": orders or {},
        "sync": sync or {},
    })


def client_for(settings: Settings) -> ErpNextClient:
    return ErpNextClient(settings.erpnext, backoff=0.01)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def names(settings: Settings) -> set[str]:
    return {custom_field_name(f["dt"], f["fieldname"]) for f in custom_fields_for(settings)}


# --- custom fields ----------------------------------------------------------------------------------------------


def test_invoice_fields_only_in_invoice_mode_and_delivery_note_ones_only_with_delivery_notes() -> None:
    url = "http://127.0.0.1:9"
    summary = names(make_settings(url, settlements={"mode": "summary"}))
    invoice = names(make_settings(url))
    delivery = names(make_settings(url, orders={"deliver": "delivery_note"}))
    on_invoice = names(make_settings(url, orders={"deliver": "invoice"}))
    assert not summary & (set(INVOICE_CUSTOM_FIELDS) | set(DELIVERY_CUSTOM_FIELDS))
    assert invoice - summary == set(INVOICE_CUSTOM_FIELDS) == {
        "Sales Invoice-amazon_order_id", "Sales Invoice-amazon_posting_key", "Journal Entry-amazon_posting_key"}
    assert delivery - invoice == set(DELIVERY_CUSTOM_FIELDS)
    assert on_invoice == invoice  # the invoice moves the stock itself: no Delivery Note
    assert set(SETTLEMENT_CUSTOM_FIELDS) <= summary
    assert len(delivery) == len(CUSTOM_FIELDS)


def test_posting_key_is_indexed_not_unique_and_not_copied() -> None:
    """A cancelled document keeps a unique value, so its amendment (which copies the field) would be refused:
    the key is indexed and looked up, never a unique index."""
    keys = [f for f in CUSTOM_FIELDS if f["fieldname"] == "amazon_posting_key"]
    assert sorted(f["dt"] for f in keys) == ["Delivery Note", "Journal Entry", "Sales Invoice"]
    assert all(f["unique"] == 0 and f["search_index"] == 1 and f["no_copy"] == 1 and f["read_only"] == 1 for f in keys)


def test_setup_creates_the_invoice_fields_once(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, orders={"deliver": "delivery_note"})
    client = client_for(settings)
    plan = plan_setup(client, settings)
    planned = {a.name for a in plan if a.doctype == "Custom Field"}
    assert set(INVOICE_CUSTOM_FIELDS) | set(DELIVERY_CUSTOM_FIELDS) <= planned
    apply_setup(client, plan)
    assert plan_setup(client, settings) == []
    for name in (*INVOICE_CUSTOM_FIELDS, *DELIVERY_CUSTOM_FIELDS):
        doc = sim.get_doc("Custom Field", name)
        assert doc is not None and doc["fieldtype"] == "Data" and int(doc["unique"] or 0) == 0, name
    # the fields are there to be searched: a lookup by key answers (empty) instead of refusing the filter
    assert client.find("Sales Invoice", [["amazon_posting_key", "=", "SI:1"], ["docstatus", "!=", 2]]) is None


# --- check ------------------------------------------------------------------------------------------------------


def _edit(sim: ErpNextSimulator, doctype: str, name: str, **changes: Any) -> None:
    """Change a document in the simulator's database, as a user editing the site would leave it."""
    with sim.lock, sim.store.transaction():
        doc = sim.store.get(doctype, name)
        assert doc is not None
        sim.store.update({**doc, **changes})


def _set_up(sim: ErpNextSimulator, settings: Settings) -> ErpNextClient:
    client = client_for(settings)
    apply_setup(client, plan_setup(client, settings))
    return client


def test_check_after_setup_passes_the_invoice_mode_checks(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url)
    results = by_name(erpnext_checks(_set_up(sim, settings), settings, today=TODAY))
    for name, detail in (
        ("invoice income account", "'Sales - ATC'"),
        ("invoice receivable account", "'Debtors - ATC'"),
        ("invoice clearing account", "'Amazon Settlement Clearing - ATC'"),
        ("fiscal years", "1 cover 2026-08-22–2026-11-20"),
    ):
        assert results[name].ok and results[name].detail == detail, results[name]
    assert "exchange gain/loss account" not in results  # every marketplace sells in USD
    assert "stock settings" not in results  # [orders] deliver = "none"
    assert [r for r in results.values() if not r.ok] == []


def test_summary_mode_has_no_invoice_checks(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, settlements={"mode": "summary"})
    results = by_name(erpnext_checks(_set_up(sim, settings), settings, today=TODAY))
    assert not {"invoice income account", "fiscal years", "invoice clearing account"} & set(results)


def test_unusable_company_accounts_are_named_with_the_fix(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, marketplaces=["US", "CA"])
    client = _set_up(sim, settings)
    _edit(sim, "Company", "Amz Test Co", default_receivable_account="Creditors - ATC", default_income_account="",
          exchange_gain_loss_account="Nope - ATC")
    results = by_name(erpnext_checks(client, settings, today=TODAY))
    receivable = results["invoice receivable account"]
    assert not receivable.ok
    assert receivable.detail == "default receivable account 'Creditors - ATC' is of type 'Payable', not 'Receivable'"
    assert "Company 'Amz Test Co'" in str(receivable.fix)
    income = results["invoice income account"]
    assert not income.ok and income.detail.startswith("Company 'Amz Test Co' has no default income account")
    fx = results["exchange gain/loss account"]  # CA sells in CAD
    assert not fx.ok and fx.detail == "exchange gain loss account 'Nope - ATC' does not exist"


def test_a_clearing_account_that_needs_a_party_is_refused(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, settlements={"mode": "invoice", "clearing_account": "Debtors"})
    results = by_name(erpnext_checks(_set_up(sim, settings), settings, today=TODAY))
    clearing = results["invoice clearing account"]
    assert not clearing.ok and "is of type 'Receivable' (it would need a party on every row)" in clearing.detail


def test_fiscal_year_gaps_are_reported(sim: ErpNextSimulator) -> None:
    # the simulator's site has fiscal years 2020-2030
    settings = make_settings(sim.url, sync={"after": "2019-06-01"})
    client = _set_up(sim, settings)
    fy = by_name(erpnext_checks(client, settings, today=TODAY))["fiscal years"]
    assert not fy.ok and fy.detail.startswith("no active Fiscal Year of 'Amz Test Co' covers 2019-06-01–2019-12-31")
    sim.insert_doc("Fiscal Year", {"name": "2031", "year": "2031", "year_start_date": "2031-01-01",
                                   "year_end_date": "2031-12-31", "disabled": 1})
    late = by_name(erpnext_checks(client, make_settings(sim.url), today=date(2031, 2, 1)))["fiscal years"]
    assert not late.ok and "covers 2031-01-01–2031-02-01" in late.detail  # a disabled year covers nothing


def test_fiscal_gaps_pure() -> None:
    def fy(a: str, b: str) -> dict[str, str]:
        return {"year_start_date": a, "year_end_date": b}

    years = [fy("2025-04-01", "2026-03-31"), fy("2026-06-01", "2027-05-31")]
    assert _fiscal_gaps(years, date(2025, 1, 1), date(2027, 12, 31)) == [
        (date(2025, 1, 1), date(2025, 3, 31)), (date(2026, 4, 1), date(2026, 5, 31)),
        (date(2027, 6, 1), date(2027, 12, 31))]
    assert _fiscal_gaps(years, date(2025, 5, 1), date(2026, 3, 31)) == []
    assert _fiscal_gaps([], date(2025, 5, 1), date(2025, 5, 1)) == [(date(2025, 5, 1), date(2025, 5, 1))]


def test_deliver_reports_stock_settings_and_stock_items(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, orders={"deliver": "delivery_note"})
    client = _set_up(sim, settings)
    for code, stock in (("SKU-A", 1), ("SKU-B", 1), ("SVC-C", 0)):
        sim.insert_doc("Item", {"item_code": code, "item_name": code, "item_group": "Amazon Products",
                                "stock_uom": "Nos", "is_stock_item": stock})
    results = by_name(erpnext_checks(client, settings, today=TODAY))
    stock = results["stock settings"]
    assert stock.ok and stock.detail == ("[orders] deliver = 'delivery_note' from 'Stores - ATC'; negative stock not "
                                         "allowed: a shipment beyond ERPNext's stock is reported per order and its "
                                         "invoice still posts")
    _edit(sim, "Stock Settings", "Stock Settings", allow_negative_stock=1)
    allowed = by_name(erpnext_checks(client, settings, today=TODAY))["stock settings"]
    assert allowed.ok and allowed.detail.endswith("negative stock allowed: every shipment leaves stock, even beyond "
                                                  "what ERPNext holds")
    items = results["stock items"]
    assert items.ok and items.detail == "item group 'Amazon Products': 2 stock items, 1 without stock (skipped quietly)"


def test_missing_clearing_account_fix_depends_on_the_bank_account(sim: ErpNextSimulator) -> None:
    """setup creates the settlement accounts (the clearing account among them) once bank_account is set."""
    settings = make_settings(sim.url, settlements={"mode": "invoice", "bank_account": ""})
    clearing = by_name(erpnext_checks(_set_up(sim, settings), settings, today=TODAY))["invoice clearing account"]
    assert not clearing.ok and clearing.detail == "'Amazon Settlement Clearing - ATC' does not exist"
    assert clearing.fix == "set [settlements] bank_account, then run `amz2erp setup`"
    with_bank = make_settings(sim.url)
    missing = by_name(erpnext_checks(client_for(with_bank), with_bank, today=TODAY))["invoice clearing account"]
    assert missing.fix == "run `amz2erp setup`"
