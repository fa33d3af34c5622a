"""The ERPNext simulator beyond the recordings: persistence, ceiling, faults, helpers, concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from amz2erp_sim.erpnext import ErpNextSimulator, FaultConfig


def _so(order_id: str, **extra: Any) -> dict[str, Any]:
    doc = {
        "customer": "Buyer - A",
        "company": "Amz Test Co",
        "transaction_date": "2026-11-20",
        "delivery_date": "2026-11-27",
        "selling_price_list": "Standard Selling",
        "po_no": order_id,
        "items": [{"item_code": "SKU-1", "qty": 1, "rate": 10.0, "warehouse": "Stores - ATC"}],
    }
    doc.update(extra)
    return doc


class Client:
    def __init__(self, sim: ErpNextSimulator) -> None:
        self.sim = sim
        self.s = requests.Session()
        self.s.headers["Authorization"] = sim.auth_header

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.s.get(self.sim.url + path, params=params, timeout=10)

    def post(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.s.post(self.sim.url + path, json=body, timeout=kw.pop("timeout", 10), **kw)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.s.put(self.sim.url + path, json=body, timeout=10)

    def delete(self, path: str) -> requests.Response:
        return self.s.delete(self.sim.url + path, timeout=10)


def _prepare(sim: ErpNextSimulator) -> None:
    sim.insert_doc(
        "Custom Field",
        {
            "dt": "Sales Order",
            "fieldname": "amazon_order_id",
            "label": "Amazon Order ID",
            "fieldtype": "Data",
            "unique": 1,
        },
        validate=True,
    )
    sim.insert_doc(
        "Item", {"item_code": "SKU-1", "item_group": "Products", "stock_uom": "Nos"}, validate=True
    )
    sim.insert_doc(
        "Customer",
        {"customer_name": "Buyer - A", "customer_group": "Individual", "territory": "United States"},
        validate=True,
    )


@pytest.fixture()
def sim() -> Any:
    with ErpNextSimulator() as s:
        _prepare(s)
        yield s


def test_restart_on_same_db_keeps_documents_and_series(tmp_path: Path) -> None:
    db = str(tmp_path / "erp.sqlite")
    with ErpNextSimulator(db) as first:
        _prepare(first)
        r = Client(first).post("/api/resource/Sales Order", _so("111-1", amazon_order_id="111-1"))
        assert r.status_code == 200
        name1 = r.json()["data"]["name"]
    with ErpNextSimulator(db) as second:
        c = Client(second)
        got = c.get(f"/api/resource/Sales Order/{name1}")
        assert got.status_code == 200
        assert got.json()["data"]["amazon_order_id"] == "111-1"
        assert second.count("Company") == 1  # masters not seeded twice
        r2 = c.post("/api/resource/Sales Order", _so("111-2", amazon_order_id="111-2"))
        assert r2.status_code == 200
        assert int(r2.json()["data"]["name"][-5:]) == int(name1[-5:]) + 1
        dup = c.post("/api/resource/Sales Order", _so("111-3", amazon_order_id="111-1"))
        assert dup.json()["exc_type"] == "UniqueValidationError"  # the custom field survived the restart


def test_latency_and_workers_make_a_ceiling() -> None:
    with ErpNextSimulator(latency=0.05, workers=2) as sim:
        assert sim.ceiling() == pytest.approx(40.0)
        c = Client(sim)
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(lambda _: Client(sim).get("/api/resource/Company").status_code, range(40))
            )
        elapsed = time.monotonic() - started
        assert statuses == [200] * 40
        assert 1 <= sim.latency_peak <= 2
        assert elapsed >= 40 / sim.ceiling() * 0.9
        assert c.get("/api/method/ping").json() == {"message": "pong"}
    assert ErpNextSimulator(seed_masters=False).ceiling() == float("inf")


def test_request_log_and_counts(sim: ErpNextSimulator) -> None:
    c = Client(sim)
    c.post("/api/resource/Sales Order", _so("L-1"))
    c.get("/api/resource/Sales Order", filters=json.dumps({"po_no": "L-1"}))
    c.post("/api/method/frappe.client.insert_many", {"docs": [dict(_so("L-2"), doctype="Sales Order")]})
    counts = sim.counts()
    assert counts[("POST", "Sales Order")] == 2
    assert counts[("GET", "Sales Order")] == 1
    last = sim.request_log[-1]
    assert last.path == "/api/method/frappe.client.insert_many" and last.status == 200 and last.duration >= 0


def test_faults_are_deterministic_and_do_not_write() -> None:
    def run(seed: int) -> list[int]:
        with ErpNextSimulator(faults=FaultConfig(rate=0.5, kinds=("500", "502html", "417"), seed=seed)) as s:
            _prepare(s)
            c = Client(s)
            out = [c.post("/api/resource/Sales Order", _so(f"F-{i}")).status_code for i in range(20)]
            assert s.count("Sales Order") == out.count(200)  # a failed call wrote nothing
            return out

    a, b = run(7), run(7)
    assert a == b
    assert set(a) - {200} <= {500, 502, 417} and 200 in a and len(set(a)) > 1


def test_fault_kinds(sim: ErpNextSimulator) -> None:
    c = Client(sim)
    sim.set_faults(FaultConfig(rate=1.0, kinds=("417",)))
    r = c.post("/api/resource/Sales Order", _so("K-1"))
    assert r.status_code == 417 and r.json()["exc_type"] == "ValidationError"
    sim.set_faults(FaultConfig(rate=1.0, kinds=("502html",)))
    r = c.get("/api/resource/Company")
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    sim.set_faults(FaultConfig(rate=1.0, kinds=("reset",)))
    with pytest.raises(requests.ConnectionError):
        Client(sim).post("/api/resource/Sales Order", _so("K-2"))
    assert sim.count("Sales Order", po_no="K-2") == 1  # processed, then the connection was dropped
    sim.set_faults(FaultConfig(rate=1.0, kinds=("timeout",), timeout_seconds=0.5))
    with pytest.raises(requests.Timeout):
        Client(sim).post("/api/resource/Sales Order", _so("K-3"), timeout=0.2)
    assert sim.count("Sales Order", po_no="K-3") == 1  # committed although the client gave up
    sim.set_faults(FaultConfig(rate=1.0, kinds=("timeout",), timeout_seconds=0.3, after_commit=False))
    with pytest.raises(requests.Timeout):
        Client(sim).post("/api/resource/Sales Order", _so("K-4"), timeout=0.1)
    assert sim.count("Sales Order", po_no="K-4") == 0
    sim.set_faults(None)
    assert c.get("/api/method/ping").status_code == 200
    deadline = time.monotonic() + 3  # the server logs a timed-out call when its delayed answer goes out
    while sum(1 for r in sim.request_log if r.fault == "timeout") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.fault for r in sim.request_log if r.fault] == ["417", "502html", "reset", "timeout", "timeout"]
    with pytest.raises(ValueError):
        sim.set_faults(FaultConfig(rate=1.0, kinds=("bogus",)))


def test_direct_helpers(sim: ErpNextSimulator) -> None:
    legacy = sim.insert_doc(
        "Sales Order",
        {
            "name": "SO-LEGACY-1",
            "customer": "Buyer - A",
            "po_no": "LEG-1",
            "amazon_order_id": "LEG-1",
            "docstatus": 1,
            "status": "To Deliver and Bill",
            "grand_total": 12.5,
            "items": [{"item_code": "SKU-1", "qty": 1, "rate": 12.5}],
        },
    )
    assert legacy["name"] == "SO-LEGACY-1"
    assert sim.get_doc("Sales Order", "SO-LEGACY-1")["items"][0]["parent"] == "SO-LEGACY-1"
    assert [d["name"] for d in sim.docs("Sales Order", amazon_order_id="LEG-1")] == ["SO-LEGACY-1"]
    assert sim.count("Sales Order", docstatus=1) == 1
    assert sim.count("Country") >= 40 and sim.get_doc("Country", "Germany")["code"] == "de"
    assert sim.get_doc("Sales Order", "nope") is None
    c = Client(sim)
    r = c.post("/api/resource/Sales Order", _so("LEG-2", amazon_order_id="LEG-1"))
    assert r.json()["exc_type"] == "UniqueValidationError"  # the seeded order holds the id
    listed = c.get(
        "/api/resource/Sales Order",
        filters=json.dumps([["amazon_order_id", "=", "LEG-1"]]),
        fields=json.dumps(["name", "docstatus", "status", "grand_total"]),
    ).json()["data"]
    assert listed == [
        {"name": "SO-LEGACY-1", "docstatus": 1, "status": "To Deliver and Bill", "grand_total": 12.5}
    ]


def test_parallel_inserts_of_one_unique_value_one_wins(sim: ErpNextSimulator) -> None:
    def post(i: int) -> requests.Response:
        return Client(sim).post("/api/resource/Sales Order", _so(f"P-{i}", amazon_order_id="SAME-ID"))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(16)))
    assert sorted(r.status_code for r in results) == [200] + [417] * 15
    assert {r.json()["exc_type"] for r in results if r.status_code == 417} == {"UniqueValidationError"}
    assert sim.count("Sales Order", amazon_order_id="SAME-ID") == 1
    with ThreadPoolExecutor(8) as pool:
        items = list(
            pool.map(
                lambda _: (
                    Client(sim)
                    .post(
                        "/api/resource/Item",
                        {"item_code": "RACE", "item_group": "Products", "stock_uom": "Nos"},
                    )
                    .status_code
                ),
                range(8),
            )
        )
    assert sorted(items) == [200] + [409] * 7


def test_sales_order_lifecycle_and_delivery_link(sim: ErpNextSimulator) -> None:
    c = Client(sim)
    so = c.post("/api/resource/Sales Order", _so("D-1", docstatus=1)).json()["data"]
    assert so["docstatus"] == 1 and so["status"] == "Draft"  # the insert-submitted quirk
    r = c.post(
        "/api/method/erpnext.selling.doctype.sales_order.sales_order.update_status",
        {"status": "Draft", "name": so["name"]},
    )
    assert r.status_code == 200 and sim.get_doc("Sales Order", so["name"])["status"] == "To Deliver and Bill"
    receipt = {"stock_entry_type": "Material Receipt", "docstatus": 1,  # a delivery needs stock to deliver
               "items": [{"item_code": "SKU-1", "qty": 1, "t_warehouse": "Stores - ATC", "basic_rate": 5}]}  # fmt: skip
    assert c.post("/api/resource/Stock Entry", receipt).status_code == 200
    dn = c.post(
        "/api/resource/Delivery Note",
        {
            "customer": "Buyer - A",
            "company": "Amz Test Co",
            "posting_date": "2026-11-21",
            "docstatus": 1,
            "items": [{"item_code": "SKU-1", "qty": 1, "rate": 10, "against_sales_order": so["name"]}],
        },
    )
    assert dn.status_code == 200 and dn.json()["data"]["docstatus"] == 1
    assert sim.count("Delivery Note") == 1
    delivered = sim.get_doc("Sales Order", so["name"])
    assert (delivered["per_delivered"], delivered["status"]) == (100.0, "To Bill")
    r = c.post("/api/method/frappe.client.cancel", {"doctype": "Sales Order", "name": so["name"]})
    assert r.status_code == 417 and r.json()["exc_type"] == "LinkExistsError"
    r = c.put(f"/api/resource/Sales Order/{so['name']}", {"docstatus": 0})
    assert r.json()["exc_type"] == "DocstatusTransitionError"
    # a draft, then PUT docstatus=1, cancel, amend
    d2 = c.post(
        "/api/resource/Sales Order",
        _so(
            "D-2",
            taxes=[
                {
                    "charge_type": "Actual",
                    "account_head": "Freight and Forwarding Charges - ATC",
                    "tax_amount": 4.99,
                }
            ],
            disable_rounded_total=1,
        ),
    ).json()["data"]
    assert (d2["total"], d2["total_taxes_and_charges"], d2["grand_total"], d2["rounded_total"]) == (
        10.0,
        4.99,
        14.99,
        0.0,
    )
    sub = c.put(f"/api/resource/Sales Order/{d2['name']}", {"docstatus": 1}).json()["data"]
    assert sub["status"] == "To Deliver and Bill"
    cancelled = c.put(f"/api/resource/Sales Order/{d2['name']}", {"docstatus": 2}).json()["data"]
    assert cancelled["status"] == "Cancelled"
    amended = c.post("/api/resource/Sales Order", _so("D-2", amended_from=d2["name"])).json()["data"]
    assert amended["name"] == f"{d2['name']}-1" and amended["amended_from"] == d2["name"]
    assert c.delete(f"/api/resource/Sales Order/{amended['name']}").status_code == 202


def test_insert_many_is_atomic_and_currency_exchange_is_used(sim: ErpNextSimulator) -> None:
    c = Client(sim)
    docs = [dict(_so("M-1"), doctype="Sales Order"), dict(_so("M-2"), doctype="Sales Order")]
    docs[1]["items"][0]["item_code"] = "NOPE"
    r = c.post("/api/method/frappe.client.insert_many", {"docs": docs})
    assert r.status_code == 404 and sim.count("Sales Order") == 0
    assert c.post("/api/resource/Sales Order", _so("E-1", currency="EUR")).status_code == 417
    sim.insert_doc(
        "Currency Exchange",
        {"date": "2026-11-01", "from_currency": "EUR", "to_currency": "USD", "exchange_rate": 1.1},
        validate=True,
    )
    eur = c.post("/api/resource/Sales Order", _so("E-1", currency="EUR")).json()["data"]
    assert (eur["conversion_rate"], eur["grand_total"], eur["base_grand_total"]) == (1.1, 10.0, 11.0)


def test_list_queries(sim: ErpNextSimulator) -> None:
    c = Client(sim)
    rows = c.get(
        "/api/resource/Account",
        fields=json.dumps(["name", "root_type"]),
        filters=json.dumps([["Account", "name", "like", "%Income%"], ["is_group", "=", 1]]),
        order_by="name desc",
        limit_page_length=0,
    ).json()["data"]
    assert [r["name"] for r in rows] == ["Indirect Income - ATC", "Income - ATC", "Direct Income - ATC"]
    assert len(c.get("/api/resource/Country").json()["data"]) == 20  # default page size
    rows = c.get(
        "/api/resource/Warehouse",
        or_filters=json.dumps([["name", "=", "Stores - ATC"], ["is_group", "=", 1]]),
    ).json()["data"]
    assert {r["name"] for r in rows} == {"Stores - ATC", "All Warehouses - ATC"}
    r = c.get("/api/resource/Company", filters=json.dumps([["nope", "=", 1]]))
    assert r.status_code == 417 and r.json()["exc_type"] == "DataError"
    v = c.post(
        "/api/method/frappe.client.get_value",
        {"doctype": "Company", "fieldname": "abbr", "filters": {"name": "Amz Test Co"}},
    )
    assert v.json() == {"message": {"abbr": "ATC"}}
    assert c.get("/api/resource/Company", limit=1).json()["data"] == [{"name": "Amz Test Co"}]


def test_runs_as_a_module(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "amz2erp_sim.erpnext", "--port", "0", "--db", str(tmp_path / "m.sqlite")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(url + "/api/method/ping", timeout=5).json() == {"message": "pong"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
