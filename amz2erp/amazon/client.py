"""The only module that talks to Amazon: python-amazon-sp-api (pinned 2.1.35) behind one retry place, one
pagination place and client-side rate limits, yielding the normalised records of `amz2erp.models`.

What this layer guarantees (see shared/research/sp-api-technical.md for why each point matters):

* **Explicit credentials only.** ``credentials=`` plus ``credential_providers=[FromCodeCredentialProvider]``,
  so the library never reads ``SP_API_REFRESH_TOKEN``/``LWA_*`` or its YAML file; ``SP_API_DEFAULT_MARKETPLACE``
  (which would override the marketplace we pass) is removed from the environment while clients are built.
  Access tokens live in a per-`AmazonClient` store (expiry on our `Clock`), never in the library's
  process-global cache.
* **Every response is checked.** All SP-API calls share one ``httpx.Client`` with an explicit timeout and a
  response hook that raises on any non-2xx status (the library is silent on HTML/empty 5xx bodies) and on a
  2xx body that is not valid JSON (truncated). Report documents are downloaded by our own client (status
  checked, streamed, gunzipped incrementally, decoded by charset) with ``settings.report_timeout``.
* **One retry place** (`AmazonClient._call`): 429 (bucket emptied, ``x-amzn-RateLimit-Limit`` honoured),
  5xx, transport errors, invalid JSON and empty payloads are retried with exponential backoff and full
  jitter (ceiling ``settings.backoff_ceiling``, at most ``settings.max_retries`` retries, sleeping on the
  Clock); then `AmazonThrottledError` / `AmazonUnavailableError`. 401/403 → `AmazonAuthError`, other 4xx →
  `AmazonBadRequestError` with Amazon's message. Messages never contain a secret.
* **Client-side token buckets** per operation (`amz2erp.amazon.ratelimit`), so a normal run rarely sees a 429.
* **One pagination place** (`AmazonClient._pages`) with a loop guard.
* **Orders reports are pipelined.** Amazon takes minutes to process a report and allows one createReport and
  one getReportDocument a minute after a burst of 15, so windows are never created, polled and downloaded
  strictly one after another: the reports of the next windows are asked for while the current one is read
  (only when a createReport token is free, also between polls), polls start when this run's reports have
  taken to process, and a newest-first walk (backfill; detected from two contiguous reads, or announced
  with `plan_orders_reports`) is served from 30-day reports on a fixed grid, kept on disk until the walk has
  passed them, whatever the walk's chunk size. Finished reports are listed once per client for reuse (a
  resumed backfill meets the same grid windows); documents are parsed in two streaming passes, so memory
  holds one order, not one document.
* ``sp_api`` loggers are never left at DEBUG (at DEBUG the library logs the access token).

Public API (the sync engine's contract)::

    AmazonClient(settings: AmazonSettings, clock: Clock | None = None, *, report_fatal_cooldown=1800.0,
                 report_fatal_retries=1, report_poll_initial=None (settings.report_poll_initial),
                 report_poll_max=60.0, report_prefetch=8, report_plan_windows=25, report_cache_ttl=86400.0, ...)
    .fetch_orders(marketplace_ids, updated_after, updated_before) -> Iterator[Order | UnparsableOrder]
    .fetch_order(amazon_order_id) -> Order | None
    .fetch_orders_report(marketplace_ids, updated_after, updated_before) -> Iterator[Order | UnparsableOrder]
    .plan_orders_reports(marketplace_ids, start, end) -> None   (optional hint: a newest-first walk follows)
    .fetch_listings(marketplace_id) -> Iterator[Listing]
    .fetch_catalog_items(asins, marketplace_id) -> dict[str, CatalogItem]
    .marketplace_participations() -> list[dict]
    .calls / .retries / .throttles (Counter per operation), .limiter, .stats(), .close()
    parse_order_v0(order, items), parse_order_2026(order), parse_catalog_item(item, marketplace_id)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any, TypeVar, cast
from urllib.parse import urlsplit

import httpx

from amz2erp.amazon import limits
from amz2erp.amazon import marketplaces as mp
from amz2erp.amazon import reports as rp
from amz2erp.amazon.parse import (
    INCLUDED_2026,
    INCLUDED_2026_PII,
    iso,
    parse_catalog_item,
    parse_order_2026,
    parse_order_v0,
)
from amz2erp.amazon.ratelimit import RateLimiter
from amz2erp.clock import Clock, SystemClock
from amz2erp.config import AmazonSettings
from amz2erp.erpnext_setup import section_placeholders
from amz2erp.errors import (
    AmazonAuthError,
    AmazonBadRequestError,
    AmazonPayloadError,
    AmazonReportError,
    AmazonThrottledError,
    AmazonUnavailableError,
    ConfigError,
)
from amz2erp.models import (
    CatalogItem,
    Listing,
    Order,
    UnparsableOrder,
)

# The layer logs under one name (the package), whichever module of it speaks: users filter on it.
log = logging.getLogger("amz2erp.amazon")

T = TypeVar("T")

# --- importing and constructing sp_api without letting the environment in ------------------------------

_NEUTRALISED_ENV = ("SP_API_DEFAULT_MARKETPLACE",)
_env_lock = threading.RLock()


@contextlib.contextmanager
def _neutral_env() -> Iterator[None]:
    """Hide the environment variables that make python-amazon-sp-api ignore what we pass it.

    ``SP_API_DEFAULT_MARKETPLACE`` is read when ``sp_api.base.client`` is imported (a junk value makes the
    import itself fail) and again in every constructor, where it replaces the marketplace argument."""
    with _env_lock:
        saved = {k: os.environ.pop(k) for k in _NEUTRALISED_ENV if k in os.environ}
        try:
            yield
        finally:
            os.environ.update(saved)


with _neutral_env():
    from sp_api.api import CatalogItems, Orders, Reports, Sellers, Tokens
    from sp_api.auth import AccessTokenClient, AccessTokenResponse
    from sp_api.auth.exceptions import AuthorizationError
    from sp_api.base import ApiResponse, SellingApiException
    from sp_api.base._transport_httpx import HttpxTransport
    from sp_api.base.credential_provider import FromCodeCredentialProvider, MissingCredentials


def _quiet_sp_api_loggers() -> None:
    """Never let the library log at DEBUG: it logs request headers, i.e. the access token."""
    names = ["sp_api"] + [n for n in logging.root.manager.loggerDict if n.startswith("sp_api.")]
    for name in names:
        lg = logging.getLogger(name)
        if lg.level == logging.NOTSET and name != "sp_api":
            continue
        if lg.level < logging.INFO:
            lg.setLevel(logging.INFO)


# --- constants -----------------------------------------------------------------------------------------

REPORT_WAIT_SLICE = 15.0  # seconds: prefetching looks for a createReport token this often while waiting
_GRID_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # planned report windows are cut on a 30-day grid
_MIN_DATE = datetime.min.replace(tzinfo=timezone.utc)
MAX_MARKETPLACES_PER_CALL = 50
MAX_ORDER_IDS_PER_CALL = 50  # Orders v0 getOrders AmazonOrderIds
MAX_PAGES = 100_000

# --- internal exceptions (never leave this module) ------------------------------------------------------


class _HttpStatusError(Exception):
    def __init__(self, status: int, headers: httpx.Headers, message: str, code: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.message = message
        self.code = code


class _BadBodyError(Exception):
    """A 2xx response whose body is not what the operation must return (invalid JSON, empty payload)."""


def _amazon_message(response: httpx.Response) -> tuple[str, str | None]:
    """Amazon's error message and code from an error body (JSON ``errors`` or LWA ``error``), else a short
    description of what came back."""
    text = ""
    try:
        text = response.text
        data = json.loads(text) if text.strip() else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        errs = data.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            e = errs[0]
            msg = str(e.get("message") or e.get("code") or "")
            details = e.get("details")
            if details:
                msg = f"{msg} ({details})"
            return msg, (str(e["code"]) if e.get("code") else None)
        if "error" in data:
            return str(data.get("error_description") or data.get("error")), str(data.get("error"))
    ctype = response.headers.get("content-type", "")
    if not text.strip():
        return "empty body", None
    if "html" in ctype or text.lstrip().startswith("<"):
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        return (f"HTML page: {title.group(1).strip()[:80]}" if title else "HTML page"), None
    return re.sub(r"\s+", " ", text)[:160], None


# --- access tokens ---------------------------------------------------------------------------------------


class _TokenStore:
    """This client's LWA access token (not the library's process-global cache), expiring on our clock."""

    def __init__(self, clock: Clock, on_fetch: Callable[[], None]) -> None:
        self._clock = clock
        self._on_fetch = on_fetch
        self._lock = threading.Lock()
        self._token: dict[str, Any] | None = None
        self._expires = 0.0
        self.issued: list[str] = []  # every access token we received (for scrubbing messages)

    def get(self, fetch: Callable[[], dict[str, Any]]) -> AccessTokenResponse:
        with self._lock:
            if self._token is None or self._clock.monotonic() >= self._expires:
                self._on_fetch()  # counted per attempt, like every other operation
                data = fetch()
                token = data.get("access_token")
                if not isinstance(token, str) or not token:
                    raise _BadBodyError("LWA answered without an access_token")
                self.issued.append(token)
                try:
                    ttl = float(data.get("expires_in") or 3600)
                except (TypeError, ValueError):
                    ttl = 3600.0
                self._token = data
                self._expires = self._clock.monotonic() + max(30.0, ttl - 60.0)
            return AccessTokenResponse(**self._token)

    def invalidate(self) -> None:
        with self._lock:
            self._token = None


def _lwa_client_class(url: str, transport: Any, store: _TokenStore) -> type:
    parts = urlsplit(url)

    class _LocalAccessTokenClient(AccessTokenClient):
        scheme = parts.scheme + "://"
        host = parts.netloc
        path = parts.path or "/auth/o2/token"

        def __init__(self, refresh_token: Any = None, credentials: Any = None, proxies: Any = None,
                     verify: Any = True) -> None:
            super().__init__(refresh_token=refresh_token, credentials=credentials, proxies=proxies, verify=verify)
            self._transport.close()
            self._transport: Any = transport

        def get_auth(self) -> AccessTokenResponse:
            return store.get(lambda: self._request(self.scheme + self.host + self.path, self.data, self.headers))

        def _request(self, url: str, data: Any, headers: Any) -> dict[str, Any]:
            response: httpx.Response = self._transport.request("POST", url, data=data, headers=headers)
            status = response.status_code
            if status == 429 or status >= 500:
                message, code = _amazon_message(response)
                raise _HttpStatusError(status, response.headers, f"LWA: {message}", code)
            try:
                body = response.json()
            except ValueError:
                if status == 200:
                    raise _BadBodyError("LWA answered 200 with a body that is not JSON") from None
                body = {}
            if status != 200 or not isinstance(body, dict):
                body = body if isinstance(body, dict) else {}
                raise AuthorizationError(body.get("error"), body.get("error_description"), status)
            return body

    return _LocalAccessTokenClient


# --- orders report jobs and plans ----------------------------------------------------------------------


@dataclass(eq=False)
class _ReportJob:
    """One report window: asked for (report_id), finished (document_id) or empty (cancelled); its document is
    kept in a temporary file while reads still need it."""

    start: datetime | None
    end: datetime | None
    report_id: str | None = None
    created_at: float | None = None
    document_id: str | None = None
    cancelled: bool = False
    fatal: int = 0
    spool: IO[bytes] | None = None
    charset: str = rp.DEFAULT_CHARSET
    unparsable: set[str] = field(default_factory=set)
    row_counts: dict[str, int] | None = None

    def close(self) -> None:
        self.row_counts = None
        if self.spool is not None:
            self.spool.close()
            self.spool = None


@dataclass(eq=False)
class _OrdersPlan:
    """The windows of a newest-first walk (backfill), newest first."""

    jobs: list[_ReportJob]
    created: float
    announced: bool = False  # by `plan_orders_reports` (its floor is the walk's real start)

    def covers(self, after: datetime, end: datetime) -> bool:
        if not self.jobs:
            return False
        top, floor = self.jobs[0].end, self.jobs[-1].start
        return top is not None and floor is not None and floor <= after and end <= top

    def close(self) -> None:
        for job in self.jobs:
            job.close()


def _whole(dt: datetime) -> datetime:
    return dt.replace(microsecond=0)


def _window_key(dt: datetime | None) -> str:
    return "" if dt is None else dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the client ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MarketplaceArg:
    """What the library's constructor reads from a marketplace: endpoint, marketplace_id, region."""

    endpoint: str
    marketplace_id: str
    region: str


class AmazonClient:
    """Typed access to the SP-API operations amz2erp needs. Use as a context manager, or call `close`.

    Counters for benchmarks: ``calls`` (HTTP attempts per operation, retries included), ``retries`` and
    ``throttles`` (429s seen) per operation, and ``limiter.waited`` (seconds slept on rate limits).
    """

    def __init__(
        self,
        settings: AmazonSettings,
        clock: Clock | None = None,
        *,
        report_fatal_cooldown: float = 1800.0,
        report_fatal_retries: int = 1,
        report_poll_initial: float | None = None,
        report_poll_max: float = 60.0,
        report_prefetch: int = 8,
        report_plan_windows: int = 25,
        report_cache_ttl: float = 24 * 3600.0,
        backoff_base: float = 1.0,
        rate_limits: dict[str, tuple[float, int]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.report_fatal_cooldown = report_fatal_cooldown
        self.report_fatal_retries = report_fatal_retries
        self.report_poll_initial = (settings.report_poll_initial if report_poll_initial is None
                                    else report_poll_initial)
        self.report_poll_max = report_poll_max
        self.report_prefetch = max(1, report_prefetch)
        self.report_plan_windows = max(1, report_plan_windows)
        self.report_cache_ttl = report_cache_ttl
        self._plans: dict[tuple[str, ...], _OrdersPlan] = {}
        self._last_read: dict[tuple[str, ...], tuple[datetime, datetime]] = {}
        self._done_reports: dict[tuple[str, tuple[str, ...]], dict[tuple[str, str], str]] = {}
        self._processing_seen: list[float] = []
        self.backoff_base = backoff_base
        self._rng = rng or random.Random()
        self.limiter = RateLimiter(self.clock, rate_limits)
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.throttles: Counter[str] = Counter()
        self._counter_lock = threading.Lock()

        self._marketplaces = settings.resolved_marketplaces()
        home = self._marketplaces[0]
        self._endpoint = (settings.endpoint or mp.REGION_ENDPOINTS[settings.region]).rstrip("/")
        self._lwa_url = settings.lwa_endpoint or mp.LWA_ENDPOINT
        self._mp_arg = _MarketplaceArg(self._endpoint, home.marketplace_id, _AWS_REGION[settings.region])
        self._secrets = [
            settings.refresh_token.get_secret_value(),
            settings.lwa_client_secret.get_secret_value(),
        ]

        self._http = httpx.Client(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            event_hooks={"response": [self._check_response]},
        )
        # LWA is every run's first request: a short connect timeout makes a wrong or unreachable host fail fast.
        self._lwa_http = httpx.Client(timeout=httpx.Timeout(settings.timeout, connect=min(5.0, settings.timeout)),
                                      follow_redirects=False)
        self._doc_http = httpx.Client(timeout=httpx.Timeout(settings.report_timeout), follow_redirects=True)
        self._transport = HttpxTransport(client=self._http)
        self._tokens = _TokenStore(self.clock, lambda: self._count("lwaToken"))
        self._lwa_class = _lwa_client_class(self._lwa_url, HttpxTransport(client=self._lwa_http), self._tokens)
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

        # PII state: one RDT per run (renewed only when it expires), one warning when refused.
        self._rdt: str | None = None
        self._rdt_expires = 0.0
        self._pii_refused = False
        self._pii_warned = False
        self._pii_lock = threading.Lock()
        self._v0_local = threading.local()
        self._closed = False
        _quiet_sp_api_loggers()

    # --- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> AmazonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for plan in self._plans.values():
            plan.close()
        self._plans.clear()
        for c in (self._http, self._lwa_http, self._doc_http):
            c.close()

    # --- plumbing -------------------------------------------------------------------------------------

    def _count(self, key: str, counter: Counter[str] | None = None) -> None:
        with self._counter_lock:
            (self.calls if counter is None else counter)[key] += 1

    def _scrub(self, text: str) -> str:
        for secret in [*self._secrets, *self._tokens.issued, self._rdt or ""]:
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _check_response(self, response: httpx.Response) -> None:
        """httpx response hook on every SP-API call: non-2xx and non-JSON bodies raise."""
        response.read()
        status = response.status_code
        if 200 <= status < 300:
            body = response.content
            if body.strip():
                try:
                    json.loads(body)
                except ValueError:
                    raise _BadBodyError(f"HTTP {status} with a body that is not valid JSON ({len(body)} bytes)") from None
            return
        message, code = _amazon_message(response)
        raise _HttpStatusError(status, response.headers, message, code)

    def _api(self, name: str) -> Any:
        """A library client, built once: explicit credentials, our transport, our endpoint."""
        with self._clients_lock:
            client = self._clients.get(name)
            if client is not None:
                return client
            cls, kwargs = _API_CLASSES[name]
            examples = section_placeholders("amazon", self.settings)
            if examples:
                # Login with Amazon would only answer invalid_grant after the network round trip: say why now.
                verb = "still hold the example values" if len(examples) > 1 else "still holds the example value"
                raise ConfigError(f"{', '.join(examples)} {verb} of the `init` template; fill in the credentials "
                                  "of your SP-API app")
            creds = {
                "refresh_token": self.settings.refresh_token.get_secret_value(),
                "lwa_app_id": self.settings.lwa_app_id,
                "lwa_client_secret": self.settings.lwa_client_secret.get_secret_value(),
            }
            try:
                with _neutral_env():
                    client = cls(
                        marketplace=self._mp_arg,
                        credentials=creds,
                        credential_providers=[FromCodeCredentialProvider],
                        auth_token_client_class=self._lwa_class,
                        timeout=self.settings.timeout,
                        **kwargs,
                    )
            except MissingCredentials:
                raise AmazonAuthError("Amazon credentials are incomplete (refresh_token, lwa_app_id, "
                                      "lwa_client_secret)") from None
            client._transport.close()
            client._transport = self._transport
            client.endpoint = self._endpoint
            self._clients[name] = client
            _quiet_sp_api_loggers()
            return client

    # --- the one retry place --------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_ceiling, self.backoff_base * (2 ** min(attempt, 30)))
        return self._rng.uniform(0, ceiling)

    def _call(
        self,
        operation: str,
        fn: Callable[[], T],
        require: Callable[[T], bool] | None = None,
        *,
        limited: bool = True,
    ) -> T:
        """Run one SP-API operation: rate limit, status check, classification, retries."""
        attempt = 0
        auth_retried = False
        while True:
            if limited:
                self.limiter.acquire(operation)
            self._count(operation)
            kind: str
            detail: str
            started = time.perf_counter()
            try:
                result = fn()
                log.debug("SP-API %s → ok (%.0f ms)", operation, (time.perf_counter() - started) * 1000)
            except _HttpStatusError as exc:
                log.debug("SP-API %s → HTTP %d (%.0f ms)", operation, exc.status,
                          (time.perf_counter() - started) * 1000)
                detail = f"HTTP {exc.status}: {exc.message}"
                if exc.status == 429:
                    self._count(operation, self.throttles)
                    self.limiter.throttled(operation, exc.headers.get("x-amzn-RateLimit-Limit"))
                    kind = "throttled"
                elif exc.status >= 500 or exc.status == 408:
                    kind = "unavailable"
                elif exc.status in (401, 403):
                    if not auth_retried and "expired" in exc.message.lower():
                        auth_retried = True  # an access token expired early: fetch a new one, once
                        self._tokens.invalidate()
                        continue
                    raise AmazonAuthError(
                        self._scrub(f"Amazon refused {operation} ({detail}); check the app's authorisation "
                                    "and roles"), status=exc.status) from None
                else:
                    raise AmazonBadRequestError(
                        self._scrub(f"Amazon rejected {operation} ({detail})"), status=exc.status) from None
            except AuthorizationError as exc:
                raise AmazonAuthError(
                    self._scrub(f"Login with Amazon refused the credentials (HTTP {exc.status_code}: "
                                f"{exc.error_code or ''} {exc.message or ''})".replace("  ", " ")),
                    status=exc.status_code) from None
            except _BadBodyError as exc:
                kind, detail = "unavailable", str(exc)
            except httpx.TransportError as exc:
                if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) and not self._tokens.issued:
                    # Nothing from Amazon has ever answered this run: a wrong endpoint or no network. Retrying
                    # for minutes (8 backoffs) would only hide it.
                    host = urlsplit(self._lwa_url).netloc
                    raise AmazonUnavailableError(self._scrub(
                        f"Amazon unreachable: Login with Amazon ({host}) did not answer {operation} "
                        f"({type(exc).__name__}: {exc}); check this machine's network and [amazon] "
                        "region / lwa_endpoint")) from None
                kind, detail = "unavailable", f"{type(exc).__name__}: {exc}"
            except (EOFError, OSError, zlib.error) as exc:  # truncated/corrupt documents, resets outside httpx
                kind, detail = "unavailable", f"{type(exc).__name__}: {exc}"
            except SellingApiException as exc:  # a 2xx body carrying `errors`
                raise AmazonBadRequestError(self._scrub(f"Amazon rejected {operation}: {exc.message}")) from None
            else:
                if require is None or require(result):
                    if isinstance(result, ApiResponse):
                        self.limiter.observe(operation, (result.headers or {}).get("x-amzn-RateLimit-Limit"))
                    return result
                kind, detail = "unavailable", "empty or incomplete payload"
            attempt += 1
            if attempt > self.settings.max_retries:
                msg = self._scrub(f"{operation} failed after {attempt} attempts ({detail})")
                if kind == "throttled":
                    raise AmazonThrottledError(f"Amazon kept throttling: {msg}", status=429)
                raise AmazonUnavailableError(f"Amazon unavailable: {msg}")
            self._count(operation, self.retries)
            wait = self._backoff(attempt)
            log.info("%s: %s; retry %d/%d in %.1fs", operation, self._scrub(detail), attempt,
                     self.settings.max_retries, wait)
            self.clock.sleep(wait)

    # --- the one pagination place ---------------------------------------------------------------------

    def _pages(
        self,
        operation: str,
        fetch: Callable[[str | None], ApiResponse],
        next_token: Callable[[ApiResponse], str | None],
        require: Callable[[ApiResponse], bool] | None = None,
        *,
        max_pages: int = MAX_PAGES,
        call: Callable[[str, Callable[[], ApiResponse], Callable[[ApiResponse], bool] | None], ApiResponse]
        | None = None,
    ) -> Iterator[ApiResponse]:
        """Every page of a paginated operation. ``fetch(token)`` makes one request (token None = first page);
        each page goes through the retry place (``call``, default `_call`). The same next token twice (or
        more than ``max_pages`` pages) raises `AmazonUnavailableError` instead of looping forever."""
        caller = call or self._call
        token: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            page = caller(operation, lambda t=token: fetch(t), require)  # type: ignore[misc]
            yield page
            nxt = next_token(page)
            if not nxt:
                return
            if nxt in seen:
                raise AmazonUnavailableError(f"{operation}: Amazon returned the same next token twice; "
                                             "stopped paging to avoid an endless loop")
            seen.add(nxt)
            token = nxt
        raise AmazonUnavailableError(f"{operation}: more than {max_pages} pages; stopped")

    # --- marketplaces ---------------------------------------------------------------------------------

    @staticmethod
    def _marketplace_ids(codes_or_ids: Iterable[str]) -> list[str]:
        out: list[str] = []
        for c in codes_or_ids:
            try:
                mid = mp.resolve(c).marketplace_id
            except KeyError:
                mid = c.strip()
            if mid and mid not in out:
                out.append(mid)
        if not out:
            raise AmazonBadRequestError("no marketplace given")
        return out

    def marketplace_participations(self) -> list[dict[str, Any]]:
        """getMarketplaceParticipations: [{marketplace_id, country_code, name, participating, ...}]."""
        sellers = self._api("sellers")
        res = self._call(
            "getMarketplaceParticipations",
            lambda: sellers.get_marketplace_participation(),
            lambda r: isinstance(r.payload, list) or (isinstance(r.payload, dict) and "payload" in r.payload),
        )
        out: list[dict[str, Any]] = []
        for entry in res.payload if isinstance(res.payload, list) else []:
            m = entry.get("marketplace") or {}
            p = entry.get("participation") or {}
            out.append({
                "marketplace_id": m.get("id"),
                "country_code": m.get("countryCode"),
                "name": m.get("name"),
                "currency": m.get("defaultCurrencyCode"),
                "participating": bool(p.get("isParticipating")),
                "has_suspended_listings": bool(p.get("hasSuspendedListings")),
                "store_name": entry.get("storeName"),
            })
        return out

    # --- orders ---------------------------------------------------------------------------------------

    def _window(self, updated_after: datetime, updated_before: datetime) -> tuple[datetime, datetime] | None:
        if updated_after.tzinfo is None or updated_before.tzinfo is None:
            raise ValueError("updated_after/updated_before must be timezone-aware")
        latest = self.clock.now() - limits.ORDERS_LAG
        before = min(updated_before, latest)
        if before <= updated_after:
            return None
        return updated_after, before

    def fetch_orders(
        self, marketplace_ids: list[str], updated_after: datetime, updated_before: datetime
    ) -> Iterator[Order | UnparsableOrder]:
        """Orders last updated in [updated_after, updated_before] (``updated_before`` clamped to now − 2 min),
        each once, with their items; through Orders 2026-01-01 searchOrders or v0 getOrders+getOrderItems per
        ``settings.orders_api``. One payload that does not parse yields `UnparsableOrder`."""
        window = self._window(updated_after, updated_before)
        if window is None:
            return
        mids = self._marketplace_ids(marketplace_ids)
        seen: set[str] = set()
        for i in range(0, len(mids), MAX_MARKETPLACES_PER_CALL):
            chunk = mids[i : i + MAX_MARKETPLACES_PER_CALL]
            source = (self._orders_2026(chunk, *window) if self.settings.orders_api == "2026-01-01"
                      else self._orders_v0(chunk, *window))
            for record in source:
                if record.amazon_order_id in seen:
                    continue
                seen.add(record.amazon_order_id)
                yield record

    def fetch_order(self, amazon_order_id: str) -> Order | None:
        """One order with its items, or None when Amazon does not know it (404)."""
        try:
            if self.settings.orders_api == "2026-01-01":
                return self._order_2026(amazon_order_id)
            return self._order_v0(amazon_order_id)
        except AmazonBadRequestError as exc:
            if exc.status == 404:
                return None
            raise

    # 2026-01-01 ----------------------------------------------------------------------------------------

    def _included_2026(self) -> str:
        parts = list(INCLUDED_2026)
        if self.settings.pii and not self._pii_refused:
            parts += INCLUDED_2026_PII
        return ",".join(parts)

    def _warn_pii(self, reason: str) -> None:
        with self._pii_lock:
            self._pii_refused = True
            if not self._pii_warned:
                self._pii_warned = True
                log.warning("Amazon refused access to buyer data (%s); continuing without buyer names and "
                            "addresses (needs Amazon's restricted roles)", self._scrub(reason))

    def _orders_2026(self, mids: list[str], after: datetime, before: datetime) -> Iterator[Order | UnparsableOrder]:
        client = self._api("orders2026")
        while True:
            included = self._included_2026()
            params: dict[str, Any] = {
                "lastUpdatedAfter": iso(after),
                "lastUpdatedBefore": iso(before),
                "marketplaceIds": ",".join(mids),
                "includedData": included,
                "maxResultsPerPage": 100,
            }

            def fetch(token: str | None, params: dict[str, Any] = params) -> ApiResponse:
                extra = {"paginationToken": token} if token else {}
                return client.search_orders(**params, **extra)

            try:
                for page in self._pages(
                    "searchOrders",
                    fetch,
                    lambda r: (r.pagination or {}).get("nextToken") or r.payload.get("nextToken"),
                    lambda r: isinstance(r.payload.get("orders"), list),
                ):
                    for raw in page.payload["orders"]:
                        yield parse_order_2026(raw)
                return
            except AmazonAuthError as exc:
                if exc.status == 403 and "BUYER" in included:
                    self._warn_pii(str(exc))
                    continue  # again without BUYER/RECIPIENT (fetch_orders drops the duplicates)
                raise

    def _order_2026(self, order_id: str) -> Order | None:
        client = self._api("orders2026")
        while True:
            included = self._included_2026()
            try:
                res = self._call(
                    "getOrder2026",
                    lambda inc=included: client.get_order(order_id, includedData=inc),  # type: ignore[misc]
                    lambda r: isinstance(r.payload.get("order"), dict),
                )
            except AmazonAuthError as exc:
                if exc.status == 403 and "BUYER" in included:
                    self._warn_pii(str(exc))
                    continue
                raise
            record = parse_order_2026(res.payload["order"])
            if isinstance(record, UnparsableOrder):
                raise AmazonPayloadError(f"order {order_id} does not parse: {record.error}")
            return record

    # v0 ------------------------------------------------------------------------------------------------

    def _restricted_token(self) -> str | None:
        """One Restricted Data Token per run for getOrders/getOrder/getOrderItems (renewed only on expiry)."""
        if not self.settings.pii or self._pii_refused:
            return None
        with self._pii_lock:
            if self._rdt and self.clock.monotonic() < self._rdt_expires:
                return self._rdt
        tokens = self._api("tokens")
        resources = [
            {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo", "shippingAddress"]},
            {"method": "GET", "path": "/orders/v0/orders/{orderId}", "dataElements": ["buyerInfo", "shippingAddress"]},
            {"method": "GET", "path": "/orders/v0/orders/{orderId}/orderItems", "dataElements": ["buyerInfo"]},
        ]
        try:
            res = self._call(
                "createRestrictedDataToken",
                lambda: tokens.create_restricted_data_token(restrictedResources=resources),
                lambda r: bool(r.payload.get("restrictedDataToken")),
            )
        except (AmazonAuthError, AmazonBadRequestError) as exc:
            self._warn_pii(str(exc))
            return None
        token = str(res.payload["restrictedDataToken"])
        try:
            ttl = float(res.payload.get("expiresIn") or 3600)
        except (TypeError, ValueError):
            ttl = 3600.0
        with self._pii_lock:
            self._rdt = token
            self._rdt_expires = self.clock.monotonic() + max(30.0, ttl - 60.0)
            self._secrets.append(token)
        return token

    def _v0_client(self) -> Any:
        rdt = self._restricted_token()
        if rdt is None:
            return self._api("orders_v0")
        client = self._api("orders_v0_pii")
        client.restricted_data_token = rdt
        return client

    @property
    def _v0_current(self) -> Any:
        """The Orders v0 client of the call in progress on this thread (with the RDT when PII is wanted)."""
        client = getattr(self._v0_local, "client", None)
        return client if client is not None else self._api("orders_v0")

    def _v0_call(self, operation: str, fn: Callable[[], ApiResponse],
                 require: Callable[[ApiResponse], bool] | None) -> ApiResponse:
        """A v0 call through the retry place, with the RDT client when PII is wanted (``fn`` takes the client
        from `_v0_current`). A 403 under the RDT renews an expired RDT once, otherwise drops PII (one
        warning) and repeats the call with the plain client."""
        while True:
            client = self._v0_client()
            self._v0_local.client = client
            try:
                return self._call(operation, fn, require)
            except AmazonAuthError as exc:
                if client is self._clients.get("orders_v0_pii") and exc.status == 403:
                    with self._pii_lock:
                        renewable = self._rdt is not None and self.clock.monotonic() >= self._rdt_expires - 120
                        self._rdt = None
                    if renewable:
                        continue  # the RDT had (almost) expired: one new one
                    self._warn_pii(str(exc))
                    continue
                raise
            finally:
                self._v0_local.client = None

    def _orders_v0(self, mids: list[str], after: datetime, before: datetime) -> Iterator[Order | UnparsableOrder]:
        params: dict[str, Any] = {
            "LastUpdatedAfter": iso(after),
            "LastUpdatedBefore": iso(before),
            "MarketplaceIds": ",".join(mids),
            "MaxResultsPerPage": 100,
        }

        def fetch(token: str | None) -> ApiResponse:
            extra = {"NextToken": token} if token else {}
            return cast(ApiResponse, self._v0_current.get_orders(**params, **extra))

        for page in self._pages("getOrders", fetch, lambda r: r.payload.get("NextToken"),
                                lambda r: isinstance(r.payload.get("Orders"), list), call=self._v0_call):
            for raw in page.payload["Orders"]:
                yield self._with_items_v0(raw)

    def fetch_orders_by_ids(self, marketplace_id: str, order_ids: list[str],
                            updated_after: datetime) -> Iterator[Order | UnparsableOrder]:
        """Orders v0 only: these orders (last updated at or after ``updated_after``), with their items, by
        getOrders filtered on AmazonOrderIds, 50 a call (Orders 2026-01-01 searchOrders has no such filter)."""
        if self.settings.orders_api != "v0":
            raise ValueError("fetch_orders_by_ids needs orders_api = \"v0\"")
        window = self._window(updated_after, self.clock.now())
        if window is None:
            return
        for i in range(0, len(order_ids), MAX_ORDER_IDS_PER_CALL):
            params: dict[str, Any] = {
                "LastUpdatedAfter": iso(window[0]),
                "LastUpdatedBefore": iso(window[1]),
                "MarketplaceIds": marketplace_id,
                "AmazonOrderIds": ",".join(order_ids[i : i + MAX_ORDER_IDS_PER_CALL]),
                "MaxResultsPerPage": 100,
            }

            def fetch(token: str | None, params: dict[str, Any] = params) -> ApiResponse:
                extra = {"NextToken": token} if token else {}
                return cast(ApiResponse, self._v0_current.get_orders(**params, **extra))

            for page in self._pages("getOrders", fetch, lambda r: r.payload.get("NextToken"),
                                    lambda r: isinstance(r.payload.get("Orders"), list), call=self._v0_call):
                for raw in page.payload["Orders"]:
                    yield self._with_items_v0(raw)

    def _items_v0(self, order_id: str) -> list[dict[str, Any]]:
        def fetch(token: str | None) -> ApiResponse:
            extra = {"NextToken": token} if token else {}
            return cast(ApiResponse, self._v0_current.get_order_items(order_id, **extra))

        items: list[dict[str, Any]] = []
        for page in self._pages("getOrderItems", fetch, lambda r: r.payload.get("NextToken"),
                                lambda r: isinstance(r.payload.get("OrderItems"), list), call=self._v0_call):
            items.extend(page.payload["OrderItems"])
        return items

    def _with_items_v0(self, raw: Any) -> Order | UnparsableOrder:
        order_id = str(raw.get("AmazonOrderId") or "?") if isinstance(raw, dict) else "?"
        if order_id == "?":
            return parse_order_v0(raw, [])
        return parse_order_v0(raw, self._items_v0(order_id))

    def _order_v0(self, order_id: str) -> Order | None:
        res = self._v0_call("getOrder", lambda: self._v0_current.get_order(order_id),
                            lambda r: isinstance(r.payload, dict) and bool(r.payload.get("AmazonOrderId")))
        record = self._with_items_v0(res.payload)
        if isinstance(record, UnparsableOrder):
            raise AmazonPayloadError(f"order {order_id} does not parse: {record.error}")
        return record

    # --- reports --------------------------------------------------------------------------------------

    def _reusable_reports(self, report_type: str, mids: list[str]) -> dict[tuple[str, str], str]:
        """Finished reports of this type and marketplaces that Amazon still holds: (dataStartTime, dataEndTime)
        → document id. Listed once per client (one getReports page instead of one call per window); the
        reports this client finishes itself are added as they finish."""
        key = (report_type, tuple(sorted(mids)))
        known = self._done_reports.get(key)
        if known is not None:
            return known
        known = {}
        reports = self._api("reports")
        params = {"reportTypes": report_type, "processingStatuses": "DONE", "marketplaceIds": ",".join(mids[:10]),
                  "pageSize": 100}

        def fetch(token: str | None) -> ApiResponse:
            return reports.get_reports(nextToken=token) if token else reports.get_reports(**params)

        try:
            for page in self._pages("getReports", fetch, lambda r: r.next_token,
                                    lambda r: isinstance(r.payload.get("reports"), list), max_pages=3):
                for rep in page.payload["reports"]:
                    if rep.get("reportType") != report_type or not rep.get("reportDocumentId"):
                        continue
                    if sorted(rep.get("marketplaceIds") or []) != sorted(mids):
                        continue
                    window = (_window_key(rp.parse_datetime(rep.get("dataStartTime"))),
                              _window_key(rp.parse_datetime(rep.get("dataEndTime"))))
                    known.setdefault(window, str(rep["reportDocumentId"]))  # newest first: keep the newest
        except AmazonBadRequestError as exc:  # reuse is an optimisation: never fail the run on it
            log.info("could not look for reusable %s reports: %s", report_type, exc)
        self._done_reports[key] = known
        return known

    def _find_done_report(self, report_type: str, mids: list[str], start: datetime | None,
                          end: datetime | None) -> str | None:
        """A finished report of this type/marketplaces/window that we can reuse (its document id)."""
        doc = self._reusable_reports(report_type, mids).get((_window_key(start), _window_key(end)))
        if doc is not None:
            log.info("reusing finished %s report for %s → %s", report_type, _window_key(start), _window_key(end))
        return doc

    def _remember_done(self, report_type: str, mids: list[str], start: datetime | None, end: datetime | None,
                       document_id: str) -> None:
        self._reusable_reports(report_type, mids)[(_window_key(start), _window_key(end))] = document_id

    def _create_report(self, report_type: str, mids: list[str], start: datetime | None = None,
                       end: datetime | None = None) -> str:
        reports = self._api("reports")
        body: dict[str, Any] = {"reportType": report_type, "marketplaceIds": list(mids)}
        if start is not None:
            body["dataStartTime"] = iso(start)
        if end is not None:
            body["dataEndTime"] = iso(end)
        created = self._call("createReport", lambda: reports.create_report(**body),
                             lambda r: bool(r.payload.get("reportId")))
        return str(created.payload["reportId"])

    def _run_report(self, report_type: str, mids: list[str], start: datetime | None = None,
                    end: datetime | None = None, *, reuse: bool = False) -> str | None:
        """createReport → poll getReport → the DONE report's document id; None when CANCELLED (no data).
        FATAL is retried after ``report_fatal_cooldown`` up to ``report_fatal_retries`` times."""
        job = _ReportJob(start, end)
        self._start_job(report_type, mids, job, reuse=reuse)
        self._finish_job(report_type, mids, job)
        return job.document_id

    def _start_job(self, report_type: str, mids: list[str], job: _ReportJob, *, reuse: bool) -> None:
        """Reuse a finished report of the job's window, or ask Amazon for one (without waiting for it)."""
        if job.report_id is not None or job.document_id is not None or job.cancelled:
            return
        if reuse:
            doc = self._find_done_report(report_type, mids, job.start, job.end)
            if doc is not None:
                job.document_id = doc
                return
        job.report_id = self._create_report(report_type, mids, job.start, job.end)
        job.created_at = self.clock.monotonic()

    def _finish_job(self, report_type: str, mids: list[str], job: _ReportJob,
                    between_polls: Callable[[], None] | None = None) -> None:
        """Wait until the job's report is DONE (document id), CANCELLED (no data) or FATAL (after
        ``report_fatal_cooldown``, asked for again, up to ``report_fatal_retries`` times)."""
        while job.document_id is None and not job.cancelled:
            if job.report_id is None:
                self._start_job(report_type, mids, job, reuse=False)
                continue
            final = self._poll_report(job.report_id, job.created_at, between_polls)
            status = final.get("processingStatus")
            if status == "DONE":
                doc = final.get("reportDocumentId")
                if not doc:
                    raise AmazonReportError(f"report {job.report_id} ({report_type}) is DONE without a document")
                job.document_id = str(doc)
                if job.start is not None or job.end is not None:
                    self._remember_done(report_type, mids, job.start, job.end, job.document_id)
                return
            if status == "CANCELLED":
                log.info("report %s (%s) was cancelled by Amazon: no data", job.report_id, report_type)
                job.cancelled = True
                return
            job.fatal += 1
            if job.fatal > self.report_fatal_retries:
                raise AmazonReportError(f"report {job.report_id} ({report_type}) ended FATAL "
                                        f"{job.fatal} time(s); giving up")
            log.warning("report %s (%s) ended FATAL; trying again in %.0fs", job.report_id, report_type,
                        self.report_fatal_cooldown)
            self.clock.sleep(self.report_fatal_cooldown)
            job.report_id = None

    def _poll_report(self, report_id: str, created_at: float | None = None,
                     between_polls: Callable[[], None] | None = None) -> dict[str, Any]:
        """getReport until DONE/CANCELLED/FATAL, with backoff. A report asked for a while ago (prefetched) is
        polled at once; a fresh one first after ``report_poll_initial`` (``[amazon] report_poll_initial``).
        ``between_polls`` runs before each wait (prefetching other windows' reports)."""
        reports = self._api("reports")
        started = self.clock.monotonic() if created_at is None else created_at
        delay = self.report_poll_initial
        if created_at is not None:
            # the first poll when the report can be done: after report_poll_initial, or after the processing
            # time Amazon took for this run's earlier reports (fewer getReport calls, no blind backoff)
            first = max(self.report_poll_initial, self._expected_processing())
            age = self.clock.monotonic() - started
            if age < first:
                self._wait(first - age, between_polls)
                delay = min(delay * 1.5, self.report_poll_max)
        while True:
            res = self._call("getReport", lambda: reports.get_report(report_id),
                             lambda r: bool(r.payload.get("processingStatus")))
            payload: dict[str, Any] = res.payload
            if payload["processingStatus"] in ("DONE", "CANCELLED", "FATAL"):
                self._observe_processing(payload)
                return payload
            if self.clock.monotonic() - started + delay > self.settings.report_poll_ceiling:
                raise AmazonReportError(
                    f"report {report_id} still {payload['processingStatus']} after "
                    f"{self.clock.monotonic() - started:.0f}s (report_poll_ceiling)")
            self._wait(delay, between_polls)
            delay = min(delay * 1.5, self.report_poll_max)

    def _wait(self, seconds: float, between: Callable[[], None] | None) -> None:
        """Sleep on the clock; with ``between``, in slices of at most ``REPORT_WAIT_SLICE`` seconds with
        ``between`` before each (so prefetching uses rate-limit tokens as soon as they refill)."""
        until = self.clock.monotonic() + seconds
        while True:
            left = until - self.clock.monotonic()
            if left <= 0:
                return
            if between is None:
                self.clock.sleep(left)
                return
            between()
            self.clock.sleep(min(left, REPORT_WAIT_SLICE))

    def _observe_processing(self, payload: dict[str, Any]) -> None:
        created = rp.parse_datetime(payload.get("createdTime"))
        ended = rp.parse_datetime(payload.get("processingEndTime"))
        if created is not None and ended is not None and ended >= created:
            self._processing_seen.append((ended - created).total_seconds())
            del self._processing_seen[:-10]

    def _expected_processing(self) -> float:
        """How long this run's reports took to process (the median of the last ten), 0 before the first."""
        seen = sorted(self._processing_seen)
        return seen[len(seen) // 2] if seen else 0.0

    def _download_document(self, document_id: str) -> tuple[IO[bytes], str]:
        """The report document, decompressed into a temporary file (rewound), and its charset."""
        reports = self._api("reports")
        meta_require: Callable[[ApiResponse], bool] = lambda r: bool(r.payload.get("url"))  # noqa: E731
        meta = self._call("getReportDocument", lambda: reports.get_report_document(document_id), meta_require)
        for refreshed in (False, True):
            url = str(meta.payload["url"])
            compressed = bool(meta.payload.get("compressionAlgorithm")) or None
            try:
                return self._call("downloadReportDocument",
                                  lambda url=url, c=compressed: self._download(url, c),  # type: ignore[misc]
                                  limited=False)
            except (AmazonAuthError, AmazonBadRequestError):
                if refreshed:
                    raise AmazonReportError(f"report document {document_id} could not be downloaded") from None
                # the presigned URL expired (5 minutes): ask for a fresh one, once
                meta = self._call("getReportDocument", lambda: reports.get_report_document(document_id),
                                  meta_require)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _document(self, document_id: str) -> Iterator[Iterator[str]]:
        """The report document as decoded text lines, streamed to a temporary file (one document at a time)."""
        spool, charset = self._download_document(document_id)
        try:
            yield rp.text_lines(spool, charset)
        finally:
            spool.close()

    def _download(self, url: str, compressed: bool | None) -> tuple[IO[bytes], str]:
        # a real temporary file (not held in memory; SpooledTemporaryFile is no full BufferedIOBase before 3.11)
        spool = cast(IO[bytes], tempfile.TemporaryFile())  # noqa: SIM115 - returned open, closed by the caller
        try:
            with self._doc_http.stream("GET", url) as response:
                if not 200 <= response.status_code < 300:
                    response.read()
                    message, code = _amazon_message(response)
                    raise _HttpStatusError(response.status_code, response.headers, message, code)
                charset = rp.charset_from_content_type(response.headers.get("content-type"))
                dec = rp.Decompressor(None if compressed is None else compressed)
                for chunk in response.iter_bytes():
                    spool.write(dec.feed(chunk))
                spool.write(dec.flush())
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool, charset

    def fetch_listings(self, marketplace_id: str) -> Iterator[Listing]:
        """Every listing of one marketplace from GET_MERCHANT_LISTINGS_ALL_DATA (a fresh snapshot)."""
        mid = self._marketplace_ids([marketplace_id])[0]
        doc = self._run_report(rp.LISTINGS_REPORT, [mid])
        if doc is None:
            return
        currency = mp.BY_ID[mid].currency if mid in mp.BY_ID else None
        with self._document(doc) as lines:
            yield from rp.parse_listings(rp.iter_tsv(lines), mid, currency)

    # orders reports: windows, prefetching and the backfill plan -----------------------------------------

    def plan_orders_reports(self, marketplace_ids: list[str], start: datetime, end: datetime) -> None:
        """Announce a newest-first walk over [start, end] (a backfill): the reports of its ≤ 30-day windows
        are then asked for ahead of the reads (``report_prefetch`` at a time) and each document serves every
        read that falls into its window, whatever the read's size. Optional: without it, two contiguous
        newest-first reads start the same plan, bounded below by Amazon's two-year horizon."""
        mids = self._marketplace_ids(marketplace_ids)
        plan = self._backward_plan(mids, _whole(end), _whole(start))
        plan.announced = True
        old = self._plans.pop(tuple(mids), None)
        if old is not None:
            old.close()
        self._plans[tuple(mids)] = plan

    def _backward_plan(self, mids: list[str], top: datetime, floor: datetime | None) -> _OrdersPlan:
        """Windows from ``top`` down to ``floor`` (None: no known floor, ``report_plan_windows`` at most), cut
        on a fixed 30-day grid so that a resumed run meets the same windows and reuses their reports."""
        jobs: list[_ReportJob] = []
        upper = top
        limit = self.report_plan_windows
        while (floor is None or upper > floor) and len(jobs) < limit:
            window = limits.REPORT_WINDOW
            grid = _GRID_EPOCH + ((upper - _GRID_EPOCH - timedelta(seconds=1)) // window) * window
            lower = grid if floor is None else max(floor, grid)
            jobs.append(_ReportJob(lower, upper))
            upper = lower
        return _OrdersPlan(jobs=jobs, created=self.clock.monotonic())

    def _horizon(self, mids: list[str]) -> datetime | None:
        """Amazon's two-year horizon for these marketplaces (None when one of them keeps older orders)."""
        horizon = limits.orders_horizon(self.clock.now(), [mp.BY_ID[m] for m in mids if m in mp.BY_ID])
        return None if horizon is None else _whole(horizon) + timedelta(seconds=1)

    def _jobs_for(self, mids: list[str], after: datetime, end: datetime) -> tuple[list[_ReportJob], list[_ReportJob]]:
        """(the windows serving the read [after, end], in serving order; the sequence they belong to, in the
        same order, from which the next ``report_prefetch`` windows are asked for ahead)."""
        key = tuple(mids)
        plan = self._plans.get(key)
        if plan is not None and self.clock.monotonic() - plan.created > self.report_cache_ttl:
            plan.close()
            self._plans.pop(key, None)
            plan = None
        if plan is None or not plan.covers(after, end):
            last = self._last_read.get(key)
            if plan is not None:
                plan.close()
                self._plans.pop(key, None)
                plan = None
            if last is not None and last[0] == end and end - after <= limits.REPORT_WINDOW:
                # a newest-first walk (backfill): plan its windows down to the horizon
                horizon = self._horizon(mids)
                # (a day below the horizon: the horizon moves on while we read, and nothing lies below it)
                floor = min(after, horizon - timedelta(days=1)) if horizon is not None else None
                plan = self._backward_plan(mids, end, floor)
                self._plans[key] = plan
        self._last_read[key] = (after, end)
        if plan is not None and plan.covers(after, end):
            serving = [j for j in plan.jobs if j.start is not None and j.end is not None
                       and j.start < end and j.end > after]
            return serving, plan.jobs
        # a one-off read (sync-orders): its own windows of ≤ 30 days, oldest first
        jobs: list[_ReportJob] = []
        start = after
        while start < end:
            stop = min(start + limits.REPORT_WINDOW, end)
            jobs.append(_ReportJob(start, stop))
            start = stop
        return jobs, jobs

    def _prefetch_depth(self, planned: _OrdersPlan | None, sequence: list[_ReportJob]) -> int:
        """How many windows beyond the current one to keep asked for. Every window of a one-off read or of an
        announced walk will be read, so all of them (within the createReport burst, then as tokens refill). A
        walk only guessed from its reads may stop anywhere above the horizon, so ``report_prefetch`` windows,
        more when Amazon is slow: two processing times' worth of reports at the createReport rate (one a
        minute), which bounds the reports asked for in vain when the walk stops early."""
        if planned is None or planned.announced or not any(j is sequence[0] for j in planned.jobs):
            return len(sequence)
        return max(self.report_prefetch, math.ceil(2 * self._expected_processing() / 60.0))

    def fetch_orders_report(
        self, marketplace_ids: list[str], updated_after: datetime, updated_before: datetime
    ) -> Iterator[Order | UnparsableOrder]:
        """Orders last updated in [updated_after, updated_before] from
        GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL, in windows of ≤ 30 days, each order once.

        The reports of the next windows are asked for while the current one is read (Amazon processes them in
        parallel); a finished report of the same window is reused; CANCELLED windows have no data; FATAL ones
        are asked for again after Amazon's cooldown. Reads of a newest-first walk (backfill chunks of any
        size) are served from 30-day documents kept on disk until the walk has passed them.
        ``source="report"``."""
        if updated_after.tzinfo is None or updated_before.tzinfo is None:
            raise ValueError("updated_after/updated_before must be timezone-aware")
        mids = self._marketplace_ids(marketplace_ids)
        # whole seconds: Amazon echoes report windows to the second, and reuse compares them
        end = _whole(min(updated_before, self.clock.now() - limits.ORDERS_LAG))
        after = _whole(updated_after)
        if after >= end:
            return
        default_mid = mids[0] if len(mids) == 1 else None
        serving, sequence = self._jobs_for(mids, after, end)
        planned = self._plans.get(tuple(mids))
        previous: dict[str, datetime] = {}  # the orders of the previous window (boundary duplicates)
        try:
            for job in serving:
                self._start_job(rp.ORDERS_REPORT, mids, job, reuse=True)
                here = next(i for i, j in enumerate(sequence) if j is job)
                ahead = sequence[here + 1: here + 1 + self._prefetch_depth(planned, sequence)]

                def prefetch(ahead: list[_ReportJob] = ahead) -> None:
                    # keep the next windows' reports processing on Amazon's side, but never wait for a
                    # createReport token: called again between polls, when the bucket has refilled
                    for other in ahead:
                        if other.report_id is None and other.document_id is None and not other.cancelled:
                            if not self.limiter.ready("createReport"):
                                return
                            self._start_job(rp.ORDERS_REPORT, mids, other, reuse=True)

                prefetch()
                self._finish_job(rp.ORDERS_REPORT, mids, job, prefetch)
                current: dict[str, datetime] = {}
                if job.document_id is not None:
                    if job.spool is None:
                        job.spool, job.charset = self._download_document(job.document_id)
                        # first pass: rows per order, so the second streams orders out as they complete
                        job.row_counts = rp.count_order_rows(rp.iter_tsv(rp.text_lines(job.spool, job.charset)))
                    job.spool.seek(0)
                    whole_window = job.start is not None and after <= job.start and job.end is not None \
                        and job.end <= end
                    for record in rp.parse_orders(rp.iter_tsv(rp.text_lines(job.spool, job.charset)), default_mid,
                                                  None if whole_window else (after, end),
                                                  row_counts=job.row_counts):
                        stamp = record.last_update_date if isinstance(record, Order) else None
                        key = record.amazon_order_id
                        if stamp is None:
                            if key in job.unparsable:
                                continue  # an unreadable order is reported once per window
                            job.unparsable.add(key)
                        if key in previous and (stamp is None or stamp <= previous[key]):
                            continue  # the same order on a window boundary
                        current[key] = stamp or _MIN_DATE
                        yield record
                previous = current
                if planned is None or not any(j is job for j in planned.jobs) or \
                        (job.start is not None and job.start >= after):
                    job.close()  # a newest-first walk never comes back to a window it has passed
        finally:
            if planned is None or self._plans.get(tuple(mids)) is not planned:
                for job in serving:
                    job.close()

    # --- catalog --------------------------------------------------------------------------------------

    def fetch_catalog_items(self, asins: list[str], marketplace_id: str) -> dict[str, CatalogItem]:
        """Catalog Items 2022-04-01 searchCatalogItems, 20 ASINs per call. ASINs Amazon does not know are
        simply absent from the result."""
        mid = self._marketplace_ids([marketplace_id])[0]
        catalog = self._api("catalog")
        unique = list(dict.fromkeys(a.strip() for a in asins if a and a.strip()))
        out: dict[str, CatalogItem] = {}
        for i in range(0, len(unique), limits.CATALOG_BATCH):
            batch = unique[i : i + limits.CATALOG_BATCH]
            params = {
                "identifiers": ",".join(batch),
                "identifiersType": "ASIN",
                "marketplaceIds": mid,
                "includedData": "summaries,images,classifications,productTypes",
                "pageSize": limits.CATALOG_BATCH,
            }

            def fetch(token: str | None, params: dict[str, Any] = params) -> ApiResponse:
                extra = {"pageToken": token} if token else {}
                return catalog.search_catalog_items(**params, **extra)

            for page in self._pages("searchCatalogItems", fetch,
                                    lambda r: (r.pagination or {}).get("nextToken") or r.payload.get("nextToken"),
                                    lambda r: isinstance(r.payload.get("items"), list), max_pages=10):
                for raw in page.payload["items"]:
                    item = parse_catalog_item(raw, mid)
                    if item is not None:
                        out[item.asin] = item
        return out

    # --- introspection --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "retries": dict(self.retries),
            "throttles": dict(self.throttles),
            "rate_limit_wait_s": round(self.limiter.waited, 3),
        }


_AWS_REGION = {"na": "us-east-1", "eu": "eu-west-1", "fe": "us-west-2"}

_API_CLASSES: dict[str, tuple[Any, dict[str, Any]]] = {
    "orders2026": (Orders, {"version": "2026-01-01"}),
    "orders_v0": (Orders, {"version": "v0"}),
    "orders_v0_pii": (Orders, {"version": "v0"}),
    "reports": (Reports, {}),
    "tokens": (Tokens, {}),
    "catalog": (CatalogItems, {"version": "2022-04-01"}),
    "sellers": (Sellers, {}),
}


__all__ = ["AmazonClient"]
