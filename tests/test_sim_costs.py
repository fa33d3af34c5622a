"""The ERPNext simulator's cost model: which request costs what, and how two workers share two cores.

Arithmetic only (explicit times, no clock): the model's calibration against the real server is checked in
bench/ (python -m bench.run --parts 2)."""

from __future__ import annotations

import threading

import pytest
import requests

from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.erpnext.costs import (
    MAPPERS,
    MS,
    SO_UPDATE_STATUS,
    CostModel,
    DocShape,
    Kind,
    Request,
    Sharing,
    WorkerPool,
    classify,
    schedule,
)

MODEL = CostModel()
SO = {"doctype": "Sales Order", "items": [{"item_code": "A"}], "taxes": [{"charge_type": "Actual"}]}


def ms(seconds: float) -> float:
    return round(seconds / MS, 3)


# --- what a request is -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "args", "label"),
    [
        ("GET", "/api/resource/Sales Order", {"filters": "[]"}, "lookup Sales Order"),
        ("GET", "/api/resource/Sales Order/SAL-ORD-1", {}, "get Sales Order"),
        ("POST", "/api/resource/Customer", {"customer_name": "x"}, "insert Customer"),
        ("PUT", "/api/resource/Sales Order/SAL-ORD-1", {"docstatus": 1}, "submit Sales Order"),
        ("PUT", "/api/resource/Sales Order/SAL-ORD-1", {"title": "t"}, "update Sales Order"),
        ("DELETE", "/api/resource/Address/A-1", {}, "delete Address"),
        ("POST", f"/api/method/{SO_UPDATE_STATUS}", {"name": "X", "status": "Draft"}, "update_status Sales Order"),
        ("POST", "/api/method/frappe.client.insert_many", {"docs": [SO, SO]}, "insert_many Sales Order"),
        ("POST", "/api/method/frappe.client.insert", {"doc": '{"doctype": "Item"}'}, "insert Item"),
        ("POST", "/api/method/frappe.client.cancel", {"doctype": "Journal Entry", "name": "J"}, "cancel Journal Entry"),
        ("GET", "/api/method/frappe.client.get_value", {"doctype": "Company"}, "lookup Company"),
        ("GET", "/api/method/frappe.auth.get_logged_user", {}, "method"),
        ("POST", "/api/method/erpnext.selling.doctype.sales_order.sales_order.make_delivery_note",
         {"source_name": "SO-1"}, "map Delivery Note"),
    ],
)
def test_requests_are_classified_by_what_they_do(method: str, path: str, args: dict[str, object], label: str) -> None:
    assert classify(method, path, args).label == label


def test_documents_are_sized_by_their_lines_taxes_and_quick_entry_side_documents() -> None:
    so = classify("POST", "/api/resource/Sales Order", {"items": [{}, {}, {}], "taxes": [{}, {}]})
    assert so.docs == (DocShape("Sales Order", lines=3, taxes=2),)
    je = classify("POST", "/api/resource/Journal Entry", {"accounts": [{}] * 13})
    assert je.docs[0].lines == 13
    quick = classify("POST", "/api/resource/Customer", {"customer_name": "B", "address_line1": "1 Main St",
                                                        "email_id": "b@example.com"})
    assert quick.docs == (DocShape("Customer", side=("Address", "Contact")),)
    many = classify("POST", "/api/method/frappe.client.insert_many", {"docs": '[{"doctype": "Sales Order"}]'})
    assert many.kind is Kind.INSERT_MANY and many.docs == (DocShape("Sales Order"),)


# --- what it costs -----------------------------------------------------------------------------------------


def test_a_single_sales_order_costs_what_the_real_server_took() -> None:
    post = classify("POST", "/api/resource/Sales Order", SO)
    # real: POST p50 112–142 ms from a client on the same box; the floor is part of it
    assert ms(MODEL.before(post)) == 10 + 83 + 15 + 5
    bigger = classify("POST", "/api/resource/Sales Order", dict(SO, items=[{}] * 4))
    assert ms(MODEL.before(bigger) - MODEL.before(post)) == 3 * 15


def test_lookups_cost_the_floor_plus_the_query_and_a_little_per_row() -> None:
    lookup = Request(Kind.LOOKUP, "Sales Order")
    assert ms(MODEL.before(lookup)) == 14  # real p50 14.3–16.8 ms
    assert ms(MODEL.after(lookup, 100)) == 10
    assert MODEL.after(Request(Kind.INSERT, "Customer", (DocShape("Customer"),)), 100) == 0
    assert ms(MODEL.before(Request(Kind.GET, "Sales Order"))) == 27  # real 26.9–31.8 ms


def test_insert_many_pays_one_request_and_half_of_each_document() -> None:
    docs = tuple(DocShape("Sales Order", lines=1, taxes=1) for _ in range(50))
    many = MODEL.before(Request(Kind.INSERT_MANY, "Sales Order", docs))
    one = MODEL.before(Request(Kind.INSERT, "Sales Order", docs[:1]))
    assert ms(many) == pytest.approx(10 + 65 + 50 * 103 * 0.5)
    # per document: ~53 ms against ~113 ms one by one (real: 52–62 ms against 112–132 ms)
    assert 0.4 < many / 50 / one < 0.55


def test_update_status_submit_and_a_quick_entry_customer() -> None:
    assert ms(MODEL.before(Request(Kind.UPDATE_STATUS, "Sales Order"))) == 85  # real p50 74–96 ms
    submit = classify("PUT", "/api/resource/Sales Order/S", {"docstatus": 1})
    assert ms(MODEL.before(submit)) == pytest.approx(10 + 1.45 * 103)  # real PUT 165–181 ms
    plain = classify("POST", "/api/resource/Customer", {"customer_name": "B"})
    quick = classify("POST", "/api/resource/Customer", {"customer_name": "B", "address_line1": "1 Main St"})
    # one request instead of two: the Address's own cost stays, its request floor goes
    assert ms(MODEL.before(quick) - MODEL.before(plain)) == 20


def test_speed_scales_every_cost_and_flat_latency_ignores_the_kind() -> None:
    req = classify("POST", "/api/resource/Sales Order", SO)
    assert MODEL.scaled(0.05).before(req) == pytest.approx(MODEL.before(req) / 20)
    flat = CostModel.flat_latency(0.05, 4)
    assert flat.before(req) == flat.before(Request(Kind.LOOKUP, "Customer")) == 0.05
    assert flat.after(Request(Kind.LOOKUP, "Customer"), 500) == 0


# --- two workers on two cores ------------------------------------------------------------------------------


def test_one_request_alone_runs_at_full_speed() -> None:
    assert schedule([(0.0, 0.1)], workers=2, capacity=1.2) == pytest.approx([0.1])


def test_two_busy_workers_share_the_cores() -> None:
    # both at 0.6 of a core: 0.1 s of work each takes 1/6 s
    assert schedule([(0.0, 0.1), (0.0, 0.1)], workers=2, capacity=1.2) == pytest.approx([0.1 / 0.6] * 2)


def test_a_third_request_waits_for_a_free_worker() -> None:
    done = schedule([(0.0, 0.1)] * 3, workers=2, capacity=1.2)
    assert done[:2] == pytest.approx([0.1 / 0.6] * 2)
    # it starts when the first two leave, and then runs alone
    assert done[2] == pytest.approx(0.1 / 0.6 + 0.1)


def closed_loop(req: Request, threads: int, n: int = 60) -> tuple[float, float]:
    """(requests/s, mean latency) of ``threads`` clients each sending its next request when the previous one
    is answered, on the model's server (the finish times settle round by round: a job only depends on earlier
    arrivals)."""
    cpu, wait = MODEL.split(req)
    arrival = [0.0 if i < threads else -1.0 for i in range(n)]
    for _ in range(n + 2):
        done = schedule([(a, cpu, wait) for a in arrival], workers=MODEL.workers, capacity=MODEL.capacity)
        nxt = [0.0 if i < threads else done[i - threads] for i in range(n)]
        if nxt == arrival:
            break
        arrival = nxt
    return n / max(done), sum(d - a for d, a in zip(done, arrival, strict=True)) / n


def test_more_client_threads_than_workers_add_latency_not_throughput() -> None:
    post = classify("POST", "/api/resource/Sales Order", SO)
    one, lat1 = closed_loop(post, 1)
    four, lat4 = closed_loop(post, 4)
    eight, lat8 = closed_loop(post, 8)
    assert one == pytest.approx(1 / 0.113)  # 8.8/s: real sequential 7.3–8.6 with the client's own time
    # real 9.9–12.0: between two workers in step (both computing, then both committing: 9.8/s) and fully
    # interleaved (one commits while the other computes: 1 / 92 ms of CPU = 10.9/s)
    assert 9.5 < four < 11.0
    assert eight == pytest.approx(four, rel=0.03)  # real 9.6
    assert lat8 > 1.5 * lat4 > 3 * lat1  # the queue only adds latency (real p50 826 ms at 8 threads)


def test_parallel_insert_many_gains_little_because_it_is_all_cpu() -> None:
    many = Request(Kind.INSERT_MANY, "Sales Order", tuple(DocShape("Sales Order", lines=1, taxes=1)
                                                           for _ in range(50)))
    one, _ = closed_loop(many, 1, n=8)
    two, _ = closed_loop(many, 2, n=8)
    assert 16 < 50 * one < 19.5  # real: 16.2 (×50), 16.6 (×10), 19.3 (×200)
    assert 1 <= two / one < 1.05  # real: 18.2 docs/s with two calls in parallel


def test_sharing_advances_every_working_request_at_the_shared_rate() -> None:
    share = Sharing(1.2)
    share.add(1, 0.3, now=0.0)
    share.advance(0.1)
    assert share.remaining[1] == pytest.approx(0.2)
    share.add(2, 0.1, now=0.1)
    assert share.rate() == pytest.approx(0.6)
    assert share.eta(2) == pytest.approx(0.1 / 0.6)
    share.remove(2, now=0.1 + 0.1 / 0.6)
    assert share.remaining == {1: pytest.approx(0.1)}
    with pytest.raises(ValueError):
        Sharing(0)


def test_the_pool_keeps_to_its_workers_and_shares_on_a_fake_clock() -> None:
    now = [0.0]
    pool = WorkerPool(2, 1.2, clock=lambda: now[0])
    pool.work(0)  # no work: returns at once
    entered: list[int] = []
    gate = threading.Event()

    def hold(i: int) -> None:
        with pool.slot():
            entered.append(i)
            gate.wait(5)

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for _ in range(200):
        if len(entered) == 2:
            break
        threading.Event().wait(0.005)
    assert sorted(entered) == [0, 1]  # the third waits for a free worker
    gate.set()
    for t in threads:
        t.join(5)
    assert sorted(entered) == [0, 1, 2]


def test_the_simulator_counts_requests_by_kind() -> None:
    with ErpNextSimulator(costs=CostModel(speed=0.01)) as sim:
        h = {"Authorization": sim.auth_header}
        listed = requests.get(sim.url + "/api/resource/Customer", headers=h, timeout=5).json()["data"]
        r = requests.post(sim.url + "/api/resource/Customer", json={"customer_name": "Kind Test"}, headers=h, timeout=5)
        assert r.status_code == 200
        assert [rec.kind for rec in sim.request_log] == ["lookup Customer", "insert Customer"]
        # each record carries what the model charged: the insert its document, the lookup its query and rows
        lookup, insert = sim.request_log
        assert insert.cost == pytest.approx(sim.costs.before(classify("POST", "/api/resource/Customer", {})))
        assert insert.cpu == pytest.approx(sim.costs.split(classify("POST", "/api/resource/Customer", {}))[0])
        assert 0 < insert.cpu < insert.cost
        assert lookup.cost == pytest.approx(sim.costs.before(Request(Kind.LOOKUP, "Customer"))
                                            + sim.costs.after(Request(Kind.LOOKUP, "Customer"), len(listed)))
        assert sim.ceiling() == float("inf") and sim.workers == 2
        assert sim.latency_peak == 1


def test_every_mapper_the_simulator_serves_is_priced() -> None:
    from amz2erp_sim.erpnext import invoice, returns

    assert set(MAPPERS) == {invoice.MAKE_SALES_INVOICE, invoice.MAKE_DELIVERY_NOTE, returns.MAKE_SALES_RETURN}
    assert ms(MODEL.before(classify("POST", f"/api/method/{returns.MAKE_SALES_RETURN}", {}))) == 40
