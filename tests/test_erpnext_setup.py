"""`check` and `setup` against the ERPNext simulator; exactly-once inserts under injected faults."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from amz2erp.config import Settings
from amz2erp.erpnext.checks import ERPNEXT_CHECKS, CheckResult, erpnext_checks, run_checks
from amz2erp.erpnext.client import ErpNextClient
from amz2erp.erpnext.schema import (
    CUSTOM_FIELDS,
    REQUIRED_CUSTOM_FIELDS,
    account_group_problems,
    charge_accounts,
    custom_field_name,
    custom_fields_for,
    describe_account_group,
    full_account_name,
)
from amz2erp.erpnext.setup import apply_setup, plan_setup
from amz2erp.errors import AmazonAuthError, AmazonUnavailableError
from amz2erp_sim.erpnext import ErpNextSimulator, FaultConfig


@pytest.fixture(scope="module")
def sim() -> Iterator[ErpNextSimulator]:
    with ErpNextSimulator() as simulator:
        simulator.insert_doc(
            "Company",
            {
                "name": "Other Co",
                "company_name": "Other Co",
                "abbr": "OC",
                "default_currency": "EUR",
                "country": "Germany",
            },
        )
        simulator.insert_doc(
            "Warehouse",
            {"name": "Stores - OC", "warehouse_name": "Stores", "company": "Other Co", "is_group": 0},
        )
        yield simulator


@pytest.fixture()
def fresh_sim() -> Iterator[ErpNextSimulator]:
    with ErpNextSimulator() as simulator:
        yield simulator


def make_settings(
    url: str, *, secret: str = "sim-secret", amazon: dict[str, Any] | None = None, **defaults: Any
) -> Settings:
    base: dict[str, Any] = {
        "company": "Amz Test Co",
        "warehouse": "Stores - ATC",
        "item_group": "Amazon Products",
    }
    base.update(defaults)
    return Settings.model_validate(
        {
            "amazon": {
                "refresh_token": "Atzr|x",
                "lwa_app_id": "app",
                "lwa_client_secret": "lwa-secret",
                **(amazon or {}),
            },
            "erpnext": {"url": url, "api_key": "sim-key", "api_secret": secret, "max_retries": 1},
            "defaults": base,
            "items": {"unknown_sku": "placeholder"},
        }
    )


def client_for(settings: Settings) -> ErpNextClient:
    return ErpNextClient(settings.erpnext, backoff=0.01)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    names = [r.name for r in results]
    assert len(names) == len(set(names)), names
    return {r.name: r for r in results}


# --- setup ------------------------------------------------------------------------------------------------------


def test_setup_plans_applies_and_second_plan_is_empty(fresh_sim: ErpNextSimulator) -> None:
    settings = make_settings(fresh_sim.url)
    client = client_for(settings)
    plan = plan_setup(client, settings)
    kinds = [a.doctype for a in plan]
    # settlements are not configured: their Journal Entry field and invoice mode's 5 fields are not planned
    assert kinds.count("Custom Field") == len(custom_fields_for(settings)) == len(CUSTOM_FIELDS) - 1 - 5
    assert kinds.count("Account") == len(charge_accounts(settings)) == 8
    assert kinds.count("Item Group") == 1 and kinds.count("Item") == 1
    # the item group comes before the placeholder item that uses it
    assert kinds.index("Item Group") < kinds.index("Item")
    descriptions = [a.describe() for a in plan]
    assert "create custom field Sales Order.amazon_order_id (Data)" in descriptions
    assert (
        "create account 'Amazon Item Tax - ATC' (Tax) under 'Duties and Taxes - ATC': [accounts]"
        in descriptions
    )

    done = apply_setup(client, plan)
    assert len(done) == len(plan)
    assert plan_setup(client, settings) == []
    assert apply_setup(client, plan) == []  # re-applying an old plan creates nothing

    so_field = fresh_sim.get_doc("Custom Field", "Sales Order-amazon_order_id")
    assert so_field is not None
    assert so_field["unique"] == 0 and so_field["search_index"] == 1 and so_field["in_standard_filter"] == 1
    status_field = fresh_sim.get_doc("Custom Field", "Sales Order-amazon_order_status")
    assert status_field is not None and status_field["allow_on_submit"] == 1
    account = fresh_sim.get_doc("Account", "Amazon Shipping - ATC")
    assert account is not None
    assert (account["parent_account"], account["account_type"], account["company"], account["is_group"]) == (
        "Duties and Taxes - ATC",
        "Chargeable",
        "Amz Test Co",
        0,
    )
    item = fresh_sim.get_doc("Item", "AMAZON-UNMAPPED")
    assert item is not None and item["item_group"] == "Amazon Products" and item["is_stock_item"] == 0
    group = fresh_sim.get_doc("Item Group", "Amazon Products")
    assert group is not None and group["parent_item_group"] == "All Item Groups"


def test_existing_connector_field_is_left_alone_and_reported(fresh_sim: ErpNextSimulator) -> None:
    # as the Frappe connector (or a user) might have made it: unique
    fresh_sim.insert_doc(
        "Custom Field",
        {
            "name": "Sales Order-amazon_order_id",
            "dt": "Sales Order",
            "fieldname": "amazon_order_id",
            "label": "Amazon Order ID",
            "fieldtype": "Data",
            "unique": 1,
            "insert_after": "title",
        },
    )
    settings = make_settings(fresh_sim.url)
    client = client_for(settings)
    plan = plan_setup(client, settings)
    assert "Sales Order-amazon_order_id" not in [a.name for a in plan]
    apply_setup(client, plan)
    assert plan_setup(client, settings) == []
    field = fresh_sim.get_doc("Custom Field", "Sales Order-amazon_order_id")
    assert field is not None and field["unique"] == 1  # not fought
    check = by_name(run_checks(client, settings))["custom fields"]
    assert check.ok and "Sales Order.amazon_order_id: unique=1 (amz2erp would use 0)" in check.detail


# --- checks -----------------------------------------------------------------------------------------------------


def test_good_config_after_setup_passes_every_check(fresh_sim: ErpNextSimulator) -> None:
    settings = make_settings(fresh_sim.url, fba_warehouse="Finished Goods - ATC")
    client = client_for(settings)
    before = by_name(run_checks(client, settings))
    assert not before["custom fields"].ok and before["custom fields"].fix == "run `amz2erp setup`"
    assert not before["charge accounts"].ok and "Amazon Item Tax - ATC" in before["charge accounts"].detail
    assert not before["item group"].ok and not before["placeholder item"].ok
    apply_setup(client, plan_setup(client, settings))
    results = run_checks(client, settings)
    failed = [r for r in results if not r.ok]
    assert failed == []
    names = [r.name for r in results]
    for expected in (
        "erpnext reachable",
        "erpnext credentials",
        "company",
        "warehouse",
        "fba warehouse",
        "price list",
        "item group",
        "customer group",
        "territory",
        "account group",
        "charge accounts",
        "custom fields",
        "placeholder item",
    ):
        assert expected in names
    assert "abbreviation ATC, currency USD" in by_name(results)["company"].detail


def test_broken_config_reports_each_problem_precisely(sim: ErpNextSimulator) -> None:
    settings = make_settings(
        sim.url,
        warehouse="Stores - OC",  # another company's warehouse
        fba_warehouse="All Warehouses - ATC",  # a group
        price_list="Amazon Prices",  # missing
        customer_group="Nope Group",
        territory="Atlantis",
        account_group="Freight and Forwarding Charges",  # a ledger
    )
    checks = by_name(run_checks(client_for(settings), settings))
    wh = checks["warehouse"]
    assert not wh.ok
    assert wh.detail == "warehouse 'Stores - OC' belongs to company 'Other Co', not 'Amz Test Co'"
    assert wh.fix is not None and "Stores - ATC" in wh.fix and "[defaults] warehouse" in wh.fix
    assert "All Warehouses - ATC" not in wh.fix  # only leaf warehouses are suggested
    fba = checks["fba warehouse"]
    assert not fba.ok and "is a group warehouse" in fba.detail and "[defaults] fba_warehouse" in str(fba.fix)
    pl = checks["price list"]
    assert not pl.ok and pl.detail == "price list 'Amazon Prices' does not exist"
    assert "Standard Selling" in str(pl.fix) and "Standard Buying" not in str(pl.fix)
    assert not checks["customer group"].ok and "Individual" in str(checks["customer group"].fix)
    assert not checks["territory"].ok and "All Territories" in str(checks["territory"].fix)
    ag = checks["account group"]
    assert not ag.ok and "is a ledger, not a group" in ag.detail and "Duties and Taxes - ATC" in str(ag.fix)
    assert not checks["charge accounts"].ok
    assert str(checks["charge accounts"].fix).startswith("fix the account group")
    assert checks["company"].ok and checks["erpnext credentials"].ok


def test_buying_price_list_and_missing_company(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, price_list="Standard Buying", company="No Such Co")
    checks = by_name(run_checks(client_for(settings), settings))
    assert not checks["price list"].ok and "is not a selling price list" in checks["price list"].detail
    company = checks["company"]
    assert not company.ok and company.detail == "company 'No Such Co' does not exist in ERPNext"
    assert "Amz Test Co" in str(company.fix) and "Other Co" in str(company.fix)
    assert (
        not checks["warehouse"].ok
        and "belongs to company 'Amz Test Co', not 'No Such Co'" in checks["warehouse"].detail
    )
    assert not checks["account group"].ok and checks["account group"].detail.startswith("not checked")


def test_bad_token_is_a_failed_check_not_a_crash(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, secret="wrong-secret-value")
    results = run_checks(client_for(settings), settings)
    assert [r.name for r in results] == ["erpnext reachable", "erpnext credentials"]
    creds = results[1]
    assert results[0].ok and not creds.ok
    assert "refused the API token" in creds.detail and "api_secret" in str(creds.fix)
    assert "wrong-secret-value" not in creds.detail + str(creds.fix)


def test_unreachable_url(sim: ErpNextSimulator) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    settings = make_settings(f"http://127.0.0.1:{port}")
    results = run_checks(client_for(settings), settings)
    assert len(results) == 1 and not results[0].ok
    assert f"127.0.0.1:{port}" in results[0].detail and "[erpnext] url" in str(results[0].fix)


class FakeAmazon:
    def __init__(self, participations: list[dict[str, Any]] | None = None, error: Exception | None = None):
        self.participations = participations or []
        self.error = error

    def marketplace_participations(self) -> list[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        return self.participations


def test_amazon_marketplaces_checked(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url, amazon={"marketplaces": ["US", "CA", "MX", "DE"]})
    amazon = FakeAmazon(
        [
            {"marketplace_id": "ATVPDKIKX0DER", "country_code": "US", "participating": True},
            {"marketplace_id": "A2EUQ1WTGCTBG2", "country_code": "CA", "participating": False},
        ]
    )
    checks = by_name(run_checks(client_for(settings), settings, amazon=amazon))
    assert checks["amazon credentials"].ok
    assert checks["marketplace US"].ok
    ca = checks["marketplace CA"]
    assert (
        not ca.ok
        and "does not participate in CA (A2EUQ1WTGCTBG2)" in ca.detail
        and "participating: US" in ca.detail
    )
    assert ca.fix == "remove CA from [amazon] marketplaces"
    assert not checks["marketplace MX"].ok
    de = checks["marketplace DE"]
    assert not de.ok and "region eu" in de.detail and "region = na" in de.detail


def test_amazon_auth_error_is_a_failed_check(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url)
    for error, text in (
        (AmazonAuthError("invalid_grant", status=400), "refused the credentials"),
        (AmazonUnavailableError("timeout"), "could not be asked"),
    ):
        results = run_checks(client_for(settings), settings, amazon=FakeAmazon(error=error))
        amazon = by_name(results)["amazon credentials"]
        assert not amazon.ok and text in amazon.detail and amazon.fix
        assert not any(r.name.startswith("marketplace") for r in results)


# --- exactly-once inserts against the simulator with faults ------------------------------------------------------


def test_keyed_inserts_exactly_once_under_faults(fresh_sim: ErpNextSimulator) -> None:
    """Timeouts and resets after commit, 502 pages and DB errors: every keyed insert lands once."""
    settings = Settings.model_validate(
        {
            "amazon": {"refresh_token": "Atzr|x", "lwa_app_id": "app", "lwa_client_secret": "s"},
            "erpnext": {
                "url": fresh_sim.url,
                "api_key": "sim-key",
                "api_secret": "sim-secret",
                "timeout": 0.3,
                "max_retries": 8,
                "workers": 4,
            },
            "defaults": {"company": "Amz Test Co", "warehouse": "Stores - ATC"},
        }
    )
    client = ErpNextClient(settings.erpnext, backoff=0.02, backoff_ceiling=0.1)
    fresh_sim.set_faults(
        FaultConfig(rate=0.3, kinds=("timeout", "reset", "502html", "500"), seed=7, timeout_seconds=0.5)
    )
    names = [f"Buyer - 111-0000000-{i:07d}" for i in range(40)]

    def create(name: str) -> str:
        doc = client.insert(
            "Customer",
            {
                "customer_name": name,
                "customer_type": "Individual",
                "customer_group": "Individual",
                "territory": "All Territories",
            },
            key={"customer_name": name},
        )
        return str(doc["customer_name"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(create, names))
    fresh_sim.set_faults(None)
    assert created == names
    faults = [r.fault for r in fresh_sim.request_log if r.fault]
    assert {"timeout", "reset"} & set(faults)  # the test did exercise ambiguous failures
    for name in names:
        # a resent Customer would have been renamed "<name> - 1": exactly one per name
        assert fresh_sim.count("Customer", customer_name=name) == 1, name


def test_full_account_name() -> None:
    assert full_account_name("Amazon Shipping", "ATC") == "Amazon Shipping - ATC"
    assert full_account_name("Amazon Shipping - ATC", "ATC") == "Amazon Shipping - ATC"


def test_account_group_rule_is_one_function() -> None:
    # check and setup both judge the account group with this rule and describe it with one wording
    assert account_group_problems(None, "ATC Co") == ["does not exist"]
    assert account_group_problems({"is_group": 1, "company": "ATC Co"}, "ATC Co") == []
    problems = account_group_problems({"is_group": 0, "company": "Other Co"}, "ATC Co")
    assert problems == [
        "is a ledger, not a group (accounts cannot be created under it)",
        "belongs to company 'Other Co'",
    ]
    assert describe_account_group("Freight - ATC", problems) == (
        "account 'Freight - ATC' is a ledger, not a group (accounts cannot be created under it) "
        "and belongs to company 'Other Co'"
    )


def test_required_custom_fields_are_amz2erp_fields() -> None:
    # every field the order writer insists on is one that `setup` creates, under ERPNext's "<dt>-<field>" name
    defined = {custom_field_name(s["dt"], s["fieldname"]) for s in CUSTOM_FIELDS}
    assert REQUIRED_CUSTOM_FIELDS == ("Sales Order-amazon_order_id",)
    assert set(REQUIRED_CUSTOM_FIELDS) <= defined
    assert len(defined) == len(CUSTOM_FIELDS)


def test_check_registry_runs_every_check_once_in_order(sim: ErpNextSimulator) -> None:
    settings = make_settings(sim.url)
    results = erpnext_checks(client_for(settings), settings)
    names = [r.name for r in results]
    assert names[:2] == ["company", "warehouse"]
    assert names.index("account group") < names.index("charge accounts") < names.index("custom fields")
    assert len(names) == len(set(names))
    assert {check.__name__ for check in ERPNEXT_CHECKS} >= {
        "check_company", "check_warehouses", "check_price_list", "check_account_group",
        "check_custom_fields", "check_accounts",
    }


def test_foreign_marketplace_currency_needs_a_rate(fresh_sim: ErpNextSimulator) -> None:
    settings = make_settings(fresh_sim.url, amazon={"marketplaces": ["US", "CA", "MX"]})
    client = client_for(settings)
    checks = by_name(run_checks(client, settings))
    cad = checks["exchange rate CAD"]
    assert not cad.ok and "no Currency Exchange record CAD to USD" in cad.detail
    assert '[orders.exchange_rates] "CAD:USD"' in str(cad.fix)
    assert "exchange rate USD" not in checks
    fresh_sim.insert_doc(
        "Currency Exchange",
        {
            "name": "CAD-USD",
            "from_currency": "CAD",
            "to_currency": "USD",
            "exchange_rate": 0.73,
            "date": "2026-01-01",
        },
    )
    with_rates = Settings.model_validate(
        {**settings.model_dump(mode="python"), "orders": {"exchange_rates": {"MXN:USD": "0.055"}}}
    )
    checks = by_name(run_checks(client, with_rates))
    assert checks["exchange rate CAD"].ok and "Currency Exchange" in checks["exchange rate CAD"].detail
    assert checks["exchange rate MXN"].ok and "[orders.exchange_rates]" in checks["exchange rate MXN"].detail


def test_unique_order_id_with_amend_on_drift_fails_the_check(fresh_sim: ErpNextSimulator) -> None:
    fresh_sim.insert_doc(
        "Custom Field",
        {
            "name": "Sales Order-amazon_order_id",
            "dt": "Sales Order",
            "fieldname": "amazon_order_id",
            "fieldtype": "Data",
            "unique": 1,
        },
    )
    settings = make_settings(fresh_sim.url)
    client = client_for(settings)
    apply_setup(client, plan_setup(client, settings))
    amending = Settings.model_validate(
        {**settings.model_dump(mode="python"), "orders": {"amend_on_drift": True}}
    )
    check = by_name(run_checks(client, amending))["custom fields"]
    assert not check.ok and "amendment cannot carry the order id" in check.detail
    assert "amend_on_drift = false" in str(check.fix)
    assert by_name(run_checks(client, settings))["custom fields"].ok


def test_setup_does_not_plan_accounts_under_a_ledger(
    fresh_sim: ErpNextSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(fresh_sim.url, account_group="Freight and Forwarding Charges")
    plan = plan_setup(client_for(settings), settings)
    assert [a for a in plan if a.doctype == "Account"] == []
    assert any("not a group account" in r.getMessage() for r in caplog.records)
    assert [a.doctype for a in plan].count("Custom Field") == len(custom_fields_for(settings))
