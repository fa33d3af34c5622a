"""ErpNextClient: error shapes from the real v15 recordings, retry safety, pagination, threads, secrets."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from requests.adapters import BaseAdapter

from amz2erp.config import ErpNextSettings
from amz2erp.erpnext.client import ErpNextClient, error_from_response, server_messages, strip_html
from amz2erp.errors import (
    ErpNextAuthError,
    ErpNextClosedPeriodError,
    ErpNextConfigError,
    ErpNextConflictError,
    ErpNextDuplicateError,
    ErpNextError,
    ErpNextFiscalYearError,
    ErpNextNegativeStockError,
    ErpNextNotFoundError,
    ErpNextStockOverReturnError,
    ErpNextUnavailableError,
    ErpNextValidationError,
)
from tests.conftest import ERPNEXT_RECORDINGS

RECORDINGS = ERPNEXT_RECORDINGS
URL = "http://127.0.0.1:9"  # never dialled: requests go to the fake adapter mounted on it
KEY, SECRET = "k3y-AAAA1111", "s3cr3t-BBBB2222"


def load(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / name).read_text())


def all_recordings() -> list[str]:
    return sorted(p.name for p in RECORDINGS.glob("[0-9]*.json"))


# --- a fake transport ------------------------------------------------------------------------------------


class Fake(BaseAdapter):
    """Answers requests from a handler: handler(request) -> response | exception to raise."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], Any]) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[requests.PreparedRequest] = []
        self.kwargs: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self.lock:
            self.requests.append(request)
            self.kwargs.append(kwargs)
        out = self.handler(request)
        if isinstance(out, BaseException):
            raise out
        out.request = request
        out.url = request.url or ""
        return out

    def close(self) -> None:
        pass

    def sent(self, method: str | None = None) -> list[requests.PreparedRequest]:
        return [r for r in self.requests if method is None or r.method == method]


def response(
    status: int, body: Any = None, *, text: str | None = None, ctype: str = "application/json"
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    if text is not None:
        resp._content = text.encode()
        resp.headers["Content-Type"] = "text/html"
    else:
        resp._content = json.dumps(body).encode()
        resp.headers["Content-Type"] = ctype
    return resp


def settings(**kw: Any) -> ErpNextSettings:
    data: dict[str, Any] = {"url": URL, "api_key": KEY, "api_secret": SECRET, "max_retries": 3}
    data.update(kw)
    return ErpNextSettings.model_validate(data)


def make_client(handler: Callable[[requests.PreparedRequest], Any], **kw: Any) -> tuple[ErpNextClient, Fake]:
    fake = Fake(handler)
    session = requests.Session()
    session.mount(URL + "/", fake)
    sleeps: list[float] = []
    client = ErpNextClient(settings(**kw), session=session, backoff=0.01, sleep=sleeps.append)
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client, fake


def path_of(req: requests.PreparedRequest) -> str:
    return urlsplit(req.url or "").path


def query_of(req: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(req.url or "").query).items()}


def body_of(req: requests.PreparedRequest) -> Any:
    return json.loads(req.body) if req.body else None


# --- error shapes: every error recording ----------------------------------------------------------------

EXPECTED: dict[str, type[ErpNextError]] = {
    "003-auth-wrong-secret.json": ErpNextAuthError,
    "004-auth-missing-item-list.json": ErpNextAuthError,
    "005-auth-missing-post-item.json": ErpNextAuthError,
    "013-company-list-bad-field.json": ErpNextValidationError,
    "015-item-get-missing.json": ErpNextNotFoundError,
    "017-cf-so-amazon-order-id-dup.json": ErpNextDuplicateError,
    "021-item-create-dup.json": ErpNextDuplicateError,
    "022-item-create-no-item-group.json": ErpNextValidationError,
    "023-item-create-bad-group.json": ErpNextValidationError,
    "026-item-price-dup.json": ErpNextDuplicateError,
    "032-customer-create-no-name.json": ErpNextValidationError,
    "033-customer-create-bad-type.json": ErpNextValidationError,
    "039-address-create-no-line1.json": ErpNextValidationError,
    "040-address-create-bad-country.json": ErpNextValidationError,
    "043-account-create-dup.json": ErpNextDuplicateError,
    "044-account-create-parent-ledger.json": ErpNextValidationError,
    "049-so-c1-eur-no-rate.json": ErpNextValidationError,
    "051-so-d-delivery-before-tx.json": ErpNextValidationError,
    "052-so-no-delivery-date.json": ErpNextValidationError,
    "053-so-e-qty-zero.json": ErpNextValidationError,
    "054-so-f-unknown-item.json": ErpNextNotFoundError,
    "055-so-unknown-customer.json": ErpNextNotFoundError,
    "056-so-g1-dup-po-no.json": ErpNextDuplicateError,
    "057-so-g2-dup-amazon-order-id.json": ErpNextDuplicateError,
    "063-so-put-stale-modified.json": ErpNextConflictError,
    "065-so-i2-submit-client-sparse.json": ErpNextConflictError,
    "068-so-j1-update-submitted.json": ErpNextConflictError,
    "070-so-j3-update-submitted-custom.json": ErpNextConflictError,
    "071-so-delete-submitted.json": ErpNextConflictError,
    "074-so-cancel-draft.json": ErpNextConflictError,
    "075-so-m1-amend-same-id.json": ErpNextDuplicateError,
    "080-so-p2-insert-many-one-bad.json": ErpNextNotFoundError,
    "083-malformed-json.json": ErpNextValidationError,
    "084-unknown-doctype.json": ErpNextValidationError,
    "085-unknown-method.json": ErpNextValidationError,
    "086-item-delete-linked.json": ErpNextConflictError,
    "087-customer-delete-linked.json": ErpNextConflictError,
    "088-so-delete-cancelled-with-amendment.json": ErpNextConflictError,
    # the finance recordings (invoices, delivery notes, credit notes, journal and payment entries)
    "104-fin-si-update-stock-no-stock.json": ErpNextNegativeStockError,
    "110-fin-si-past-due-date-no-set-posting-time.json": ErpNextValidationError,
    "113-fin-si-no-fiscal-year.json": ErpNextFiscalYearError,
    "115-fin-so-cancel-with-draft-si.json": ErpNextValidationError,
    "116-fin-je-no-fiscal-year.json": ErpNextFiscalYearError,
    "117-fin-si-closed-accounting-period.json": ErpNextClosedPeriodError,
    "118-fin-je-closed-accounting-period.json": ErpNextClosedPeriodError,
    "120-fin-dn-insert-submitted-no-stock.json": ErpNextNegativeStockError,
    "125-fin-cn-qty-positive.json": ErpNextValidationError,
    "126-fin-cn-qty-more-than-invoiced.json": ErpNextStockOverReturnError,
    "132-fin-je-a-bank-entry-no-cheque.json": ErpNextValidationError,
    "135-fin-je-c-unbalanced-submit.json": ErpNextValidationError,
    "137-fin-je-d-debit-only.json": ErpNextValidationError,
    "141-fin-je-e-receivable-no-party.json": ErpNextValidationError,
    "144-fin-je-f-group-account.json": ErpNextValidationError,
    "145-fin-je-g-duplicate-settlement-id.json": ErpNextDuplicateError,
    "149-fin-pe-negative-allocated.json": ErpNextValidationError,
    "150-fin-pe-bank-no-reference-no.json": ErpNextValidationError,
    "154-fin-je-insert-many-second-unbalanced.json": ErpNextValidationError,
    "157-fin-je-amend-same-settlement-id.json": ErpNextDuplicateError,
    "160-fin-je-delete-cancelled-ledger-kept.json": ErpNextConflictError,
}

EXPECTED_TYPES = {load(n)["response"]["json"]["exc_type"] for n in EXPECTED}


def test_every_error_recording_has_an_expectation() -> None:
    errors = [n for n in all_recordings() if load(n)["response"]["status"] >= 400]
    assert sorted(errors) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_error_mapping(name: str) -> None:
    rec = load(name)["response"]
    err = error_from_response(rec["status"], rec["json"], what="x")
    assert type(err) is EXPECTED[name]
    assert err.status == rec["status"]
    assert err.exc_type == rec["json"]["exc_type"]
    text = str(err)
    assert "<" not in text and "&quot;" not in text  # HTML stripped
    assert "Traceback" not in text
    assert len(text) > len("ERPNext x: ")


def test_error_messages_are_the_server_messages() -> None:
    def msg(name: str) -> str:
        rec = load(name)["response"]
        return str(error_from_response(rec["status"], rec["json"], what="insert Item"))

    assert msg("015-item-get-missing.json") == "ERPNext insert Item: Item NO-SUCH-SKU not found"
    assert msg("017-cf-so-amazon-order-id-dup.json").endswith(
        "A field with the name amazon_order_id already exists in Sales Order"
    )
    both = msg("049-so-c1-eur-no-rate.json")
    assert "Unable to find exchange rate for EUR to USD" in both and "Exchange Rate is mandatory" in both
    assert "authentication failed" in msg("003-auth-wrong-secret.json")
    assert msg("057-so-g2-dup-amazon-order-id.json").endswith("Amazon Order ID must be unique")
    # no _server_messages: the text after "module.Class: "
    assert msg("084-unknown-doctype.json").endswith("No module named 'frappe.core.doctype.no_such_doctype'")
    assert msg("074-so-cancel-draft.json").endswith("Cannot change docstatus from 0 (Draft) to 2 (Cancelled)")
    assert msg("032-customer-create-no-name.json").endswith("'NoneType' object has no attribute 'strip'")
    linked = msg("056-so-g1-dup-po-no.json")
    assert "Sales Order SAL-ORD-2026-00001 already exists against Customer's Purchase Order" in linked


def test_server_messages_skips_alerts_and_decodes_nested_json() -> None:
    ok = load("047-so-b-taxes.json")["response"]["json"]
    assert server_messages(ok) == []  # "Item Price added ..." is an alert, not a reason
    assert server_messages({"_server_messages": json.dumps([json.dumps({"message": "a <b>b</b>"})])}) == [
        "a b"
    ]
    assert strip_html("x&nbsp;<a href='u'>y</a>\n z") == "x y z"


def test_html_error_page_and_unknown_5xx() -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    err = error_from_response(502, None, text=page)
    assert isinstance(err, ErpNextUnavailableError)
    assert "502 Bad Gateway" in str(err) and "<" not in str(err)


# --- replaying the recordings through the client -----------------------------------------------------------


def _invoke(client: ErpNextClient, req: dict[str, Any]) -> Any:
    path: str = req["path"]
    method: str = req["method"]
    body = req.get("json_body") or {}
    parts = path.split("/", 4)
    if parts[2] == "resource":
        doctype = parts[3]
        name = parts[4] if len(parts) > 4 else None
        if method == "GET" and name is not None:
            return client.get(doctype, name)
        if method == "GET":
            return list(client.list(doctype))
        if method == "POST":
            return client.insert(doctype, body)
        if method == "PUT":
            return client.update(doctype, str(name), body)
        return client.delete(doctype, str(name))
    if method == "GET":
        return client.get_method(parts[3])
    return client.call(parts[3], **body)


@pytest.mark.parametrize("name", all_recordings())
def test_replay_recording(name: str) -> None:
    """Each recorded exchange through the public API: same wire path, typed error or the payload."""
    rec = load(name)
    recorded = rec["response"]

    def handler(req: requests.PreparedRequest) -> requests.Response:
        return response(recorded["status"], recorded.get("json"))

    client, fake = make_client(handler)
    expected = EXPECTED.get(name)
    if expected is not None and not (
        expected is ErpNextNotFoundError and rec["request"]["method"] in ("GET", "DELETE")
    ):
        with pytest.raises(expected) as info:
            _invoke(client, rec["request"])
        assert info.value.status == recorded["status"]
        if recorded["status"] < 500 or rec["request"]["method"] != "GET":
            assert len(fake.requests) == 1  # a definite answer is never repeated
    else:
        result = _invoke(client, rec["request"])
        if expected is ErpNextNotFoundError:
            assert result in (None, False)
        elif isinstance(result, dict) and isinstance(recorded["json"].get("data"), dict):
            assert result["name"] == recorded["json"]["data"]["name"]
        elif isinstance(result, list) and isinstance(recorded["json"].get("data"), list):
            assert result == recorded["json"]["data"]
    sent = fake.requests[0]
    assert path_of(sent) == rec["request"]["path_encoded"]
    assert sent.method == rec["request"]["method"]
    assert sent.headers["Authorization"] == f"token {KEY}:{SECRET}"


def test_invoice_errors_are_typed_validation_errors() -> None:
    """The invoice writer tells these apart (a per-order stock problem, a closed period, no fiscal year); they
    stay ValidationErrors (RecordError: one record fails, the run goes on)."""
    for name, cls in (("104-fin-si-update-stock-no-stock.json", ErpNextNegativeStockError),
                      ("126-fin-cn-qty-more-than-invoiced.json", ErpNextStockOverReturnError),
                      ("117-fin-si-closed-accounting-period.json", ErpNextClosedPeriodError),
                      ("113-fin-si-no-fiscal-year.json", ErpNextFiscalYearError)):
        rec = load(name)["response"]
        err = error_from_response(rec["status"], rec["json"], what="insert Sales Invoice")
        assert isinstance(err, cls) and isinstance(err, ErpNextValidationError), name
    rec = load("117-fin-si-closed-accounting-period.json")["response"]
    assert str(error_from_response(rec["status"], rec["json"], what="insert Sales Invoice")) == (
        "ERPNext insert Sales Invoice: You cannot create a Sales Invoice within the closed Accounting Period "
        "AMZ-FIN-TEST 2024-01 - ATC")


def test_make_mapped_posts_source_and_filtered_children_and_retries_like_a_read() -> None:
    rec = load("103-fin-si-make-from-so.json")
    answers = iter([response(502, text="<title>Bad Gateway</title>"), response(200, rec["response"]["json"])])
    client, fake = make_client(lambda req: next(answers))
    doc = client.make_mapped(rec["request"]["path"].rsplit("/", 1)[-1], "SAL-ORD-2026-01413",
                             filtered_children=["01586dccnp"])
    assert doc["items"][0]["so_detail"] == "01586dccnp" and doc["docstatus"] == 0
    assert [path_of(r) for r in fake.requests] == [rec["request"]["path_encoded"]] * 2  # nothing is written: resent
    assert body_of(fake.requests[1]) == {"source_name": "SAL-ORD-2026-01413",
                                         "args": {"filtered_children": ["01586dccnp"]}}
    with pytest.raises(ValueError):
        client.make_mapped("frappe.client.delete", "X")


def test_submit_uses_put_docstatus_and_gets_the_real_status() -> None:
    rec = load("064-so-i1-submit-put.json")
    client, fake = make_client(lambda req: response(200, rec["response"]["json"]))
    doc = client.submit("Sales Order", "SAL-ORD-2026-00001")
    assert doc["status"] == "To Deliver and Bill" and doc["docstatus"] == 1
    assert fake.requests[0].method == "PUT" and body_of(fake.requests[0]) == {"docstatus": 1}


def test_update_sales_order_status_and_insert_many_wire_shape() -> None:
    answers = {
        "/api/method/erpnext.selling.doctype.sales_order.sales_order.update_status": response(200, {}),
        "/api/method/frappe.client.insert_many": response(200, {"message": ["SO-1", "SO-2"]}),
    }
    client, fake = make_client(lambda req: answers[path_of(req)])
    client.update_sales_order_status("SO-1", "Draft")
    assert body_of(fake.requests[0]) == {"status": "Draft", "name": "SO-1"}
    names = client.insert_many("Sales Order", [{"customer": "a"}, {"customer": "b"}])
    assert names == ["SO-1", "SO-2"]
    assert body_of(fake.requests[1]) == {
        "docs": [{"customer": "a", "doctype": "Sales Order"}, {"customer": "b", "doctype": "Sales Order"}]
    }


def test_insert_many_chunks_by_200() -> None:
    calls: list[int] = []

    def handler(req: requests.PreparedRequest) -> requests.Response:
        docs = body_of(req)["docs"]
        calls.append(len(docs))
        return response(200, {"message": [d["po_no"] for d in docs]})

    client, _ = make_client(handler)
    docs = [{"po_no": f"P{i}"} for i in range(450)]
    assert client.insert_many("Sales Order", docs) == [f"P{i}" for i in range(450)]
    assert calls == [200, 200, 50]


# --- retry safety ------------------------------------------------------------------------------------------------

DOC = {"name": "SAL-ORD-1", "amazon_order_id": "111-1", "docstatus": 0}


class Script:
    """POST answers from a script; GET list/get answers from the current server state."""

    def __init__(self, posts: list[Any], *, stored: list[dict[str, Any]] | None = None) -> None:
        self.posts = posts
        self.stored = stored if stored is not None else []
        self.commit_on_post: list[bool] = []

    def __call__(self, req: requests.PreparedRequest) -> Any:
        path = unquote(path_of(req))
        if req.method == "POST":
            outcome, commits = self.posts.pop(0)
            if commits:
                self.stored.append(dict(DOC))
            return outcome
        if path == "/api/resource/Sales Order":
            filters = json.loads(query_of(req).get("filters", "[]"))
            rows = [d for d in self.stored if all(d.get(f) == v for f, op, v in filters if op == "=")]
            return response(200, {"data": [{"name": d["name"]} for d in rows]})
        if path.startswith("/api/resource/Sales Order/"):
            return response(200, {"data": self.stored[0]}) if self.stored else response(404, {})
        raise AssertionError(path)


def test_insert_timeout_after_commit_is_found_by_key_not_resent() -> None:
    script = Script([(requests.exceptions.ReadTimeout("read timed out"), True)])
    client, fake = make_client(script)
    doc = client.insert("Sales Order", {"amazon_order_id": "111-1"}, key={"amazon_order_id": "111-1"})
    assert doc["name"] == "SAL-ORD-1"
    assert len(fake.sent("POST")) == 1
    assert len(script.stored) == 1
    lookup = json.loads(query_of(fake.sent("GET")[0])["filters"])
    assert ["amazon_order_id", "=", "111-1"] in lookup and ["docstatus", "!=", 2] in lookup


def test_insert_ambiguous_failure_without_commit_is_resent() -> None:
    ok = response(200, {"data": DOC})
    script = Script([(response(502, text="<html><title>502 Bad Gateway</title></html>"), False), (ok, True)])
    client, fake = make_client(script)
    doc = client.insert("Sales Order", {"amazon_order_id": "111-1"}, key={"amazon_order_id": "111-1"})
    assert doc["name"] == "SAL-ORD-1"
    assert len(fake.sent("POST")) == 2 and len(script.stored) == 1


def test_insert_late_commit_then_duplicate_resolves_through_key() -> None:
    """The first POST times out and commits only after our lookup; the resend hits the unique guard."""
    dup = load("057-so-g2-dup-amazon-order-id.json")["response"]
    script = Script([(requests.exceptions.ReadTimeout("late"), False), (response(417, dup["json"]), False)])
    client, fake = make_client(script)
    original = script.__call__

    def late_commit(req: requests.PreparedRequest) -> Any:
        if req.method == "POST" and len(script.posts) == 1:
            script.stored.append(dict(DOC))  # the first request's commit lands now
        return original(req)

    fake.handler = late_commit
    doc = client.insert("Sales Order", {"amazon_order_id": "111-1"}, key={"amazon_order_id": "111-1"})
    assert doc["name"] == "SAL-ORD-1"
    assert len(script.stored) == 1 and len(fake.sent("POST")) == 2


def test_insert_without_key_is_not_repeated_after_ambiguous_failure() -> None:
    script = Script([(requests.exceptions.ReadTimeout("read timed out"), True)])
    client, fake = make_client(script)
    with pytest.raises(ErpNextUnavailableError, match="not sent again"):
        client.insert("Sales Order", {"amazon_order_id": "111-1"})
    assert len(fake.requests) == 1


def test_insert_500_with_frappe_exception_is_definite_not_retried() -> None:
    rec = load("032-customer-create-no-name.json")["response"]
    client, fake = make_client(lambda req: response(500, rec["json"]))
    with pytest.raises(ErpNextValidationError):
        client.insert("Customer", {"customer_type": "Individual"}, key={"customer_name": "x"})
    assert len(fake.requests) == 1


def test_insert_retried_when_nothing_was_sent_or_rolled_back() -> None:
    refused = requests.exceptions.ConnectionError(
        "HTTPConnectionPool: NewConnectionError: Connection refused"
    )
    deadlock = response(500, {"exc_type": "QueryDeadlockError", "exception": "frappe.QueryDeadlockError: x"})
    script = Script(
        [
            (deadlock, False),  # an answer first: a refusal before any answer is a wrong URL, not retried
            (refused, False),
            (response(429, {}), False),
            (response(200, {"data": DOC}), True),
        ]
    )
    client, fake = make_client(script)
    assert client.insert("Sales Order", {"a": 1})["name"] == "SAL-ORD-1"  # no key needed: never ambiguous
    assert len(fake.sent("POST")) == 4 and not fake.sent("GET")


def test_insert_gives_up_after_max_retries() -> None:
    script = Script([(requests.exceptions.ReadTimeout("t"), False) for _ in range(10)])
    client, fake = make_client(script, max_retries=2)
    with pytest.raises(ErpNextUnavailableError, match="gave up after 3 attempts"):
        client.insert("Sales Order", {"a": 1}, key={"amazon_order_id": "111-1"})
    assert len(fake.sent("POST")) == 3


def test_reads_retry_5xx_timeouts_resets_with_growing_backoff() -> None:
    outcomes: list[Any] = [
        response(502, text="<html><title>502 Bad Gateway</title></html>"),
        requests.exceptions.ReadTimeout("t"),
        requests.exceptions.ConnectionError("Connection reset by peer"),
        response(200, {"data": {"name": "X"}}),
    ]
    client, fake = make_client(lambda req: outcomes.pop(0), max_retries=5)
    assert client.get("Item", "X") == {"name": "X"}
    assert len(fake.requests) == 4
    sleeps = client.sleeps  # type: ignore[attr-defined]
    assert len(sleeps) == 3 and all(0 < s <= 30 for s in sleeps)
    assert sleeps[2] > sleeps[0]  # exponential (jitter is at most a factor 2)


def test_reads_give_up_with_unavailable() -> None:
    client, fake = make_client(
        lambda req: response(503, text="<title>Service Unavailable</title>"), max_retries=2
    )
    with pytest.raises(ErpNextUnavailableError, match="gave up after 3 attempts"):
        client.get("Item", "X")
    assert len(fake.requests) == 3


def test_retry_after_header_is_honoured() -> None:
    throttled = response(429, {"exc_type": "RateLimitExceededError"})
    throttled.headers["Retry-After"] = "7"
    outcomes = [throttled, response(200, {"message": "Administrator"})]
    client, _ = make_client(lambda req: outcomes.pop(0))
    assert client.logged_user() == "Administrator"
    assert client.sleeps == [7.0]  # type: ignore[attr-defined]


def test_cancel_and_delete_are_safe_after_ambiguous_failure() -> None:
    state = {"docstatus": 1, "exists": True, "cancel_posts": 0}

    def handler(req: requests.PreparedRequest) -> Any:
        path = unquote(path_of(req))
        if path == "/api/method/frappe.client.cancel":
            state["cancel_posts"] += 1
            state["docstatus"] = 2
            return requests.exceptions.ReadTimeout("t")
        if req.method == "DELETE":
            state["exists"] = False
            return requests.exceptions.ConnectionError("Connection aborted. RemoteDisconnected")
        if path == "/api/resource/Sales Order/SO-1":
            return response(200, {"data": {"name": "SO-1", "docstatus": state["docstatus"]}})
        if path == "/api/resource/Sales Order":
            return response(200, {"data": [{"name": "SO-1"}] if state["exists"] else []})
        raise AssertionError(path)

    client, _ = make_client(handler)
    assert client.cancel("Sales Order", "SO-1")["docstatus"] == 2
    assert state["cancel_posts"] == 1
    assert client.delete("Sales Order", "SO-1") is True


def test_ping_and_non_json_answers() -> None:
    client, _ = make_client(lambda req: response(200, text="<html>login</html>"))
    assert client.ping() is False
    with pytest.raises(ErpNextConfigError, match=r"answered a web page .*not ERPNext's REST API"):
        client.logged_user()
    client, _ = make_client(lambda req: response(200, {"message": "pong"}))
    assert client.ping() is True


# --- pagination ---------------------------------------------------------------------------------------------------


def paged_server(
    rows: list[dict[str, Any]], *, honour_start: bool = True, honour_length: bool = True
) -> Callable[[requests.PreparedRequest], requests.Response]:
    def handler(req: requests.PreparedRequest) -> requests.Response:
        q = query_of(req)
        start = int(q.get("limit_start", 0)) if honour_start else 0
        length = int(q.get("limit_page_length", 20)) if honour_length else 0
        page = rows[start : start + length] if length else rows[start:]
        return response(200, {"data": page})

    return handler


ROWS = [{"name": f"ITEM-{i:05d}"} for i in range(1234)]


def test_list_pages_through_everything_once() -> None:
    client, fake = make_client(paged_server(ROWS))
    got = list(client.list("Item", fields=["name"], filters={"disabled": 0}, page_size=500))
    assert got == ROWS
    assert [query_of(r)["limit_start"] for r in fake.requests] == ["0", "500", "1000"]
    q = query_of(fake.requests[0])
    assert q["order_by"] == "name asc" and json.loads(q["filters"]) == {"disabled": 0}
    assert json.loads(q["fields"]) == ["name"]


def test_list_exact_multiple_and_limit() -> None:
    client, fake = make_client(paged_server(ROWS[:1000]))
    assert len(list(client.list("Item", page_size=500))) == 1000
    assert len(fake.requests) == 3  # the third, empty page says "the end"
    client, fake = make_client(paged_server(ROWS))
    assert list(client.list("Item", limit=600, page_size=500)) == ROWS[:600]
    assert [query_of(r)["limit_page_length"] for r in fake.requests] == ["500", "100"]


def test_list_refuses_a_server_that_ignores_limit_start() -> None:
    client, _ = make_client(paged_server(ROWS, honour_start=False))
    with pytest.raises(ErpNextError, match="repeats the previous one"):
        list(client.list("Item", page_size=100))


def test_list_server_ignoring_page_length_returns_all_once() -> None:
    client, fake = make_client(paged_server(ROWS, honour_length=False))
    assert list(client.list("Item", page_size=100)) == ROWS
    assert len(fake.requests) == 1


def test_find_exists_get_value() -> None:
    client, fake = make_client(paged_server([{"name": "A", "abbr": "ATC"}]))
    assert client.find("Company", {"abbr": "ATC"}, fields=("name", "abbr")) == {"name": "A", "abbr": "ATC"}
    assert client.exists("Company", "A") is True
    assert client.get_value("Company", "A", "abbr") == "ATC"
    assert all(query_of(r)["limit_page_length"] == "1" for r in fake.requests)
    client, _ = make_client(paged_server([]))
    assert client.find("Company", {"abbr": "X"}) is None and client.exists("Company", "X") is False


# --- secrets, http warning, stats ----------------------------------------------------------------------------------


def test_secrets_never_in_exception_messages() -> None:
    echo = {
        "exc_type": "ValidationError",
        "_server_messages": json.dumps([json.dumps({"message": f"bad header token {KEY}:{SECRET}"})]),
    }
    client, _ = make_client(lambda req: response(417, echo))
    with pytest.raises(ErpNextValidationError) as info:
        client.insert("Item", {"item_code": "x"})
    assert KEY not in str(info.value) and SECRET not in str(info.value) and "***" in str(info.value)

    def boom(req: requests.PreparedRequest) -> Exception:
        return requests.exceptions.ConnectionError(f"failed with {req.headers['Authorization']}")

    client, _ = make_client(boom, max_retries=0)
    with pytest.raises(ErpNextUnavailableError) as info2:
        client.get("Item", "x")
    assert KEY not in str(info2.value) and SECRET not in str(info2.value)
    assert KEY not in repr(client) and SECRET not in repr(client)
    rec = load("003-auth-wrong-secret.json")["response"]
    client, _ = make_client(lambda req: response(401, rec["json"]))
    with pytest.raises(ErpNextAuthError) as info3:
        client.logged_user()
    assert SECRET not in str(info3.value) and "api_secret" in str(info3.value)


def test_plain_http_warning_once_and_not_for_loopback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="amz2erp.erpnext.client")
    for _ in range(2):
        ErpNextClient(settings(url="http://erp.warn-test.invalid"), session=requests.Session())
    ErpNextClient(settings(url="http://127.0.0.1:8000"), session=requests.Session())
    ErpNextClient(settings(url="http://localhost:8000"), session=requests.Session())
    ErpNextClient(settings(url="https://erp.secure.invalid"), session=requests.Session())
    warnings = [r for r in caplog.records if "plain http" in r.getMessage()]
    assert len(warnings) == 1 and "erp.warn-test.invalid" in warnings[0].getMessage()


def test_stats_count_requests_per_method_and_doctype() -> None:
    client, _ = make_client(paged_server(ROWS[:10]))
    list(client.list("Item", page_size=4))
    client.get_value("Company", "A", "abbr")
    snap = client.stats.snapshot()
    assert snap["GET Item"]["count"] == 3 and snap["GET Company"]["count"] == 1
    assert client.stats.total_requests == 4 and client.stats.count("GET Item") == 3
    client.stats.reset()
    assert client.stats.total_requests == 0


# --- a real socket server: pooling and thread safety ----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    created: ClassVar[dict[str, str]] = {}
    seen_cookies: ClassVar[list[str]] = []
    ports: ClassVar[set[int]] = set()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Set-Cookie", "sid=Guest; Path=/")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.ports.add(self.client_address[1])
            if self.headers.get("Cookie"):
                self.seen_cookies.append(self.headers["Cookie"])
            if self.headers.get("Authorization") != f"token {KEY}:{SECRET}":
                self._reply(401, {"exc_type": "AuthenticationError"})
                return
            name = body["item_code"]
            if name in self.created:
                self._reply(409, {"exc_type": "DuplicateEntryError"})
                return
            self.created[name] = threading.current_thread().name
        self._reply(200, {"data": {"name": name}})


def test_shared_client_is_thread_safe_and_pools_connections() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        client = ErpNextClient(settings(url=f"http://127.0.0.1:{port}", workers=4))
        codes = [f"SKU-{i:04d}" for i in range(200)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            names = list(pool.map(lambda c: client.insert("Item", {"item_code": c})["name"], codes))
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert names == codes
    assert sorted(_Handler.created) == codes
    assert _Handler.seen_cookies == []  # the Guest cookie is never sent back
    assert client.stats.count("POST Item") == 200
    assert len(_Handler.ports) < 50  # connections were reused, not one per request


def test_unreachable_server_is_unavailable_quickly() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = ErpNextClient(settings(url=f"http://127.0.0.1:{port}", max_retries=3), backoff=0.01)
    assert client.ping() is False
    # the site never answered: a refusal is a wrong URL or a stopped ERPNext, said at once, not retried
    with pytest.raises(ErpNextUnavailableError, match=f"nothing listens at 127.0.0.1:{port}") as err:
        client.get("Item", "x")
    assert err.value.exit_code == 4 and "gave up" not in str(err.value)
    assert client.stats.count("GET Item") == 1


def test_redirects_are_refused_not_followed() -> None:
    moved = response(301, text="<html>moved</html>")
    moved.headers["Location"] = "https://erp.example.com/api/resource/Item"
    client, fake = make_client(lambda req: moved)
    with pytest.raises(ErpNextConfigError, match=r"redirects \(HTTP 301\) to https://erp\.example\.com") as err:
        client.insert("Item", {"item_code": "x"})
    assert err.value.exit_code == 2
    assert len(fake.requests) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings_(max_examples=200, deadline=None)
@given(
    status=st.integers(min_value=400, max_value=599),
    exc_type=st.none() | st.sampled_from(sorted(EXPECTED_TYPES)) | st.text(max_size=20),
    messages=st.lists(st.text(max_size=40) | json_values, max_size=3),
    extra=st.dictionaries(st.sampled_from(["exception", "_error_message", "message", "exc"]), json_values),
    raw_messages=st.booleans(),
)
def test_error_from_response_total_and_never_leaks(
    status: int, exc_type: str | None, messages: list[Any], extra: dict[str, Any], raw_messages: bool
) -> None:
    body: dict[str, Any] = dict(extra)
    if exc_type is not None:
        body["exc_type"] = exc_type
    secret_messages = [f"{m} token {KEY}:{SECRET}" if isinstance(m, str) else m for m in messages]
    body["_server_messages"] = (
        json.dumps([json.dumps({"message": m}) for m in secret_messages])
        if not raw_messages
        else secret_messages
    )
    err = error_from_response(status, body, what="x", secrets=[KEY, SECRET])
    assert isinstance(err, ErpNextError) and err.status == status
    assert KEY not in str(err) and SECRET not in str(err)
    if status in (401, 403):
        assert isinstance(err, ErpNextAuthError)


def test_tls_verification_off_warns_once_and_is_passed_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="amz2erp.erpnext.client")
    client, fake = make_client(lambda req: response(200, {"message": "pong"}), verify_tls=False, timeout=12)
    make_client(lambda req: response(200, {}), verify_tls=False)
    assert client.ping() is True
    assert fake.kwargs[0]["verify"] is False
    # explicit (connect, read) timeouts; the connect timeout is short until the site has answered once
    assert fake.kwargs[0]["timeout"] == (5.0, 12.0)
    assert client.ping() is True
    assert fake.kwargs[1]["timeout"] == (10.0, 12.0)
    assert [r.getMessage() for r in caplog.records].count(
        f"TLS certificate verification is off for {URL} ([erpnext] verify_tls = false)"
    ) == 1
