"""The grouped count behind `check`'s duplicate warning: the request amz2erp sends (Frappe v15 /api/resource
passes fields, group_by and order_by to frappe.client.get_list, which answers one row per group with the
aliased count), and the simulator answering it the same way."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from amz2erp.config import ErpNextSettings
from amz2erp.erpnext.client import ErpNextClient
from amz2erp_sim.erpnext import ErpNextSimulator


def _so(name: str, order_id: str | None, docstatus: int = 1) -> dict[str, Any]:
    return {"name": name, "amazon_order_id": order_id, "docstatus": docstatus, "customer": "c",
            "transaction_date": "2026-10-01"}


@pytest.fixture
def sim() -> Any:
    with ErpNextSimulator() as s:
        s.insert_doc("Custom Field", {"dt": "Sales Order", "fieldname": "amazon_order_id", "label": "Amazon Order ID",
                                      "fieldtype": "Data"}, validate=True)
        for i, (oid, docstatus) in enumerate([("A", 1), ("A", 1), ("A", 0), ("B", 1), ("B", 1), ("C", 1),
                                              ("D", 1), ("D", 2), (None, 1)]):
            s.insert_doc("Sales Order", _so(f"SO-{i}", oid, docstatus))
        yield s


def _client(sim: ErpNextSimulator) -> ErpNextClient:
    return ErpNextClient(ErpNextSettings.model_validate({"url": sim.url, "api_key": sim.api_key,
                                                         "api_secret": sim.api_secret}))


def test_simulator_answers_group_by_with_one_row_per_group_and_the_alias(sim: ErpNextSimulator) -> None:
    answer = requests.get(f"{sim.url}/api/resource/Sales Order", headers={"Authorization": sim.auth_header},
                          params={"fields": json.dumps(["amazon_order_id", "count(name) as n"]),
                                  "group_by": "amazon_order_id", "order_by": "n desc, amazon_order_id asc",
                                  "filters": json.dumps([["amazon_order_id", "is", "set"]]),
                                  "limit_page_length": 10}, timeout=10)
    assert answer.status_code == 200
    # no docstatus filter here: D counts its cancelled Sales Order too
    assert answer.json() == {"data": [{"amazon_order_id": "A", "n": 3}, {"amazon_order_id": "B", "n": 2},
                                      {"amazon_order_id": "D", "n": 2}, {"amazon_order_id": "C", "n": 1}]}


def test_repeated_counts_live_duplicates_only(sim: ErpNextSimulator) -> None:
    client = _client(sim)
    live = [["amazon_order_id", "is", "set"], ["docstatus", "<", 2]]
    assert client.repeated("Sales Order", "amazon_order_id", filters=live) == {"A": 3, "B": 2}
    before = len(sim.request_log)
    # pages of one group: the read stops at the first count of one, never walking every order
    assert client.repeated("Sales Order", "amazon_order_id", filters=live, page_size=1) == {"A": 3, "B": 2}
    assert len(sim.request_log) - before == 3


def test_repeated_sends_the_frappe_v15_shape() -> None:
    seen: list[dict[str, Any]] = []

    class Session(requests.Session):
        def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
            from urllib.parse import parse_qs, urlsplit

            seen.append({k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()})
            resp = requests.Response()
            resp.status_code = 200
            resp._content = json.dumps({"data": [{"amazon_order_id": "A", "n": 2}]}).encode()
            resp.headers["Content-Type"] = "application/json"
            return resp

    client = ErpNextClient(ErpNextSettings.model_validate({"url": "http://127.0.0.1:9", "api_key": "k",
                                                           "api_secret": "s"}), session=Session())
    assert client.repeated("Sales Order", "amazon_order_id") == {"A": 2}
    [params] = seen
    assert json.loads(params["fields"]) == ["amazon_order_id", "count(name) as n"]
    assert params["group_by"] == "amazon_order_id" and params["order_by"] == "n desc, amazon_order_id asc"
    assert (params["limit_start"], params["limit_page_length"]) == ("0", "100")
