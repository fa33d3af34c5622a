"""Bad input (issue 8): property-based tests over configuration files and Amazon payloads. Missing fields,
wrong types, huge strings, odd unicode, zero and negative quantities, absurd dates, unknown currencies and
countries, duplicated order items: never a traceback, a clear one-line message, a documented exit code, and
no partial document left in ERPNext."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amz2erp.cli import run
from amz2erp.state import StateStore
from amz2erp_sim import datagen
from tests.conftest import SimEnvFactory
from tests.reliability import FIGURES, TIMINGS
from tests.simenv import Result, SimEnv

DOCUMENTED = {0, 1, 2, 3, 4, 75, 130}
HYPOTHESIS = settings(max_examples=70, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                             HealthCheck.data_too_large])

ODD = ["\u202e", "\x00", "\u0301", "𝔘𝔫𝔦", "\ufeff", "🦀", "\u2028", "\ud7ff", "Ω≈ç√", "'\"\\", "{{}}", "%s%n"]
huge = st.builds(lambda ch, n: ch * n, st.sampled_from(["A", "é", "𝔘", "\u202e", "\x00", " "]),
                 st.integers(2_000, 120_000))
odd_text = st.lists(st.sampled_from(ODD) | st.text(max_size=8), min_size=1, max_size=6).map("".join)
any_value = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**15), 10**15), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), odd_text, huge, st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
absurd_date = st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-13-45T99:99:99Z", "yesterday",
                               "1970-01-01T00:00:00Z", "2026-11-01T12:00:00+14:00", "", "2026-11-01", "1e9"])
currency = st.sampled_from(["XXX", "ZZZ", "usd", "", "€", "US", "USDX", None, 840])
country = st.sampled_from(["ZZ", "", "XK", "United States", "us", "Ü", None, 1, "USA"])
quantity = st.sampled_from([0, -1, -5, 10**9, 10**30, "3", 1.5, None, "", True])


def _one_line_error(result: Result) -> None:
    """The documented contract of every failure: no traceback, a documented exit code, ≤ 1 ``Error:`` line."""
    assert "Traceback" not in result.err, result.err[-3000:]
    assert result.code in DOCUMENTED, (result.code, result.err[-3000:])
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(errors) <= 1, errors
    if result.code in (3, 4, 75, 130):
        assert len(errors) == 1, result.err[-3000:]


# --- configuration files -----------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value) if value == value and abs(value) != float("inf") else "nan"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _toml(data: dict[str, Any]) -> str:
    lines: list[str] = []

    def table(prefix: str, body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict) or not v or k == "exchange_rates_inline"}
        subs = {k: v for k, v in body.items() if k not in scalars}
        lines.append(f"[{prefix}]")
        lines.extend(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}" for k, v in scalars.items())
        for k, v in subs.items():
            table(f"{prefix}.{json.dumps(k, ensure_ascii=False)}", v)

    for section, body in data.items():
        if isinstance(body, dict):
            table(json.dumps(section, ensure_ascii=False), body)
        else:
            lines.insert(0, f"{json.dumps(section, ensure_ascii=False)} = {_toml_value(body)}")
    return "\n".join(lines) + "\n"


CONFIG_KEYS = [
    ("amazon", "refresh_token"), ("amazon", "lwa_app_id"), ("amazon", "lwa_client_secret"),
    ("amazon", "marketplaces"), ("amazon", "endpoint"), ("amazon", "lwa_endpoint"), ("amazon", "orders_api"),
    ("amazon", "max_retries"), ("amazon", "timeout"), ("amazon", "region"), ("amazon", "pii"),
    ("erpnext", "url"), ("erpnext", "api_key"), ("erpnext", "api_secret"), ("erpnext", "workers"),
    ("erpnext", "timeout"), ("erpnext", "verify_tls"), ("defaults", "company"), ("defaults", "warehouse"),
    ("defaults", "fba_warehouse"), ("defaults", "account_group"), ("orders", "exchange_rates"),
    ("sync", "after"), ("sync", "mode"), ("state", "path"), ("items", "unknown_sku"), ("orders", "customer"),
    ("sync", "chunk_days"), ("sync", "overlap_minutes"), ("orders", "submit"), ("nonsense", "key"),
]
config_edit = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(CONFIG_KEYS), st.none()),
    st.tuples(st.just("set"), st.sampled_from(CONFIG_KEYS), any_value),
    st.tuples(st.just("set"), st.sampled_from([("amazon", "marketplaces")]),
              st.lists(st.sampled_from(["US", "CA", "ZZ", "", "atvpdkikx0der", "GB", "🦀"]), max_size=3)),
    st.tuples(st.just("set"), st.sampled_from([("sync", "after")]), absurd_date),
    st.tuples(st.just("drop-section"), st.sampled_from(["amazon", "erpnext", "defaults", "state", "sync"]),
              st.none()),
)


@pytest.fixture(scope="module")
def cfg_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimEnv]:
    with SimEnv(tmp_path_factory.mktemp("badcfg"), listings=5, orders=5, seed=51, days=5,
                marketplaces=("US",)) as env:
        env.setup_erp()
        yield env


@HYPOTHESIS
@given(edits=st.lists(config_edit, min_size=1, max_size=4), garbage=st.none() | st.sampled_from(
    ["[amazon", "= 3", "\x00", "key = \"unterminated", "[[x]]\n[[x]]", "\ufeff", "a.b.c = 1\na = 2"]),
       command=st.sampled_from(["check", "status", "setup --dry-run", "sync-orders --dry-run"]))
def test_fuzzed_config_files(cfg_env: SimEnv, edits: list[tuple[str, Any, Any]], garbage: str | None,
                             command: str) -> None:
    env = cfg_env
    env.write_config()
    data = tomllib.loads(env.config_path.read_text(encoding="utf-8"))
    for op, where, value in edits:
        if op == "drop-section":
            data.pop(where, None)
            continue
        section, key = where
        if op == "drop":
            data.get(section, {}).pop(key, None)
        else:
            data.setdefault(section, {})[key] = value
    text = _toml(data)
    if garbage is not None:
        text += "\n" + garbage + "\n"
    bad = env.tmp_path / "fuzzed.toml"
    bad.write_text(text, encoding="utf-8", errors="surrogatepass")
    bad.chmod(0o600)
    erp_before = env.erp.count("Sales Order"), env.erp.count("Customer"), env.erp.count("Item")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["--config", str(bad), *command.split()])
    result = Result(code, out.getvalue(), err.getvalue())
    FIGURES["inputs fuzzed: config files"] += 1
    _one_line_error(result)
    if result.code == 2 and "Error:" in result.err:
        error = next(line for line in result.err.splitlines() if line.startswith("Error:"))
        assert len(error) < 2000, error[:300]
    assert (env.erp.count("Sales Order"), env.erp.count("Customer"), env.erp.count("Item")) == erp_before


# --- Amazon payloads ---------------------------------------------------------------------------------------

ORDER_PATHS = [
    "orderId", "createdTime", "lastUpdatedTime", "salesChannel", "salesChannel.marketplaceId", "buyer",
    "buyer.buyerName", "buyer.buyerEmail", "recipient", "recipient.deliveryAddress.countryCode",
    "recipient.deliveryAddress.city", "recipient.deliveryAddress.addressLine1", "recipient.deliveryAddress.name",
    "recipient.deliveryAddress.postalCode", "recipient.deliveryAddress.stateOrRegion", "proceeds",
    "proceeds.grandTotal", "proceeds.grandTotal.amount", "proceeds.grandTotal.currencyCode",
    "proceeds.breakdowns", "fulfillment", "fulfillment.fulfillmentStatus", "fulfillment.fulfilledBy",
    "orderItems", "orderItems.0", "orderItems.0.orderItemId", "orderItems.0.quantityOrdered",
    "orderItems.0.product", "orderItems.0.product.sellerSku", "orderItems.0.product.asin",
    "orderItems.0.product.title", "orderItems.0.product.price.unitPrice.amount",
    "orderItems.0.product.price.unitPrice.currencyCode", "orderItems.0.proceeds.proceedsTotal.amount",
    "orderItems.0.proceeds.breakdowns", "orderItems.0.proceeds.breakdowns.0.subtotal.amount",
    "orderItems.0.proceeds.breakdowns.0.type", "orderItems.0.fulfillment.quantityFulfilled", "programs",
]
payload_edit = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(ORDER_PATHS), st.none()),
    st.tuples(st.just("set"), st.sampled_from(ORDER_PATHS), any_value),
    st.tuples(st.just("set"), st.sampled_from(["orderItems.0.quantityOrdered", "orderItems.1.quantityOrdered"]),
              quantity),
    st.tuples(st.just("set"), st.sampled_from(["createdTime", "lastUpdatedTime",
                                               "fulfillment.shipByWindow.latestDateTime"]), absurd_date),
    st.tuples(st.just("set"), st.sampled_from(["proceeds.grandTotal.currencyCode",
                                               "orderItems.0.proceeds.proceedsTotal.currencyCode"]), currency),
    st.tuples(st.just("set"), st.just("recipient.deliveryAddress.countryCode"), country),
    st.tuples(st.just("set"), st.sampled_from(["orderItems.0.product.title", "buyer.buyerName",
                                               "recipient.deliveryAddress.addressLine1",
                                               "recipient.deliveryAddress.city", "orderItems.0.product.sellerSku"]),
              huge | odd_text),
    st.tuples(st.just("duplicate-items"), st.none(), st.none()),
)


def _apply(doc: dict[str, Any], op: str, path: str | None, value: Any) -> None:
    if op == "duplicate-items":
        if isinstance(doc.get("orderItems"), list):
            doc["orderItems"] = doc["orderItems"] + copy.deepcopy(doc["orderItems"])
        return
    assert path is not None
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return
    last = parts[-1]
    if isinstance(node, dict):
        if op == "drop":
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        if op == "drop":
            del node[int(last)]
        else:
            node[int(last)] = value


class _Mutator:
    """Applies ``edits`` to how the SP-API simulator renders the ``target`` order (or every ``targets`` one)."""

    def __init__(self, env: SimEnv) -> None:
        self.target: str | None = None
        self.targets: set[str] = set()
        self.edits: list[tuple[str, Any, Any]] = []

        def mutate(o: Any, doc: dict[str, Any]) -> None:
            if o.amazon_order_id == self.target or o.amazon_order_id in self.targets:
                for op, path, value in self.edits:
                    _apply(doc, op, path, value)

        env.spapi.order_2026_hook = mutate


@pytest.fixture(scope="module")
def payload_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimEnv, _Mutator]]:
    with SimEnv(tmp_path_factory.mktemp("badpayload"), listings=12, orders=10, seed=52, days=5,
                spapi_kwargs={"strict": False}) as env:
        env.setup_erp()
        assert env.run("sync-products").code == 0
        env.clock.advance(300)
        assert env.run("sync-orders").code == 0
        yield env, _Mutator(env)


def _assert_no_partial_documents(env: SimEnv) -> None:
    for so in env.erp.docs("Sales Order"):
        doc = env.erp.get_doc("Sales Order", so["name"])
        assert doc is not None
        assert doc.get("amazon_order_id"), so["name"]
        assert doc["docstatus"] in (0, 1, 2)
        assert doc.get("items"), so["name"]
        assert all(float(row.get("qty") or 0) > 0 for row in doc["items"]), (so["name"], doc["items"])


_seq = iter(range(1000, 10**6))


def _fresh_order(env: SimEnv, when: datetime) -> datagen.SimOrder:
    """A sellable order (Unshipped/Shipped, with items) whose id the simulator does not hold yet."""
    taken = {o.amazon_order_id for o in env.spapi.orders}
    for seed in _seq:
        for order in datagen.generate_orders(seed, 6, env.listings, when - timedelta(minutes=30), when):
            if order.status in ("Unshipped", "Shipped") and order.items and order.amazon_order_id not in taken:
                order.last_update_date = when
                return order
    raise AssertionError("no fresh order id left")


def _ledger(env: SimEnv) -> dict[str, Any]:
    with StateStore(env.state_path) as state:
        return {e.key: e for e in state.entries("order")}


@HYPOTHESIS
@given(edits=st.lists(payload_edit, min_size=1, max_size=4))
def test_fuzzed_amazon_order_payloads(payload_env: tuple[SimEnv, _Mutator],
                                      edits: list[tuple[str, Any, Any]]) -> None:
    """Every mutated order ends in exactly one documented way: booked once, skipped with a reason, or failed
    (isolated, explained, listed, nothing written), or, when its id itself was mangled, unknown and unbooked."""
    env, mutator = payload_env
    env.clock.advance(120)
    order = _fresh_order(env, env.clock.now() - timedelta(minutes=3))
    env.spapi.add_orders([order])
    mutator.target, mutator.edits = order.amazon_order_id, edits
    env.clock.advance(180)
    before = _ledger(env)
    result = env.run("--json", "sync-orders")
    FIGURES["inputs fuzzed: Amazon order payloads"] += 1
    _one_line_error(result)
    assert result.code in (0, 1), (result.code, result.err[-3000:])
    summary = json.loads(result.out)["summary"]
    after = _ledger(env)
    entry = after.get(order.amazon_order_id)
    sos = [so for so in env.erp.docs("Sales Order") if so.get("amazon_order_id") == order.amazon_order_id]
    live = [so for so in sos if so["docstatus"] != 2]
    if entry is None:
        # Amazon's answer lost or replaced the id: nothing is booked under the real one, and the run either
        # failed it (the cursor stays, the window is read again) or recorded it under the id it was given
        assert any(path == "orderId" for _op, path, _v in edits), (edits, summary)
        assert sos == [], sos
        new_keys = set(after) - set(before)
        assert (result.code == 1 and summary.get("orders failed", 0) >= 1) or len(new_keys) == 1, (
            result.code, summary, new_keys)
        FIGURES["fuzzed orders whose id was lost"] += 1
    elif entry.status == "failed":
        assert entry.last_error, entry
        listed = json.loads(env.run("--json", "status", "--limit", "1000").out)["failed"]
        assert order.amazon_order_id in {f["key"] for f in listed}
        assert result.code == 1 and summary.get("orders failed", 0) >= 1, (result.code, summary)
        assert sos == [], sos
        FIGURES["bad payloads rejected cleanly"] += 1
    elif entry.status == "done":
        assert [so["name"] for so in live] == [entry.erp_name], (entry, sos)
        FIGURES["fuzzed orders booked once"] += 1
    elif entry.status == "skipped":
        assert entry.last_error and live == [], (entry, sos)
        FIGURES["fuzzed orders skipped with a reason"] += 1
    else:
        raise AssertionError(f"order {order.amazon_order_id} left in ledger status {entry.status!r}")
    _assert_no_partial_documents(env)


def test_bad_payloads_are_retried_once_amazon_is_fixed(tmp_path: Path) -> None:
    """Orders Amazon sends broken fail alone; once Amazon sends them whole, the next run books each once."""
    started = time.monotonic()
    with SimEnv(tmp_path, listings=8, orders=12, seed=54, days=5, spapi_kwargs={"strict": False}) as env:
        env.setup_erp()
        assert env.run("sync-products").code == 0
        sellable = [o.amazon_order_id for o in env.spapi.orders if o.status in ("Unshipped", "Shipped")]
        assert len(sellable) >= 3
        mutator = _Mutator(env)
        mutator.targets, mutator.edits = set(sellable[:3]), [("set", "fulfillment", 5.4e16)]
        result = env.run("--json", "sync-orders")
        assert result.code == 1, result.err[-3000:]
        assert {e.key for e in _ledger(env).values() if e.status == "failed"} == set(sellable[:3])
        assert not set(sellable[:3]) & set(env.sales_orders_by_amazon_id())

        mutator.targets = set()  # Amazon answers the orders whole again
        env.clock.advance(300)
        result = env.run("--json", "sync-orders")
        assert result.code == 0, result.err[-3000:]
        assert [e.key for e in _ledger(env).values() if e.status == "failed"] == []
        _assert_no_partial_documents(env)
        booked = env.sales_orders_by_amazon_id()
        assert all(len(booked.get(order_id, [])) == 1 for order_id in sellable), booked
    TIMINGS["test_bad_input (retry)"] = time.monotonic() - started


@pytest.mark.parametrize("path,value", [("fulfillment", 5.4e16), ("orderItems.0", None),
                                        ("orderItems.0.product", True), ("buyer", "x")])
def test_non_object_field_in_order_payload_is_isolated(sim_env: SimEnvFactory, path: str, value: Any) -> None:
    env = sim_env(listings=8, orders=12, seed=53, days=5, spapi_kwargs={"strict": False})
    env.setup_erp()
    assert env.run("sync-products").code == 0
    victim = next(o for o in env.spapi.orders if o.status in ("Unshipped", "Shipped"))
    mutator = _Mutator(env)
    mutator.target, mutator.edits = victim.amazon_order_id, [("set", path, value)]
    result = env.run("--json", "sync-orders")
    assert result.code == 1, result.err
    with StateStore(env.state_path) as state:
        entry = state.get("order", victim.amazon_order_id)
    assert entry is not None and entry.status == "failed"
    others = [o for o in env.spapi.orders
              if o.amazon_order_id != victim.amazon_order_id and o.status in ("Unshipped", "Shipped")]
    assert all(env.sales_orders_by_amazon_id().get(o.amazon_order_id) for o in others)


def test_order_without_id_does_not_stay_failed_forever(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=8, orders=12, seed=53, days=5, spapi_kwargs={"strict": False})
    env.setup_erp()
    assert env.run("sync-products").code == 0
    victim = next(o for o in env.spapi.orders if o.status in ("Unshipped", "Shipped"))
    mutator = _Mutator(env)
    mutator.target, mutator.edits = victim.amazon_order_id, [("drop", "orderId", None)]
    assert env.run("sync-orders").code == 1
    mutator.target = None  # Amazon answers the order whole again
    env.clock.advance(300)
    assert env.run("sync-orders").code == 0
    assert len(env.sales_orders_by_amazon_id()[victim.amazon_order_id]) == 1
    with StateStore(env.state_path) as state:
        assert state.entries("order", "failed") == []
