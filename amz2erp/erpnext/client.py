"""The one module that talks to ERPNext (Frappe REST API v1, token auth, on requests).

Retry rules (the reason this module exists):

* Reads (GET, and writes that are idempotent by nature: PUT of absolute values, submit, the status
  recompute) are retried on transport errors, timeouts, 429 and any 5xx, with exponential backoff and
  jitter, at most ``settings.max_retries`` times.
* Writes that create something are never retried blindly. A failure is *safe* when the server cannot have
  processed the request (the connection was never made, 429, or a Frappe error body naming a transient
  database error: Frappe rolled the transaction back) and is then retried. A failure is *ambiguous* when
  the server may have committed (read timeout, reset after sending, 502/503/504 or a 5xx without a Frappe
  error body). After an ambiguous failure ``insert(..., key=...)`` waits, looks the document up by its
  natural key and returns it if the server had committed, else sends it again; a duplicate error on such
  a resend also resolves through the key. Without a key an ambiguous insert raises
  ErpNextUnavailableError and is not repeated.
* Frappe's error bodies become typed exceptions (see ``error_from_response``) that carry the server's human
  message, the HTTP status and Frappe's ``exc_type``. Secrets never appear in messages.
"""

from __future__ import annotations

import builtins
import html
import ipaddress
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http.cookiejar import DefaultCookiePolicy
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from amz2erp.config import ErpNextSettings
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
from amz2erp.log import SecretMasker

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_CONNECT_TIMEOUT = 5.0  # seconds, until the site has answered once
INSERT_MANY_MAX = 200  # frappe.client.insert_many refuses more per call
SO_UPDATE_STATUS = "erpnext.selling.doctype.sales_order.sales_order.update_status"
# Whitelisted mappers: they answer an unsaved document made from a submitted one and write nothing.
MAKE_SALES_INVOICE = "erpnext.selling.doctype.sales_order.sales_order.make_sales_invoice"
MAKE_DELIVERY_NOTE = "erpnext.selling.doctype.sales_order.sales_order.make_delivery_note"
MAKE_SALES_RETURN = "erpnext.accounts.doctype.sales_invoice.sales_invoice.make_sales_return"
MAKE_METHODS = frozenset({MAKE_SALES_INVOICE, MAKE_DELIVERY_NOTE, MAKE_SALES_RETURN})

AUTH_EXC = frozenset({"AuthenticationError", "PermissionError", "CSRFTokenError", "SessionExpired"})
NOT_FOUND_EXC = frozenset({"DoesNotExistError", "PageDoesNotExistError"})
DUPLICATE_EXC = frozenset({"DuplicateEntryError", "UniqueValidationError", "ItemPriceDuplicateItem"})
CONFLICT_EXC = frozenset(
    {
        "TimestampMismatchError",
        "UpdateAfterSubmitError",
        "DocstatusTransitionError",
        "CancelledLinkError",
        "LinkExistsError",
        "DocumentLockedError",
    }
)
# Frappe error types after which the transaction was rolled back: a resend is safe and may succeed.
SAFE_RETRY_EXC = frozenset({"QueryDeadlockError", "QueryTimeoutError", "RateLimitExceededError"})
# Database connection errors: a commit may or may not have happened (MySQL 2013 during COMMIT).
AMBIGUOUS_EXC = frozenset({"OperationalError", "InterfaceError"})
# Validation errors the invoice writer tells apart (recordings 104/120, 126, 117/118, 113/116).
TYPED_VALIDATION_EXC: dict[str, type[ErpNextValidationError]] = {
    "NegativeStockError": ErpNextNegativeStockError,
    "StockOverReturnError": ErpNextStockOverReturnError,
    "ClosedAccountingPeriod": ErpNextClosedPeriodError,
    "FiscalYearError": ErpNextFiscalYearError,
}
_CONFLICT_TEXT = re.compile(
    r"cannot edit (cancelled|submitted)|submitted record cannot be deleted|cannot (delete|cancel) because",
    re.IGNORECASE,
)
_DUPLICATE_TEXT = re.compile(r"already exists", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)

_warned_urls: set[object] = set()
_warn_lock = threading.Lock()


# --- error shapes -------------------------------------------------------------------------------------------


def strip_html(text: str) -> str:
    """Tags removed, entities decoded, whitespace collapsed."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def server_messages(body: Mapping[str, Any]) -> list[str]:
    """The human messages of a Frappe body: ``_server_messages`` is a JSON string holding a list of JSON
    strings, each an object with ``message``. Alerts (``alert: 1``) are notes, not reasons, and are skipped."""
    raw = body.get("_server_messages")
    if not raw:
        return []
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [strip_html(str(raw))]
    messages: list[str] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        item: Any = entry
        if isinstance(entry, str):
            try:
                item = json.loads(entry)
            except ValueError:
                item = {"message": entry}
        if isinstance(item, dict):
            if item.get("alert"):
                continue
            text = item.get("message")
        else:
            text = item
        if text is not None:
            cleaned = strip_html(str(text))
            if cleaned and cleaned not in messages:
                messages.append(cleaned)
    return messages


def _exception_text(body: Mapping[str, Any]) -> str | None:
    """``exception`` is "module.Class: message" (or just "module.Class"): the message part."""
    exc = body.get("exception")
    if not isinstance(exc, str) or not exc:
        return None
    head, sep, tail = exc.partition(": ")
    if not sep or " " in head:
        return None
    return strip_html(tail) or None


def error_from_response(
    status: int, body: Any, *, text: str = "", what: str = "", secrets: Iterable[str] = (),
    masker: SecretMasker | None = None,
) -> ErpNextError:
    """The typed exception for one error answer. ``body`` is the decoded JSON (or None), ``text`` the raw
    body (used for HTML pages), ``what`` a short description of the request for the message."""
    exc_type: str | None = None
    messages: list[str] = []
    if isinstance(body, dict):
        exc_type = body.get("exc_type") if isinstance(body.get("exc_type"), str) else None
        messages = server_messages(body)
        if not messages:
            alt = _exception_text(body) or body.get("_error_message") or body.get("message")
            if isinstance(alt, str) and alt.strip():
                messages = [strip_html(alt)]
    elif text:
        title = _HTML_TITLE.search(text)
        snippet = strip_html(title.group(1) if title else text)[:200]
        if snippet:
            messages = [snippet]
    detail = "; ".join(messages)
    if not detail:
        if status == 401 or exc_type == "AuthenticationError":
            detail = "authentication failed: check [erpnext] api_key and api_secret"
        elif exc_type:
            detail = exc_type
        else:
            detail = f"HTTP {status}"
    prefix = f"ERPNext {what}: " if what else "ERPNext: "
    message = (masker or SecretMasker(secrets)).mask(prefix + detail)

    cls: type[ErpNextError]
    if status in (401, 403) or exc_type in AUTH_EXC:
        cls = ErpNextAuthError
        if status == 403 and "permission" not in detail.lower():
            message += " (permission denied: give the API user the needed roles)"
    elif status == 404 or exc_type in NOT_FOUND_EXC:
        cls = ErpNextNotFoundError
    elif status == 409 or exc_type in DUPLICATE_EXC:
        cls = ErpNextDuplicateError
    elif exc_type in TYPED_VALIDATION_EXC:
        cls = TYPED_VALIDATION_EXC[exc_type]
    elif exc_type in CONFLICT_EXC or _CONFLICT_TEXT.search(detail):
        cls = ErpNextConflictError
    elif status == 429 or exc_type in SAFE_RETRY_EXC | AMBIGUOUS_EXC or (status >= 500 and not exc_type):
        cls = ErpNextUnavailableError
    elif exc_type == "ValidationError" and _DUPLICATE_TEXT.search(detail):
        cls = ErpNextDuplicateError
    else:
        cls = ErpNextValidationError
    return cls(message, status=status, exc_type=exc_type)


# --- what answered: ERPNext's API, or something else at a wrong URL ------------------------------------------


def url_fix(url: str) -> str:
    """The likely fix for an [erpnext] url that does not lead to the API: the site root, without a path."""
    parts = urlsplit(url)
    root = f"{parts.scheme}://{parts.netloc}"
    if parts.path.rstrip("/"):
        return f"set [erpnext] url to the site's root address {root!r}, without the path {parts.path!r}"
    return (
        "set [erpnext] url to the root address of the ERPNext site (where its login page is), "
        "e.g. 'https://erp.example.com'"
    )


def describe_non_api_answer(url: str, status: int, headers: Mapping[str, str], text: str) -> str | None:
    """What answered at ``url`` and the likely fix, when the answer cannot come from ERPNext's REST API
    (which answers JSON, never redirects and never serves pages); None for an answer that may be ERPNext's.

    A 5xx page is not diagnosed: a proxy answers one while ERPNext restarts, and that is worth retrying."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip()
    server = (headers.get("server") or "").strip()[:40]
    if 300 <= status < 400:
        location = headers.get("location") or "?"
        fix = url_fix(url) if urlsplit(url).path.rstrip("/") else "set [erpnext] url to the address it redirects to"
        return (
            f"{url} redirects (HTTP {status}) to {location}; amz2erp does not follow redirects (a redirected "
            f"write loses its body): {fix}"
        )
    if status >= 500 or not text.strip():
        return None
    try:
        json.loads(text)
        return None
    except ValueError:
        pass
    page = "html" in ctype.lower() or text.lstrip().startswith("<")
    details = [f"HTTP {status}", ctype or "no content type"]
    title = _HTML_TITLE.search(text[:4000])
    if title and strip_html(title.group(1)):
        details.append(f"page title {strip_html(title.group(1))[:60]!r}")
    if server:
        details.append(f"server {server!r}")
    what = "a web page" if page else "something that is not JSON"
    return f"{url} answered {what} ({', '.join(details)}), not ERPNext's REST API; {url_fix(url)}"


def describe_tls_error(url: str, exc: Exception) -> tuple[str, bool]:
    """A TLS failure in one line with its likely fix (requests' own text is a multi-line dump), and whether
    it is a configuration mistake (plain http on the port, an untrusted certificate) rather than a broken
    connection."""
    text = repr(exc.args[0]) if exc.args else repr(exc)
    parts = urlsplit(url)
    where = parts.netloc
    if any(m in text for m in ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure",
                               "packet length too long")):
        plain = f"http://{where}{parts.path}"
        return (
            f"{where} does not speak TLS (the port answers plain http): use {plain!r} if this is a plain-http "
            "port on a trusted network, or the https port of the site"
        ), True
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = re.search(r"certificate verify failed: ([^(')]+)", text)
        why = reason.group(1).strip() if reason else "not trusted"
        return (
            f"the TLS certificate of {where} is not accepted ({why}): fix the site's certificate, or point "
            "REQUESTS_CA_BUNDLE at your CA; set [erpnext] verify_tls = false only for a test site"
        ), True
    reason = re.search(r"\[SSL[^\]]*\] ([^(')]+)", text)
    return f"TLS connection to {where} failed ({reason.group(1).strip() if reason else type(exc).__name__})", False


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- statistics ---------------------------------------------------------------------------------------------


class RequestStats:
    """Request counts and seconds per "METHOD target" (target = doctype or method), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, list[float]] = {}

    def record(self, key: str, seconds: float, *, failed: bool = False) -> None:
        with self._lock:
            row = self._data.setdefault(key, [0, 0.0, 0])
            row[0] += 1
            row[1] += seconds
            if failed:
                row[2] += 1

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                key: {"count": int(c), "seconds": round(s, 6), "failed": int(f)}
                for key, (c, s, f) in sorted(self._data.items())
            }

    @property
    def total_requests(self) -> int:
        with self._lock:
            return int(sum(row[0] for row in self._data.values()))

    @property
    def total_seconds(self) -> float:
        with self._lock:
            return sum(row[1] for row in self._data.values())

    def count(self, key: str) -> int:
        with self._lock:
            return int(self._data.get(key, [0])[0])

    def reset(self) -> None:
        with self._lock:
            self._data.clear()


# --- the client -----------------------------------------------------------------------------------------------


class _Transport(Exception):
    """A request that got no HTTP answer. ``sent``: the server may have received it."""

    def __init__(self, exc: Exception, *, sent: bool) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.sent = sent


_SAFE, _AMBIGUOUS = "safe", "ambiguous"
_MISSING = object()
_RESOLVABLE = (ErpNextDuplicateError, ErpNextConflictError, ErpNextNotFoundError)


class ErpNextClient:
    """A thread-safe ERPNext REST client. One instance is shared by all worker threads."""

    def __init__(
        self,
        settings: ErpNextSettings,
        *,
        session: requests.Session | None = None,
        backoff: float = 0.5,
        backoff_ceiling: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        masker: SecretMasker | None = None,
    ) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.timeout = settings.timeout
        self.max_retries = settings.max_retries
        self.backoff = backoff
        self.backoff_ceiling = backoff_ceiling
        self._sleep = sleep
        self._secrets = [settings.api_key.get_secret_value(), settings.api_secret.get_secret_value()]
        self._masker = masker if masker is not None else SecretMasker()
        self._masker.add(self._secrets)
        self._headers = {
            "Authorization": f"token {self._secrets[0]}:{self._secrets[1]}",
            "Accept": "application/json",
        }
        self.stats = RequestStats()
        self._answered = False  # any HTTP answer yet: before one, a refused connection is not retried
        if session is None:
            session = requests.Session()
            pool = max(settings.workers, 1) + 2
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            # Token auth is stateless: a Guest `sid` cookie must never ride along, and an empty jar is
            # never mutated by concurrent responses.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.session = session
        self._warn_plain_http()
        if not settings.verify_tls:
            # One warning here instead of urllib3's InsecureRequestWarning on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            with _warn_lock:
                if ("no-verify", self.url) not in _warned_urls:
                    _warned_urls.add(("no-verify", self.url))
                    log.warning(
                        "TLS certificate verification is off for %s ([erpnext] verify_tls = false)", self.url
                    )

    def __repr__(self) -> str:
        return f"ErpNextClient({self.url!r})"

    def _warn_plain_http(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or _is_loopback(parts.hostname or ""):
            return
        with _warn_lock:
            if self.url in _warned_urls:
                return
            _warned_urls.add(self.url)
        log.warning("ERPNext URL %s is plain http: the API token travels unencrypted; use https", self.url)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ErpNextClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------------------

    def _mask(self, text: str) -> str:
        return self._masker.mask(text)

    def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None, body: Any, stat: str
    ) -> requests.Response:
        started = time.perf_counter()
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, default=str).encode("utf-8")
        # Short until the site has answered once, so a wrong host fails in seconds, not minutes.
        connect = min(10.0 if self._answered else FIRST_CONNECT_TIMEOUT, self.timeout)
        try:
            resp = self.session.request(
                method,
                self.url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=(connect, self.timeout),
                verify=self.settings.verify_tls,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout as exc:
            self.stats.record(stat, time.perf_counter() - started, failed=True)
            raise _Transport(exc, sent=False) from None
        except requests.exceptions.SSLError as exc:
            self.stats.record(stat, time.perf_counter() - started, failed=True)
            message, config_mistake = describe_tls_error(self.url, exc)
            cls = ErpNextConfigError if config_mistake else ErpNextUnavailableError
            raise cls(self._mask(f"ERPNext: {message}")) from None
        except requests.exceptions.ConnectionError as exc:
            self.stats.record(stat, time.perf_counter() - started, failed=True)
            raise _Transport(exc, sent=not _never_connected(exc)) from None
        except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            self.stats.record(stat, time.perf_counter() - started, failed=True)
            raise _Transport(exc, sent=True) from None
        except requests.exceptions.RequestException as exc:
            self.stats.record(stat, time.perf_counter() - started, failed=True)
            raise ErpNextError(self._mask(f"ERPNext request failed: {exc}")) from None
        try:
            _ = resp.content  # read the body inside the timing and the error handling
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            self.stats.record(stat, time.perf_counter() - started, failed=True)
            raise _Transport(exc, sent=True) from None
        elapsed = time.perf_counter() - started
        self.stats.record(stat, elapsed, failed=resp.status_code >= 400)
        log.debug("ERPNext %s %s → %d (%.0f ms)", method, path, resp.status_code, elapsed * 1000)
        diagnosis = None
        if "json" not in resp.headers.get("content-type", "").lower() or 300 <= resp.status_code < 400:
            diagnosis = describe_non_api_answer(self.url, resp.status_code, resp.headers, resp.text)
        if diagnosis is not None:
            raise ErpNextConfigError(self._mask(f"ERPNext: {diagnosis}"), status=resp.status_code)
        self._answered = True
        return resp

    @staticmethod
    def _json(resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            return None

    def _error(self, resp: requests.Response, what: str) -> ErpNextError:
        body = self._json(resp)
        text = "" if body is not None else resp.text[:2000]
        return error_from_response(resp.status_code, body, text=text, what=what, masker=self._masker)

    @staticmethod
    def _classify(resp: requests.Response, err: ErpNextError, idempotent: bool) -> str | None:
        """How a failed answer may be retried: _SAFE, _AMBIGUOUS, or None (a definite answer)."""
        status = resp.status_code
        if status == 429 or err.exc_type in SAFE_RETRY_EXC:
            return _SAFE
        if status >= 500:
            if idempotent:
                return _SAFE
            # A Frappe error body on a 500 means Frappe caught the exception and rolled back: definite.
            if status == 500 and err.exc_type and err.exc_type not in AMBIGUOUS_EXC:
                return None
            return _AMBIGUOUS
        return None

    def _delay(self, attempt: int, resp: requests.Response | None = None) -> float:
        if resp is not None:
            retry_after = resp.headers.get("Retry-After")
            if retry_after:
                try:
                    return min(self.backoff_ceiling, max(0.0, float(retry_after)))
                except ValueError:
                    pass
        base = min(self.backoff_ceiling, self.backoff * (2**attempt))
        return base * random.uniform(0.5, 1.0)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        stat: str,
        what: str,
        idempotent: bool,
        recover: Callable[[], Any] | None = None,
        retries: int | None = None,
    ) -> Any:
        """Send with the retry rules of the module docstring; answers the decoded JSON body.

        ``recover`` (non-idempotent requests only) is asked after an ambiguous failure whether the server
        had applied the request; it returns the result to use, or ``_MISSING`` to send again.
        """
        max_retries = self.max_retries if retries is None else retries
        attempt = 0
        ambiguous_seen = False
        while True:
            resp: requests.Response | None = None
            kind: str | None
            last: ErpNextError
            try:
                resp = self._send(method, path, params=params, body=body, stat=stat)
            except _Transport as tr:
                kind = _AMBIGUOUS if tr.sent else _SAFE
                reason = _reason(tr.exc, self.timeout)
                if not self._answered and not tr.sent:
                    # The site never answered this run: a wrong host or port, or ERPNext is down. Retrying
                    # for minutes would only hide that; later refusals (a restart mid-run) are retried.
                    raise ErpNextUnavailableError(
                        self._mask(f"ERPNext: {_unreachable(self.url, reason)}")
                    ) from None
                last = ErpNextUnavailableError(
                    self._mask(f"ERPNext {what}: no answer from {self.url} ({reason})")
                )
            else:
                if resp.status_code < 400:
                    payload = self._json(resp)
                    if payload is None and resp.content:
                        raise ErpNextError(
                            f"ERPNext {what}: answer is not JSON (HTTP {resp.status_code}, "
                            f"{resp.headers.get('content-type', 'no content type')}); is [erpnext] url right?",
                            status=resp.status_code,
                        )
                    return payload if payload is not None else {}
                last = self._error(resp, what)
                if ambiguous_seen and recover is not None and isinstance(last, _RESOLVABLE):
                    # An earlier, ambiguous attempt went through; this resend ran into its result.
                    found = recover()
                    if found is not _MISSING:
                        return found
                kind = self._classify(resp, last, idempotent)
                if kind is None:
                    raise last
            if kind == _AMBIGUOUS and not idempotent:
                if recover is None:
                    raise ErpNextUnavailableError(
                        f"{last} - it may or may not have been applied, so it is not sent again",
                        status=last.status,
                        exc_type=last.exc_type,
                    )
                ambiguous_seen = True
                self._sleep(self._delay(attempt, resp))
                found = recover()
                if found is not _MISSING:
                    log.info("ERPNext %s: had been applied despite the failed answer", what)
                    return found
            if attempt >= max_retries:
                if isinstance(last, ErpNextUnavailableError):
                    raise ErpNextUnavailableError(
                        f"{last} (gave up after {attempt + 1} attempts)",
                        status=last.status,
                        exc_type=last.exc_type,
                    )
                raise last
            if not (kind == _AMBIGUOUS and not idempotent):
                delay = self._delay(attempt, resp)
                log.debug("%s; retrying in %.1fs (retry %d of %d)", last, delay, attempt + 1, max_retries)
                self._sleep(delay)
            attempt += 1

    # --- paths --------------------------------------------------------------------------------------------

    @staticmethod
    def _resource(doctype: str, name: str | None = None) -> str:
        path = "/api/resource/" + quote(doctype, safe="")
        if name is not None:
            path += "/" + quote(str(name), safe="")
        return path

    @staticmethod
    def _method(method: str) -> str:
        return "/api/method/" + quote(method, safe=".")

    # --- public API: basics ---------------------------------------------------------------------------

    def get_method(self, method: str, *, retries: int | None = None, **params: Any) -> Any:
        """GET /api/method/<method> (read-only methods), retried; answers ``message``."""
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        payload = self._request(
            "GET",
            self._method(method),
            params=query or None,
            stat=f"GET {method}",
            what=method,
            idempotent=True,
            retries=retries,
        )
        return payload.get("message") if isinstance(payload, dict) else payload

    def probe(self) -> None:
        """The quick first request (``ping``, at most one retry). Raises ErpNextConfigError when what
        answers is not ERPNext's API (a web page, a redirect, plain http on an https URL),
        ErpNextUnavailableError when nothing answers (with the reason: host not found, refused...)."""
        answer = self.get_method("ping", retries=min(self.max_retries, 1))
        if answer != "pong":
            raise ErpNextConfigError(
                self._mask(
                    f"ERPNext: {self.url} answered ping with {str(answer)[:60]!r}, not 'pong': it is not a "
                    f"Frappe site; {url_fix(self.url)}"
                )
            )

    def ping(self) -> bool:
        """True when the site answers ``pong`` (at most one retry: this is a quick probe)."""
        try:
            self.probe()
        except ErpNextError:
            return False
        return True

    def logged_user(self) -> str:
        """The user the API token belongs to; ErpNextAuthError on a bad token."""
        return str(self.get_method("frappe.auth.get_logged_user"))

    def call(self, method: str, **kwargs: Any) -> Any:
        """POST /api/method/<method> with a JSON body; answers ``message``. Not repeated after an
        ambiguous failure (a method may have side effects)."""
        payload = self._request(
            "POST", self._method(method), body=kwargs, stat=f"POST {method}", what=method, idempotent=False
        )
        return payload.get("message") if isinstance(payload, dict) else payload

    def make_mapped(self, method: str, source_name: str, *,
                    filtered_children: Sequence[str] | None = None) -> dict[str, Any]:
        """ERPNext's unsaved document mapped from a submitted one by a whitelisted ``make_*`` method
        (:data:`MAKE_METHODS`); ``filtered_children`` restricts make_sales_invoice to those Sales Order
        lines. The mappers write nothing, so this POST is retried like a read."""
        if method not in MAKE_METHODS:
            raise ValueError(f"{method}: not one of ERPNext's mappers amz2erp uses")
        body: dict[str, Any] = {"source_name": source_name}
        if filtered_children is not None:
            body["args"] = {"filtered_children": list(filtered_children)}
        what = f"{method.rsplit('.', 1)[-1]} {source_name!r}"
        payload = self._request("POST", self._method(method), body=body, stat=f"POST {method.rsplit('.', 1)[-1]}",
                                what=what, idempotent=True)
        message = payload.get("message") if isinstance(payload, dict) else None
        if not isinstance(message, dict):
            raise ErpNextError(f"ERPNext {what}: unexpected answer (no document)")
        return message

    # --- reads ------------------------------------------------------------------------------------------

    def list(
        self,
        doctype: str,
        *,
        fields: Sequence[str] | None = None,
        filters: Mapping[str, Any] | Sequence[Any] | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Every matching row, page by page (limit_start / limit_page_length). Ordered by ``name asc``
        unless told otherwise, so pages are stable; a page that does not advance stops the iteration."""
        if page_size < 1:
            raise ValueError("page_size must be positive")
        base: dict[str, Any] = {"order_by": order_by or "name asc"}
        if fields:
            base["fields"] = json.dumps(list(fields))
        if filters:
            base["filters"] = json.dumps(
                filters if isinstance(filters, Mapping) else list(filters), default=str
            )
        start = 0
        yielded = 0
        previous: list[dict[str, Any]] | None = None
        while True:
            want = page_size if limit is None else min(page_size, limit - yielded)
            if want <= 0:
                return
            params = dict(base, limit_start=start, limit_page_length=want)
            payload = self._request(
                "GET",
                self._resource(doctype),
                params=params,
                stat=f"GET {doctype}",
                what=f"list {doctype}",
                idempotent=True,
            )
            rows = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(rows, list):
                raise ErpNextError(f"ERPNext list {doctype}: unexpected answer (no data list)")
            if previous is not None and rows and rows == previous:
                raise ErpNextError(
                    f"ERPNext list {doctype}: the page at offset {start} repeats the previous one "
                    "(the server ignores limit_start); refusing to loop"
                )
            for row in rows:
                yield row
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            if len(rows) < want or len(rows) > want:
                # short page: the end; a longer page than asked: the server ignored the paging (all rows)
                return
            previous = rows
            start += len(rows)

    def get(self, doctype: str, name: str) -> dict[str, Any] | None:
        """The full document, or None when it does not exist."""
        try:
            payload = self._request(
                "GET",
                self._resource(doctype, name),
                stat=f"GET {doctype}",
                what=f"get {doctype} {name!r}",
                idempotent=True,
            )
        except ErpNextNotFoundError:
            return None
        data = payload.get("data") if isinstance(payload, dict) else None
        return data if isinstance(data, dict) else None

    def find(
        self,
        doctype: str,
        filters: Mapping[str, Any] | Sequence[Any],
        fields: Sequence[str] = ("name",),
        *,
        order_by: str | None = None,
    ) -> dict[str, Any] | None:
        """The first matching row (with ``fields``), or None."""
        for row in self.list(
            doctype, fields=fields, filters=filters, order_by=order_by, limit=1, page_size=1
        ):
            return row
        return None

    def exists(self, doctype: str, name: str) -> bool:
        return self.find(doctype, [["name", "=", name]]) is not None

    def repeated(
        self,
        doctype: str,
        field: str,
        *,
        filters: Mapping[str, Any] | Sequence[Any] | None = None,
        page_size: int = 100,
    ) -> dict[str, int]:
        """The values of ``field`` that more than one matching document carries, with their counts: one grouped
        query (``fields=[field, "count(name) as n"]``, ``group_by``, most frequent first, as Frappe v15's
        /api/resource passes them to frappe.client.get_list), paged only while the counts stay above one —
        the REST API has no HAVING, so a page holding a count of one ends the read."""
        base: dict[str, Any] = {"fields": json.dumps([field, "count(name) as n"]), "group_by": field,
                                "order_by": f"n desc, {field} asc"}
        if filters:
            base["filters"] = json.dumps(filters if isinstance(filters, Mapping) else list(filters), default=str)
        out: dict[str, int] = {}
        start = 0
        while True:
            payload = self._request("GET", self._resource(doctype),
                                    params=dict(base, limit_start=start, limit_page_length=page_size),
                                    stat=f"GET {doctype} grouped", what=f"count {doctype} by {field}",
                                    idempotent=True)
            rows = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(rows, list):
                raise ErpNextError(f"ERPNext list {doctype}: unexpected answer (no data list)")
            for row in rows:
                count = int(row.get("n") or 0)
                if count < 2:
                    return out
                out[str(row.get(field))] = count
            if len(rows) < page_size:
                return out
            start += len(rows)

    def get_value(
        self, doctype: str, filters: Mapping[str, Any] | Sequence[Any] | str, fieldname: str
    ) -> Any:
        """One field of the first matching document (``filters`` may be a name), or None."""
        flt: Mapping[str, Any] | Sequence[Any] = (
            [["name", "=", filters]] if isinstance(filters, str) else filters
        )
        row = self.find(doctype, flt, fields=("name", fieldname))
        return None if row is None else row.get(fieldname)

    # --- writes --------------------------------------------------------------------------------------------

    def _lookup(self, doctype: str, key: Mapping[str, str]) -> dict[str, Any] | None:
        filters: list[list[Any]] = [[field, "=", value] for field, value in key.items()]
        if "name" not in key:
            filters.append(["docstatus", "!=", 2])  # a cancelled version is not "the" document
        row = self.find(doctype, filters, order_by="creation desc")
        if row is None:
            return None
        return self.get(doctype, row["name"]) or row

    def insert(
        self, doctype: str, doc: Mapping[str, Any], *, key: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Create one document; answers it as stored. ``key`` is its natural key (e.g.
        ``{"amazon_order_id": ...}``): after an ambiguous failure the document is looked up by it instead of
        being sent twice. Without a key an ambiguous failure raises ErpNextUnavailableError."""
        body = dict(doc)
        body.pop("doctype", None)
        recover: Callable[[], Any] | None = None
        if key:

            def recover() -> Any:
                found = self._lookup(doctype, key)
                return _MISSING if found is None else found

        payload = self._request(
            "POST",
            self._resource(doctype),
            body=body,
            stat=f"POST {doctype}",
            what=f"insert {doctype}",
            idempotent=False,
            recover=recover,
        )
        if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            return dict(payload["data"])
        if isinstance(payload, dict) and "name" in payload and "data" not in payload:
            return payload  # a recovered document
        raise ErpNextError(f"ERPNext insert {doctype}: unexpected answer")

    def insert_many(
        self, doctype: str, docs: Sequence[Mapping[str, Any]], *, key_field: str | None = None
    ) -> builtins.list[str]:
        """Create many documents with frappe.client.insert_many (one transaction per call of at most 200:
        one bad document fails its whole chunk, nothing of it is kept). Answers the names in input order.
        With ``key_field`` (e.g. "amazon_order_id") an ambiguous failure is resolved by looking the chunk's
        keys up: all found → their names; none found → sent again."""
        names: list[str] = []
        for i in range(0, len(docs), INSERT_MANY_MAX):
            chunk = [dict(d, doctype=doctype) for d in docs[i : i + INSERT_MANY_MAX]]
            recover: Callable[[], Any] | None = None
            if key_field:
                keys = [str(d.get(key_field)) for d in chunk]
                if any(not d.get(key_field) for d in chunk) or len(set(keys)) != len(keys):
                    raise ValueError(f"insert_many: every document needs a distinct {key_field}")

                def recover(keys: Sequence[str] = keys, field: str = key_field) -> Any:
                    rows = list(
                        self.list(
                            doctype,
                            fields=("name", field),
                            filters=[[field, "in", keys], ["docstatus", "!=", 2]],
                        )
                    )
                    by_key = {str(r.get(field)): str(r["name"]) for r in rows}
                    if not by_key:
                        return _MISSING
                    if len(by_key) != len(keys) or set(by_key) != set(keys):
                        raise ErpNextConflictError(
                            f"ERPNext insert_many {doctype}: after a failed answer only {len(by_key)} of "
                            f"{len(keys)} documents exist; resolve them one by one"
                        )
                    return {"message": [by_key[k] for k in keys]}

            payload = self._request(
                "POST",
                self._method("frappe.client.insert_many"),
                body={"docs": chunk},
                stat=f"POST insert_many {doctype}",
                what=f"insert_many {doctype}",
                idempotent=False,
                recover=recover,
            )
            message = payload.get("message") if isinstance(payload, dict) else None
            if not isinstance(message, list) or len(message) != len(chunk):
                raise ErpNextError(f"ERPNext insert_many {doctype}: unexpected answer")
            names.extend(str(n) for n in message)
        return names

    def update(self, doctype: str, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the changed fields (absolute values, so repeating it is harmless; a child table sent
        replaces the whole table). Answers the document as stored."""
        payload = self._request(
            "PUT",
            self._resource(doctype, name),
            body=dict(changes),
            stat=f"PUT {doctype}",
            what=f"update {doctype} {name!r}",
            idempotent=True,
        )
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise ErpNextError(f"ERPNext update {doctype} {name!r}: unexpected answer")
        return data

    def submit(self, doctype: str, name: str) -> dict[str, Any]:
        """Submit a draft with PUT docstatus=1: unlike an insert with docstatus=1 this sets the status
        ("To Deliver and Bill", recording 064 vs 090)."""
        return self.update(doctype, name, {"docstatus": 1})

    def cancel(self, doctype: str, name: str) -> dict[str, Any]:
        """Cancel a submitted document (frappe.client.cancel); answers it as stored."""

        def recover() -> Any:
            doc = self.get(doctype, name)
            return doc if doc is not None and doc.get("docstatus") == 2 else _MISSING

        payload = self._request(
            "POST",
            self._method("frappe.client.cancel"),
            body={"doctype": doctype, "name": name},
            stat=f"POST cancel {doctype}",
            what=f"cancel {doctype} {name!r}",
            idempotent=False,
            recover=recover,
        )
        message = payload.get("message") if isinstance(payload, dict) else None
        if isinstance(message, dict):
            return message
        if isinstance(payload, dict) and payload.get("docstatus") == 2:
            return payload
        return self.get(doctype, name) or {"name": name, "docstatus": 2}

    def delete(self, doctype: str, name: str) -> bool:
        """Delete a draft or cancelled document. True if deleted, False if it did not exist."""

        def recover() -> Any:
            return True if not self.exists(doctype, name) else _MISSING

        try:
            result = self._request(
                "DELETE",
                self._resource(doctype, name),
                stat=f"DELETE {doctype}",
                what=f"delete {doctype} {name!r}",
                idempotent=False,
                recover=recover,
            )
        except ErpNextNotFoundError:
            return False
        return True if result is True or isinstance(result, dict) else bool(result)

    def update_sales_order_status(self, name: str, status: str = "Draft") -> Any:
        """erpnext...sales_order.update_status. With status="Draft" (the Re-open action) it recomputes
        the status of a Sales Order that was inserted with docstatus=1 and kept "Draft" (090-093). The
        call only recomputes/sets a status, so repeating it is harmless."""
        payload = self._request(
            "POST",
            self._method(SO_UPDATE_STATUS),
            body={"status": status, "name": name},
            stat="POST update_status Sales Order",
            what=f"update_status Sales Order {name!r}",
            idempotent=True,
        )
        return payload.get("message") if isinstance(payload, dict) else None

    def ensure(self, doctype: str, name: str, doc: Mapping[str, Any]) -> bool:
        """Create the document named ``name`` unless it exists. True if this call created it."""
        if self.exists(doctype, name):
            return False
        try:
            self.insert(doctype, doc, key={"name": name})
        except ErpNextDuplicateError:
            return False
        return True


def _reason(exc: Exception, timeout: float) -> str:
    """A short, human reason for a transport failure (requests' own texts run to several lines)."""
    text = repr(exc.args[0]) if exc.args else repr(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {timeout:g}s"
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("Errno 111", "connection refused"),
        ("NameResolution", "host name not found"),
        ("Name or service not known", "host name not found"),
        ("reset", "connection reset"),
        ("RemoteDisconnected", "connection closed without an answer"),
        ("aborted", "connection aborted"),
    ):
        if marker in text:
            return reason
    return type(exc).__name__


def _unreachable(url: str, reason: str) -> str:
    """Nothing answered at ``url``: what happened and the likely fix."""
    parts = urlsplit(url)
    host, port = parts.hostname or "?", parts.port or (443 if parts.scheme == "https" else 80)
    if reason == "host name not found":
        return f"host {host!r} of [erpnext] url {url} is not found (DNS); check the host name in [erpnext] url"
    if reason == "connection refused":
        return (
            f"nothing listens at {host}:{port} ([erpnext] url {url}, connection refused); is ERPNext running, "
            "and are the host and port in [erpnext] url right?"
        )
    return f"no answer from {url} ({reason}); check [erpnext] url and that this machine can reach the site"


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never established (refused, DNS), so nothing was sent."""
    text = repr(exc.args[0]) if exc.args else repr(exc)
    markers = (
        "NewConnectionError",
        "NameResolutionError",
        "Connection refused",
        "Failed to resolve",
        "Errno 111",
        "Errno 61",
        "getaddrinfo failed",
    )
    return any(m in text for m in markers)


__all__ = [
    "ErpNextClient",
    "RequestStats",
    "describe_non_api_answer",
    "describe_tls_error",
    "error_from_response",
    "server_messages",
    "strip_html",
]
