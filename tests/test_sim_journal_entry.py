"""Journal Entries in the ERPNext simulator: the real v15 server's answers replayed, and the GL effect.

The recordings (tests/fixtures/erpnext_v15_recordings, copied unchanged from the shared v15 recordings) are
replayed in file order (116, 131–147, 154–161) against one simulator with the replay machinery of test_erpnext_replay. State the
recording script set up without recording it is created in SETUP: the two recorder accounts, the
``amazon_settlement_id`` custom field the site already had, the naming-series position, the invoice 142
pays, the cancellation of the entry 160 deletes and the Accounts Settings switch 161 needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.erpnext import journal as erpnext_journal
from tests.test_erpnext_replay import Replay, _compare

REC_DIR = Path(__file__).parent / "fixtures" / "erpnext_v15_recordings"
FILES = sorted(
    p.name
    for p in REC_DIR.glob("[0-9]*.json")
    if int(p.name[:3]) == 116 or 131 <= int(p.name[:3]) <= 147 or 154 <= int(p.name[:3]) <= 161
)


class JournalReplay(Replay):
    def __init__(self) -> None:
        super().__init__()
        if self.year != 2026:
            self.names["ACC-JV-2026-"] = f"ACC-JV-{self.year}-"

    def run_until(self, fname: str) -> tuple[dict[str, Any], requests.Response]:
        for f in FILES:
            if f in self.done:
                if f == fname:
                    return self.done[f]
                continue
            rec = json.loads((REC_DIR / f).read_text())
            hook = SETUP.get(f[:3])
            if hook:
                hook(self)
            resp = self.send(f, rec)
            self.done[f] = (rec, resp)
            body = rec["response"]["json"]
            if resp.status_code < 400 and isinstance(body, dict):
                for key in ("data", "message"):
                    if key in body and key in resp.json():
                        self.learn(body[key], resp.json()[key])
            if f == fname:
                return rec, resp
        raise KeyError(fname)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = self.session.post(self.sim.url + path, json=body, headers={"Authorization": self.sim.auth_header})
        assert r.status_code == 200, r.text
        return r.json()


def _setup_116(rp: JournalReplay) -> None:
    sim = rp.sim
    sim.insert_doc("Account", {"account_name": "Amazon Payouts Recorder", "parent_account": "Bank Accounts - ATC",
                               "company": "Amz Test Co", "account_type": "Bank"}, validate=True)  # fmt: skip
    sim.insert_doc("Account", {"account_name": "Amazon Settlement Clearing Recorder", "company": "Amz Test Co",
                               "parent_account": "Current Assets - ATC"}, validate=True)  # fmt: skip
    sim.insert_doc("Custom Field", {"dt": "Journal Entry", "fieldname": "amazon_settlement_id",
                                    "label": "Amazon Settlement ID", "fieldtype": "Data"}, validate=True)  # fmt: skip
    sim.set_series(f"ACC-JV-{rp.year}-", 53)


def _setup_142(rp: JournalReplay) -> None:
    customer = "Buyer - 111-1234567-7000001"
    rp.sim.insert_doc("Customer", {"customer_name": customer, "customer_type": "Individual",
                                   "customer_group": "Individual", "territory": "United States"}, validate=True)  # fmt: skip
    rp.sim.insert_doc(
        "Sales Invoice",
        {"name": "ACC-SINV-2026-00002", "customer": customer, "company": "Amz Test Co", "docstatus": 1,
         "status": "Unpaid", "posting_date": "2026-11-29", "grand_total": 20.0, "outstanding_amount": 20.0,
         "is_return": 0, "return_against": None},
    )  # fmt: skip


def _setup_160(rp: JournalReplay) -> None:
    name = rp.to_sim("ACC-JV-2026-00059")
    rp.post("/api/method/frappe.client.cancel", {"doctype": "Journal Entry", "name": name})
    gl = [e for e in rp.sim.docs("GL Entry") if e["voucher_no"] == name]
    rp.names["356247c2a5"] = gl[0]["name"]  # the GL Entry ERPNext names in its refusal


SETUP: dict[str, Callable[[JournalReplay], None]] = {
    "116": _setup_116,
    "142": _setup_142,
    "160": _setup_160,
    "161": lambda rp: erpnext_journal.set_delete_linked_ledger_entries(rp.sim, True),
}


@pytest.fixture(scope="module")
def replay() -> Iterator[JournalReplay]:
    rp = JournalReplay()
    yield rp
    rp.sim.stop()


def test_the_journal_recordings_are_vendored() -> None:
    assert len(FILES) == 26 and FILES[0].startswith("116-") and FILES[-1].startswith("161-")


@pytest.mark.parametrize("fname", FILES, ids=[f.removesuffix(".json") for f in FILES])
def test_recording(replay: JournalReplay, fname: str) -> None:
    rec, resp = replay.run_until(fname)
    problems = _compare(replay, rec, resp)
    assert not problems, f"{fname} ({rec.get('purpose')}):\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- GL effect


@pytest.fixture
def erp() -> Iterator[ErpNextSimulator]:
    sim = ErpNextSimulator().start()
    assert sim.get_doc("Account", "Amazon Payouts - ATC") is not None  # seeded: the bank account Amazon pays into
    for name, parent, kind in (("Amazon Settlement Clearing", "Current Assets", ""),
                               ("Amazon EUR Payouts", "Bank Accounts", "Bank")):  # fmt: skip
        sim.insert_doc("Account", {"account_name": name, "parent_account": f"{parent} - ATC", "company": "Amz Test Co",
                                   "account_type": kind, "account_currency": "EUR" if "EUR" in name else None},
                       validate=True)  # fmt: skip
    yield sim
    sim.stop()


def _post(sim: ErpNextSimulator, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{sim.url}/api/resource/Journal Entry", json=body,
                         headers={"Authorization": sim.auth_header}, timeout=10)  # fmt: skip


def _je(rows: list[tuple[str, str, float]], **extra: Any) -> dict[str, Any]:
    accounts = [{"account": f"{a} - ATC", f"{side}_in_account_currency": amt} for a, side, amt in rows]
    return {"voucher_type": "Bank Entry", "company": "Amz Test Co", "posting_date": "2026-10-17",
            "cheque_no": "12345678901", "cheque_date": "2026-10-17", "accounts": accounts, "docstatus": 1, **extra}  # fmt: skip


def test_clearing_account_nets_to_zero_and_cancel_reverses(erp: ErpNextSimulator) -> None:
    settle = _post(erp, _je([("Amazon Payouts", "debit", 139.36), ("Commission on Sales", "debit", 30.90),
                             ("Amazon Settlement Clearing", "credit", 170.26)]))  # fmt: skip
    assert settle.status_code == 200, settle.text
    receipts = _post(erp, _je([("Amazon Settlement Clearing", "debit", 170.26), ("Sales", "credit", 170.26)],
                              voucher_type="Journal Entry", cheque_no=None, cheque_date=None))  # fmt: skip
    assert receipts.status_code == 200, receipts.text
    balances = erpnext_journal.account_balances(erp)
    assert balances["Amazon Settlement Clearing - ATC"] == 0
    assert balances["Amazon Payouts - ATC"] == Decimal("139.36")
    assert balances["Sales - ATC"] == Decimal("-170.26")
    assert sum(balances.values()) == 0
    r = requests.post(f"{erp.url}/api/method/frappe.client.cancel", json={"doctype": "Journal Entry",
                      "name": settle.json()["data"]["name"]}, headers={"Authorization": erp.auth_header})  # fmt: skip
    assert r.status_code == 200, r.text
    after = erpnext_journal.account_balances(erp)
    assert "Amazon Payouts - ATC" not in after and after["Amazon Settlement Clearing - ATC"] == Decimal(
        "170.26"
    )
    gl = [e for e in erp.docs("GL Entry") if e["voucher_no"] == settle.json()["data"]["name"]]
    assert len(gl) == 6 and all(e["is_cancelled"] == 1 for e in gl)  # 3 originals + 3 reversals


def test_same_account_twice_merges_and_negative_amounts_flip(erp: ErpNextSimulator) -> None:
    r = _post(erp, _je([("Amazon Payouts", "debit", 100.0), ("Commission on Sales", "debit", 30.0),
                        ("Commission on Sales", "credit", 10.0), ("Sales", "credit", 120.0),
                        ("Amazon Settlement Clearing", "debit", -10.0), ("Sales", "credit", -10.0)]))  # fmt: skip
    assert r.status_code == 200, r.text
    gl = [e for e in erp.docs("GL Entry") if e["voucher_no"] == r.json()["data"]["name"]]
    by_account = {e["account"]: (e["debit"], e["credit"]) for e in gl}
    assert len(gl) == 4
    assert by_account["Commission on Sales - ATC"] == (20.0, 0.0)
    assert by_account["Sales - ATC"] == (0.0, 110.0)
    assert by_account["Amazon Settlement Clearing - ATC"] == (0.0, 10.0)


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([("Amazon Payouts", "debit", 10.0), ("Sales", "credit", 10.0)], {"company": "Other Co"}, "Could not find"),
        ([("Amazon EUR Payouts", "debit", 10.0), ("Sales", "credit", 10.0)], {},
         "Please check Multi Currency option to allow accounts with other currency"),
        ([("Amazon Payouts", "debit", 10.0), ("Sales", "credit", 10.0)], {"cheque_no": None},
         "Reference No & Reference Date is required for Bank Entry"),
        ([("Amazon Payouts", "debit", 10.0), ("Current Assets", "credit", 10.0)], {},
         "Account Current Assets - ATC is a Group Account and group accounts cannot be used in transactions"),
        ([("Amazon Payouts", "debit", 10.0), ("Sales", "credit", 9.99)], {},
         "Total Debit must be equal to Total Credit. The difference is 0.01"),
    ],
)  # fmt: skip
def test_refusals(erp: ErpNextSimulator, rows: list[tuple[str, str, float]], extra: dict[str, Any],
                  message: str) -> None:  # fmt: skip
    r = _post(erp, _je(rows, **extra))
    assert r.status_code in (404, 417), r.text
    assert message in r.json().get("exception", "") + r.json().get("_server_messages", "")
    assert erp.docs("Journal Entry") == [] and erp.docs("GL Entry") == []


def test_foreign_currency_rows_use_the_given_or_looked_up_rate(erp: ErpNextSimulator) -> None:
    def post(rate: float | None) -> dict[str, Any]:
        body = _je([("Sales", "credit", 110.0)], multi_currency=1)
        row: dict[str, Any] = {"account": "Amazon EUR Payouts - ATC", "debit_in_account_currency": 100.0}
        if rate is not None:
            row["exchange_rate"] = rate
        body["accounts"].insert(0, row)
        r = _post(erp, body)
        return {"status": r.status_code, **r.json()}

    given = post(1.1)
    assert given["status"] == 200 and given["data"]["accounts"][0]["debit"] == 110.0
    silent = post(None)  # no Currency Exchange: ERPNext takes 1 and the entry no longer balances
    assert silent["status"] == 417 and "The difference is -10.0" in silent["exception"]
    erp.insert_doc("Currency Exchange", {"date": "2026-10-01", "from_currency": "EUR", "to_currency": "USD",
                                         "exchange_rate": 1.1, "for_selling": 1})  # fmt: skip
    looked_up = post(None)
    assert looked_up["status"] == 200 and looked_up["data"]["accounts"][0]["exchange_rate"] == 1.1


def test_accounts_must_exist_belong_to_the_company_and_be_enabled(erp: ErpNextSimulator) -> None:
    erp.insert_doc("Company", {"company_name": "Other Co", "abbr": "OC", "default_currency": "USD"})
    erp.insert_doc("Account", {"name": "Other Bank - OC", "account_name": "Other Bank", "company": "Other Co",
                               "is_group": 0, "root_type": "Asset", "account_currency": "USD"})  # fmt: skip
    erp.insert_doc("Account", {"name": "Old Fees - ATC", "account_name": "Old Fees", "company": "Amz Test Co",
                               "is_group": 0, "root_type": "Expense", "disabled": 1, "account_currency": "USD"})  # fmt: skip
    cases = {
        "Nope - ATC": "Could not find Row #2: Account: Nope - ATC",
        "Other Bank - OC": "Account Other Bank - OC does not belong to Company Amz Test Co",
        "Old Fees - ATC": "Account Old Fees - ATC is inactive",
    }
    for account, message in cases.items():
        body = _je([("Amazon Payouts", "debit", 10.0)])
        body["accounts"].append({"account": account, "credit_in_account_currency": 10.0})
        r = _post(erp, body)
        assert r.status_code in (404, 417) and message in r.json()["exception"], r.text
    assert erp.docs("Journal Entry") == [] and erp.docs("GL Entry") == []


def test_settlement_id_custom_field_filters_and_draft_submit(erp: ErpNextSimulator) -> None:
    erp.insert_doc("Custom Field", {"dt": "Journal Entry", "fieldname": "amazon_settlement_id", "fieldtype": "Data",
                                    "label": "Amazon Settlement ID", "search_index": 1}, validate=True)  # fmt: skip
    draft = _post(erp, _je([("Amazon Payouts", "debit", 5.0), ("Sales", "credit", 5.0)], docstatus=0,
                           amazon_settlement_id="555"))  # fmt: skip
    assert draft.status_code == 200 and erp.docs("GL Entry") == []
    name = draft.json()["data"]["name"]
    listed = requests.get(f"{erp.url}/api/resource/Journal Entry", headers={"Authorization": erp.auth_header},
                          params={"filters": json.dumps([["amazon_settlement_id", "=", "555"]]),
                                  "fields": json.dumps(["name", "docstatus"])})  # fmt: skip
    assert listed.json()["data"] == [{"name": name, "docstatus": 0}]
    put = requests.put(f"{erp.url}/api/resource/Journal Entry/{name}", json={"docstatus": 1},
                       headers={"Authorization": erp.auth_header})  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json()["data"]["docstatus"] == 1 and "status" not in put.json()["data"]
    assert erpnext_journal.account_balances(erp)["Amazon Payouts - ATC"] == Decimal("5.00")
