"""The cheap write path (issue 17): the status ERPNext would compute travels in the insert, orders and
customers are looked up a page at a time, new Sales Orders are written in ``insert_many`` batches that are
split when ERPNext refuses one order and resolved by lookup when the answer is lost, and a duplicate-key
refusal on another key than the order's is retried after a lookup proves nothing was written. Every case ends
with each Amazon order exactly once in ERPNext."""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from amz2erp import mapping
from amz2erp.amazon.client import AmazonClient
from amz2erp.clock import SystemClock
from amz2erp.config import load_settings
from amz2erp.engine.orders import INSERT_BATCH, LOOKUP_PAGE, OrderWriter, process_orders
from amz2erp.engine.runtime import open_runtime
from amz2erp.erpnext.client import error_from_response
from amz2erp.errors import ErpNextDuplicateError
from amz2erp.models import Order
from amz2erp.state import StateStore
from amz2erp.ui import Reporter
from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.erpnext.errors import FrappeError
from amz2erp_sim.erpnext.server import FaultConfig
from tests.conftest import ERPNEXT_RECORDINGS, SimEnvFactory
from tests.reliability import duplicates, ledger_disagreements, lost_orders
from tests.simenv import SimEnv
from tests.test_e2e_orders import assert_landed_exactly_once

INSERT_MANY = "/api/method/frappe.client.insert_many"
SO_RESOURCE = "/api/resource/Sales Order"


def _recording(name: str) -> dict[str, Any]:
    return dict(json.loads((ERPNEXT_RECORDINGS / name).read_text(encoding="utf-8")))


# --- the status in the payload (pure) -----------------------------------------------------------------------


def test_submitted_status_is_what_erpnext_computes() -> None:
    # 096: a stock order, stored as sent; 102 lists what ERPNext itself computed (update_status, 100/101) for
    # the non-stock orders of 098 (skip_delivery_note 0) and 099 (skip_delivery_note 1)
    stock = _recording("096-fin-so-stock-status-in-payload.json")
    assert mapping.submitted_order_status(stock["request"]["json_body"]) == stock["response"]["json"]["data"]["status"]
    computed = {r["name"]: r["status"] for r in _recording("102-fin-so-nonstock-list-status.json")["response"]["json"]["data"]}
    for name in ("098-fin-so-nonstock-status-in-payload.json", "099-fin-so-nonstock-skip-dn-status-in-payload.json"):
        rec = _recording(name)
        so_name = rec["response"]["json"]["data"]["name"]
        assert mapping.submitted_order_status(rec["request"]["json_body"]) == computed[so_name], name
    assert {mapping.submitted_order_status(rec) for rec in ({"skip_delivery_note": "1"}, {"skip_delivery_note": 0},
                                                            {})} == {"To Bill", "To Deliver and Bill"}


def test_unique_message_is_a_duplicate_whatever_the_exception_type() -> None:
    # the recorded duplicate-key shape (057) with the Bin's key, and the same message reaching the client after
    # ERPNext's Bin creation failed on (DoesNotExistError): both are duplicates, to be looked up
    body = _unique_conflict_body()
    assert isinstance(error_from_response(417, body, what="insert Sales Order"), ErpNextDuplicateError)
    other = dict(body, exc_type="DoesNotExistError")
    err = error_from_response(404, other, what="insert Sales Order")
    assert isinstance(err, ErpNextDuplicateError) and "Item Code must be unique" in str(err)


def _unique_conflict_body() -> dict[str, Any]:
    """Recording 057's answer (a duplicate key on insert) as it reads when the key is ERPNext's Bin
    (``unique_item_warehouse``, item_code first: "Item Code must be unique")."""
    body = dict(_recording("057-so-g2-dup-amazon-order-id.json")["response"]["json"])
    text = json.dumps(body)
    text = text.replace("Amazon Order ID must be unique", "Item Code must be unique")
    text = text.replace("for key 'amazon_order_id'", "for key 'unique_item_warehouse'")
    return dict(json.loads(text))


# --- the end-to-end path ------------------------------------------------------------------------------------


def _requests(env: SimEnv, since: int = 0) -> Counter[str]:
    """Requests by "METHOD target" since the ``since``-th."""
    kinds: Counter[str] = Counter()
    for r in env.erp.request_log[since:]:
        target = r.path.removeprefix("/api/method/").removeprefix("/api/resource/")
        if r.path.startswith("/api/resource/"):
            target = target.split("/")[0]
        kinds[f"{r.method} {target}"] += 1
        if target == "frappe.client.insert_many":
            kinds[f"{r.method} {target} {r.doctype}"] += 1
    return kinds


def test_sync_writes_in_batches_with_page_lookups_and_no_status_repair(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=150, seed=17, days=20, marketplaces=("US",))
    env.setup_erp()
    assert env.run("sync-products").code == 0
    before = len(env.erp.request_log)
    result = env.run("sync-orders")
    assert result.code == 0, result.err
    assert_landed_exactly_once(env)  # also: every Sales Order "To Deliver and Bill"
    kinds = _requests(env, before)
    created = len(env.sales_orders())
    assert created > 100
    assert kinds["POST erpnext.selling.doctype.sales_order.sales_order.update_status"] == 0
    assert kinds["POST Sales Order"] == 0  # every new Sales Order went through insert_many
    # full batches, or half ones while the server would otherwise wait (group commit)
    so_batches = kinds["POST frappe.client.insert_many Sales Order"]
    assert -(-created // INSERT_BATCH) <= so_batches <= created // (INSERT_BATCH // 2) + 2
    # new buyers' Customers, then their Addresses, with one insert_many each per batch of Sales Orders
    assert kinds["POST Customer"] == 0 and kinds["POST Address"] == 0
    assert len(env.erp.docs("Customer")) > 50
    assert 1 <= kinds["POST frappe.client.insert_many Customer"] <= so_batches
    assert kinds["POST frappe.client.insert_many Address"] <= so_batches
    # one list query per page of orders, one per page for customers by key, one per batch to read totals
    pages = -(-len(env.spapi.orders) // LOOKUP_PAGE)
    assert kinds["GET Sales Order"] <= 2 * pages + so_batches
    assert kinds["GET Customer"] <= 2 * pages
    # a customer created in this run has no Address yet: none is looked up
    assert kinds["GET Address"] == 0
    again = len(env.erp.request_log)
    assert env.run("sync-orders").code == 0
    assert not [k for k in _requests(env, again) if k.startswith(("POST", "PUT", "DELETE"))]


def _intercept(sim: ErpNextSimulator,
               hook: Callable[[str, str, Any, Callable[[], tuple[Any, ...]]], tuple[Any, ...] | None]) -> None:
    """Route every request through ``hook(method, path, body, send)``: it answers instead (a tuple as the
    simulator's ``handle`` returns it) or returns None to let the simulator answer."""
    real = sim.handle

    def handle(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[Any, ...]:
        path = unquote(urlsplit(raw_path).path)
        data = json.loads(body) if body else None
        answered = hook(method, path, data, lambda: real(method, raw_path, headers, body))
        return answered if answered is not None else real(method, raw_path, headers, body)

    sim.handle = handle  # type: ignore[method-assign]


def _refuse_order(sim: ErpNextSimulator, order_id: str, error: FrappeError,
                  until: Callable[[], bool] = lambda: False) -> None:
    """ERPNext refuses to insert the Sales Order of ``order_id`` with ``error`` (until ``until()``), inside the
    transaction of the request that carries it."""
    engine = sim.engine
    real = engine.insert

    def insert(doctype: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if doctype == "Sales Order" and data.get("amazon_order_id") == order_id and not until():
            raise error
        return real(doctype, data, **kw)

    engine.insert = insert  # type: ignore[method-assign]


def _order_ids(path: str, data: Any) -> list[str]:
    if path == INSERT_MANY:
        return [str(d.get("amazon_order_id")) for d in data.get("docs") or [] if d.get("doctype") == "Sales Order"]
    if path == SO_RESOURCE and isinstance(data, dict):
        return [str(data.get("amazon_order_id"))]
    return []


def test_a_batch_refused_for_one_bad_order_is_split_and_the_bad_order_fails_alone(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=80, seed=23, days=20, marketplaces=("US",))
    env.setup_erp()
    assert env.run("sync-products").code == 0
    bad = sorted(o.amazon_order_id for o in env.spapi.orders if o.status == "Shipped")[3]
    calls: Counter[str] = Counter()

    def refuse_bad(method: str, path: str, data: Any, send: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...] | None:
        if bad in _order_ids(path, data):
            calls["batch" if path == INSERT_MANY else "alone"] += 1
        return None

    # ERPNext refuses the bad order as in recording 080 (an Item it does not know): the whole insert_many call
    # is one transaction, so nothing of a batch holding it is kept
    _refuse_order(env.erp, bad, FrappeError(404, "DoesNotExistError", "Item NO-SUCH-SKU not found",
                                            with_exception=False))
    _intercept(env.erp, refuse_bad)
    result = env.run("--json", "sync-orders")
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    assert summary["error"] and "1" in str(summary["error"])
    assert [c for c in summary["failure_causes"] if "NO-SUCH-SKU" in c] and bad in " ".join(summary["failure_causes"])
    by_id = env.sales_orders_by_amazon_id()
    assert bad not in by_id
    assert duplicates(env) == []
    # halving 20 → 10 → 5 → 2 or 3 → 1: the bad order in a few batches, then alone once (and only once)
    assert calls["alone"] == 1 and 2 <= calls["batch"] <= 5
    with StateStore(env.state_path) as state:
        assert [e.key for e in state.entries("order", "failed")] == [bad]
        assert state.entries(status="writing") == []
    env.erp.handle = ErpNextSimulator.handle.__get__(env.erp)  # type: ignore[method-assign]
    env.erp.engine.insert = type(env.erp.engine).insert.__get__(env.erp.engine)  # type: ignore[method-assign]
    env.clock.advance(300)
    assert env.run("sync-orders").code == 0
    assert_landed_exactly_once(env)


def _short_timeout(env: SimEnv) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    erp_part = text.index("[erpnext]")
    at = text.index("timeout = 5.0", erp_part)
    env.config_path.write_text(text[:at] + "timeout = 1.0" + text[at + len("timeout = 5.0"):], encoding="utf-8")


def test_a_batch_that_timed_out_after_commit_is_resolved_by_lookup(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=60, seed=29, days=20, marketplaces=("US",))
    env.setup_erp()
    _short_timeout(env)
    assert env.run("sync-products").code == 0
    env.erp.set_faults(FaultConfig(rate=0.0, timeout_seconds=1.5, after_commit=True))
    late: list[list[str]] = []
    sent: list[list[str]] = []
    real_draw = env.erp._draw_fault
    local = threading.local()

    def draw() -> str | None:
        return "timeout" if getattr(local, "late", False) else real_draw()

    def commit_then_stall(method: str, path: str, data: Any,
                          send: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...] | None:
        if path == INSERT_MANY and _order_ids(path, data):  # the Sales Orders' batches, not the new buyers'
            sent.append(_order_ids(path, data))
        if path == INSERT_MANY and _order_ids(path, data) and not late:
            late.append(_order_ids(path, data))
            local.late = True  # this one commits, then answers after the client gave up
            try:
                return send()
            finally:
                local.late = False
        return None

    env.erp._draw_fault = draw  # type: ignore[method-assign]
    _intercept(env.erp, commit_then_stall)
    result = env.run("sync-orders")
    assert result.code == 0, result.err
    assert late and len(late[0]) > 1
    # the lost answer was looked up (the batch's ids), found, and the batch was not sent again
    assert sorted(i for ids in sent for i in ids) == sorted(so["amazon_order_id"] for so in env.sales_orders())
    assert duplicates(env) == []
    assert_landed_exactly_once(env)
    assert ledger_disagreements(env) == []


def test_a_transient_duplicate_key_conflict_is_retried_within_the_run(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=40, seed=31, days=20, marketplaces=("US",))
    env.setup_erp()
    assert env.run("sync-products").code == 0
    target = sorted(o.amazon_order_id for o in env.spapi.orders if o.status == "Shipped")[0]
    alone: Counter[str] = Counter()

    def count_alone(method: str, path: str, data: Any,
                    send: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...] | None:
        if path == SO_RESOURCE and _order_ids(path, data) == [target]:
            alone[target] += 1
        return None

    # the order runs into a concurrent order's new stock bin (in its batch, then alone once): ERPNext rolls the
    # whole insert back and answers with the recorded duplicate-key shape
    body = _unique_conflict_body()
    conflict = FrappeError(417, "UniqueValidationError", [{"message": "Item Code must be unique", "title": "Message"}],
                           exception_full=str(body["exception"]))
    _refuse_order(env.erp, target, conflict, until=lambda: alone[target] >= 2)
    _intercept(env.erp, count_alone)
    result = env.run("--json", "sync-orders")
    assert result.code == 0, result.err
    summary = json.loads(result.out)["summary"]
    assert summary.get("transient conflicts retried") == 1
    assert alone[target] == 2  # refused once on its own, looked up (absent), sent again
    assert_landed_exactly_once(env)
    assert duplicates(env) == []


# --- a kill inside a batch ------------------------------------------------------------------------------------


def _one_master_per_buyer(env: SimEnv) -> None:
    """Every Customer and Address belongs to a Sales Order, once: no buyer key and no address key twice."""
    customers = env.erp.docs("Customer")
    keys = [str(c.get("amazon_customer_key")) for c in customers if c.get("amazon_customer_key")]
    assert len(keys) == len(set(keys))
    assert {c["name"] for c in customers if c.get("amazon_customer_key")} == {
        str(so["customer"]) for so in env.sales_orders()}
    addresses = env.erp.docs("Address")
    assert len({mapping.address_key(a) for a in addresses}) == len(addresses)
    assert {a["name"] for a in addresses} == {
        so.get("shipping_address_name") for so in env.sales_orders() if so.get("shipping_address_name")}


def _batch_of(path: str, data: Any, doctype: str) -> bool:
    docs = data.get("docs") if path == INSERT_MANY and isinstance(data, dict) else None
    return bool(docs) and all(d.get("doctype") == doctype for d in docs)


@pytest.mark.parametrize(("doctype", "mode"), [("Sales Order", "api"), ("Customer", "api"), ("Address", "report")])
def test_kill_inside_a_batch_then_rerun_leaves_each_order_once(tmp_path: Path, doctype: str, mode: str) -> None:
    with SimEnv(tmp_path, listings=20, orders=60, seed=37, days=15, clock=SystemClock(),  # type: ignore[arg-type]
                marketplaces=("US",), spapi_kwargs={"rate_limits": False, "report_processing_seconds": 0.0},
                erp_kwargs={"latency": 0.002}, workers=3) as env:
        env.setup_erp()
        assert env.run("sync-products").code == 0
        committed = threading.Event()
        release = threading.Event()

        def commit_then_hang(method: str, path: str, data: Any,
                             send: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...] | None:
            if _batch_of(path, data, doctype) and not committed.is_set():
                answer = send()  # committed in ERPNext...
                committed.set()
                release.wait(30)  # ...and the answer never reaches the killed process
                return answer
            return None

        _intercept(env.erp, commit_then_hang)
        proc = env.popen("sync-orders", "--mode", mode)
        try:
            assert committed.wait(60), proc.communicate(timeout=5)[1] if proc.poll() is not None else "no batch"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            release.set()
        assert proc.returncode == -signal.SIGKILL
        with StateStore(env.state_path) as state:
            assert state.entries(status="writing"), "the batch's intents are in the ledger"
        env.erp.handle = ErpNextSimulator.handle.__get__(env.erp)  # type: ignore[method-assign]
        again = env.popen("sync-orders", "--mode", mode)
        _, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        assert duplicates(env) == []
        assert lost_orders(env) == []
        assert_landed_exactly_once(env)
        assert ledger_disagreements(env) == []
        _one_master_per_buyer(env)
        with StateStore(env.state_path) as state:
            assert state.entries(status="writing") == []


# --- new buyers' Customers and Addresses in batches ------------------------------------------------------------


def test_a_customer_batch_refused_for_one_bad_customer_is_split_and_its_order_fails_alone(
        sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=20, orders=80, seed=23, days=20, marketplaces=("US",))
    env.setup_erp()
    assert env.run("sync-products").code == 0
    calls: Counter[str] = Counter()
    engine = env.erp.engine
    real = engine.insert
    bad_key: list[str] = []

    def insert(doctype: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        # one buyer refused as ERPNext refuses a bad link, inside the call's transaction
        if doctype == "Customer" and bad_key and data.get("amazon_customer_key") == bad_key[0]:
            raise FrappeError(417, "LinkValidationError", "Could not find Customer Group: NO-SUCH-GROUP")
        return real(doctype, data, **kw)

    def watch(method: str, path: str, data: Any, send: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...] | None:
        if _batch_of(path, data, "Customer") and not bad_key and len(data["docs"]) > 3:
            bad_key.append(str(data["docs"][3]["amazon_customer_key"]))  # the 4th new buyer of the first batch
        docs = data.get("docs") if path == INSERT_MANY and isinstance(data, dict) else [data]
        keys = {str(d.get("amazon_customer_key")) for d in docs or [] if isinstance(d, dict)}
        if bad_key and bad_key[0] in keys:
            calls["batch" if path == INSERT_MANY else "alone"] += 1
        return None

    engine.insert = insert  # type: ignore[method-assign]
    _intercept(env.erp, watch)
    result = env.run("--json", "sync-orders")
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    [cause] = summary["failure_causes"]
    assert "NO-SUCH-GROUP" in cause
    with StateStore(env.state_path) as state:
        failed = {e.key for e in state.entries("order", "failed")}
        assert state.entries(status="writing") == []
    landed = set(env.sales_orders_by_amazon_id())
    assert failed and not failed & landed
    assert {o.amazon_order_id for o in env.spapi.orders if o.status == "Shipped"} <= landed | failed
    assert not [c for c in env.erp.docs("Customer") if c.get("amazon_customer_key") == bad_key[0]]
    # halving: the bad customer in a few batches, then alone once
    assert calls["alone"] == 1 and 2 <= calls["batch"] <= 6
    assert duplicates(env) == []
    _one_master_per_buyer(env)
    engine.insert = real  # type: ignore[method-assign]
    env.erp.handle = ErpNextSimulator.handle.__get__(env.erp)  # type: ignore[method-assign]
    env.clock.advance(300)
    assert env.run("sync-orders").code == 0
    assert_landed_exactly_once(env)
    _one_master_per_buyer(env)


@pytest.mark.parametrize("doctype", ["Customer", "Address"])
def test_a_new_buyer_batch_whose_answer_is_lost_is_resolved_by_lookup(sim_env: SimEnvFactory, doctype: str) -> None:
    env = sim_env(listings=20, orders=60, seed=29, days=20, marketplaces=("US",))
    env.setup_erp()
    _short_timeout(env)
    assert env.run("sync-products").code == 0
    env.erp.set_faults(FaultConfig(rate=0.0, timeout_seconds=1.5, after_commit=True))
    sent: Counter[str] = Counter()
    late: list[int] = []
    real_draw = env.erp._draw_fault
    local = threading.local()

    def draw() -> str | None:
        return "timeout" if getattr(local, "late", False) else real_draw()

    def commit_then_stall(method: str, path: str, data: Any,
                          send: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...] | None:
        if not _batch_of(path, data, doctype):
            return None
        sent.update(str(d.get("amazon_customer_key") if doctype == "Customer" else d.get("address_title"))
                    for d in data["docs"])
        if late:
            return None
        late.append(len(data["docs"]))
        local.late = True  # this one commits, then answers after the client gave up
        try:
            return send()
        finally:
            local.late = False

    env.erp._draw_fault = draw  # type: ignore[method-assign]
    _intercept(env.erp, commit_then_stall)
    result = env.run("sync-orders", "--mode", "report")
    assert result.code == 0, result.err
    assert late and late[0] > 1
    # the lost answer was looked up, found, and not one document of the batch was sent again
    assert max(sent.values()) == 1
    assert sum(sent.values()) == len(env.erp.docs(doctype))
    assert duplicates(env) == []
    assert_landed_exactly_once(env)
    _one_master_per_buyer(env)
    assert ledger_disagreements(env) == []


@pytest.mark.parametrize("batch", [1, 7])
def test_batch_size_does_not_change_what_lands(sim_env: SimEnvFactory, monkeypatch: pytest.MonkeyPatch,
                                               batch: int) -> None:
    monkeypatch.setattr("amz2erp.engine.orders.INSERT_BATCH", batch)
    env = sim_env(listings=20, orders=50, seed=41, days=20, marketplaces=("US",))
    env.setup_erp()
    assert env.run("sync-products").code == 0
    before = len(env.erp.request_log)
    assert env.run("sync-orders").code == 0
    kinds = _requests(env, before)
    assert (kinds["POST Sales Order"] > 0) == (batch == 1)
    assert (kinds["POST frappe.client.insert_many"] > 0) == (batch > 1)
    assert_landed_exactly_once(env)


def test_the_same_order_twice_in_one_stream_is_written_once(sim_env: SimEnvFactory) -> None:
    # the second record of an order whose Sales Order waits in a batch is handed back and processed once the
    # batch is written: its lookup then finds that Sales Order
    env = sim_env(listings=20, orders=30, seed=43, days=20, marketplaces=("US",))
    env.setup_erp()
    assert env.run("sync-products").code == 0
    settings, _ = load_settings(env.config_path)
    # one worker: the records are processed in stream order, so the repeats meet their batch still waiting
    settings = settings.model_copy(update={"erpnext": settings.erpnext.model_copy(update={"workers": 1})})
    now = env.clock.now()
    with AmazonClient(settings.amazon, env.clock) as amazon:
        records = [r for r in amazon.fetch_orders(["ATVPDKIKX0DER"], now - timedelta(days=21), now)
                   if isinstance(r, Order) and r.status.value in ("Shipped", "Unshipped")]
        assert len(records) >= 10
        with open_runtime(settings, Reporter(quiet=True), "test", clock=env.clock, amazon=amazon) as rt:
            writer = OrderWriter(rt)
            handed_back: list[str] = []
            real = writer.process

            def spy(record: Any, **kw: Any) -> Any:
                res = real(record, **kw)
                if res.again:
                    handed_back.append(res.order_id)
                return res

            writer.process = spy  # type: ignore[method-assign]
            twice = records[:6] + records[:3] + records[6:]
            result = process_orders(rt, writer, twice)
    assert result.processed == len(twice) and result.failed == 0
    assert set(handed_back) == {r.amazon_order_id for r in records[:3]}  # waited for their batch
    by_id = env.sales_orders_by_amazon_id()
    assert all(len(by_id[r.amazon_order_id]) == 1 for r in records)
    assert duplicates(env) == []
