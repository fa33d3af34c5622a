"""THE one retry place and THE one pagination place of the Amazon layer.

Every SP-API operation goes through `Caller.call`: client-side rate limit, one attempt, then `classify` decides
what the outcome means. The classification table (first match wins):

    what came back                                   RetryClass          then
    -----------------------------------------------  ------------------  ----------------------------------------
    HTTP 429                                         WAIT_FOR_RATE       bucket emptied (x-amzn-RateLimit-Limit
                                                                         honoured), backoff, try again
    HTTP 5xx, HTTP 408 (HTML or empty body too)      RETRY               backoff, try again
    HTTP 401/403 "...expired..." (first time)        RENEW_TOKEN         new access token, try again at once
    HTTP 401/403                                     FATAL_AUTH          AmazonAuthError (exit code AUTH)
    other 4xx (400 InvalidInput, 404, ...)           REJECTED            AmazonBadRequestError, Amazon's message
    Login with Amazon refused the credentials        FATAL_AUTH          AmazonAuthError
    2xx body not JSON (truncated), empty payload     RETRY               backoff, try again
    connect error before Amazon ever answered        FATAL_UNAVAILABLE   AmazonUnavailableError at once (wrong
                                                                         host or no network: do not hide it)
    timeouts, resets, other transport errors         RETRY               backoff, try again
    EOF / OSError / zlib error (documents)           RETRY               backoff, try again
    2xx body carrying ``errors``                     REJECTED            AmazonBadRequestError

Retries use exponential backoff with full jitter (ceiling ``settings.backoff_ceiling``, at most
``settings.max_retries``, sleeping on the Clock), then `AmazonThrottledError` / `AmazonUnavailableError`.

A fatal outcome (FATAL_AUTH, REJECTED) may be *recovered* by a policy the caller hands in (``recover``): the
policy changes what the next attempt sends (drop buyer data, a new Restricted Data Token, a fresh document
URL) and answers True, and the attempt is made again; no other retry loop exists around this one.
Messages never contain a secret (`Transport.scrub`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from amz2erp.amazon.ratelimit import RateLimiter
from amz2erp.amazon.transport import (
    ApiResponse,
    AuthorizationError,
    BadBodyError,
    HttpStatusError,
    SellingApiException,
    Transport,
)
from amz2erp.clock import Clock
from amz2erp.config import AmazonSettings
from amz2erp.errors import (
    AmazonAuthError,
    AmazonBadRequestError,
    AmazonError,
    AmazonThrottledError,
    AmazonUnavailableError,
)

log = logging.getLogger("amz2erp.amazon")

T = TypeVar("T")

MAX_PAGES = 100_000


class RetryClass(Enum):
    """What one failed attempt means (the values only appear in logs and tests)."""

    RETRY = "retry"
    WAIT_FOR_RATE = "wait-for-rate"
    RENEW_TOKEN = "renew-token"
    FATAL_AUTH = "fatal-auth"
    FATAL_UNAVAILABLE = "fatal-unavailable"
    REJECTED = "rejected"

    @property
    def retried(self) -> bool:
        return self in (RetryClass.RETRY, RetryClass.WAIT_FOR_RATE)


@dataclass(frozen=True)
class Verdict:
    """The class of one failed attempt; ``detail`` is the log line of a retry or the message of a fatal
    error (not yet scrubbed); ``status`` the HTTP status when there was one."""

    retry_class: RetryClass
    detail: str
    status: int | None = None


def classify(exc: BaseException, operation: str, *, reached_amazon: bool, renewed: bool,
             lwa_host: str = "") -> Verdict | None:
    """The table of the module docstring as code. ``reached_amazon``: an access token was ever issued this run;
    ``renewed``: the access token was already renewed once in this call. None: not an outcome of a call
    (the exception propagates unchanged)."""
    if isinstance(exc, HttpStatusError):
        detail = f"HTTP {exc.status}: {exc.message}"
        if exc.status == 429:
            return Verdict(RetryClass.WAIT_FOR_RATE, detail, 429)
        if exc.status >= 500 or exc.status == 408:
            return Verdict(RetryClass.RETRY, detail, exc.status)
        if exc.status in (401, 403):
            if not renewed and "expired" in exc.message.lower():
                return Verdict(RetryClass.RENEW_TOKEN, detail, exc.status)
            return Verdict(RetryClass.FATAL_AUTH, f"Amazon refused {operation} ({detail}); check the app's "
                           "authorisation and roles", exc.status)
        return Verdict(RetryClass.REJECTED, f"Amazon rejected {operation} ({detail})", exc.status)
    if isinstance(exc, AuthorizationError):
        return Verdict(RetryClass.FATAL_AUTH,
                       f"Login with Amazon refused the credentials (HTTP {exc.status_code}: "
                       f"{exc.error_code or ''} {exc.message or ''})".replace("  ", " "), exc.status_code)
    if isinstance(exc, BadBodyError):
        return Verdict(RetryClass.RETRY, str(exc))
    if isinstance(exc, httpx.TransportError):
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) and not reached_amazon:
            # Nothing from Amazon has ever answered this run: a wrong endpoint or no network. Retrying for
            # minutes (8 backoffs) would only hide it.
            return Verdict(RetryClass.FATAL_UNAVAILABLE,
                           f"Amazon unreachable: Login with Amazon ({lwa_host}) did not answer {operation} "
                           f"({type(exc).__name__}: {exc}); check this machine's network and [amazon] "
                           "region / lwa_endpoint")
        return Verdict(RetryClass.RETRY, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (EOFError, OSError, zlib.error)):  # truncated/corrupt documents, resets outside httpx
        return Verdict(RetryClass.RETRY, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, SellingApiException):  # a 2xx body carrying `errors`
        return Verdict(RetryClass.REJECTED, f"Amazon rejected {operation}: {exc.message}")
    return None


def _fatal(verdict: Verdict) -> AmazonError:
    if verdict.retry_class is RetryClass.FATAL_AUTH:
        return AmazonAuthError(verdict.detail, status=verdict.status)
    if verdict.retry_class is RetryClass.FATAL_UNAVAILABLE:
        return AmazonUnavailableError(verdict.detail)
    return AmazonBadRequestError(verdict.detail, status=verdict.status)


Recover = Callable[[AmazonError], bool]
"""A policy for a fatal outcome: change what the next attempt sends and answer True, or answer False."""


class Caller:
    """Runs operations: rate limit, attempt, classification, retries, pagination; counts what it does.

    Counters for benchmarks: ``calls`` (HTTP attempts per operation, retries included), ``retries`` and
    ``throttles`` (429s seen) per operation."""

    def __init__(self, settings: AmazonSettings, clock: Clock, limiter: RateLimiter, transport: Transport, *,
                 backoff_base: float = 1.0, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.limiter = limiter
        self.transport = transport
        self.backoff_base = backoff_base
        self._rng = rng or random.Random()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.throttles: Counter[str] = Counter()
        self._counter_lock = threading.Lock()

    def count(self, key: str, counter: Counter[str] | None = None) -> None:
        with self._counter_lock:
            (self.calls if counter is None else counter)[key] += 1

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_ceiling, self.backoff_base * (2 ** min(attempt, 30)))
        return self._rng.uniform(0, ceiling)

    def call(self, operation: str, fn: Callable[[], T], require: Callable[[T], bool] | None = None, *,
             limited: bool = True, recover: Recover | None = None) -> T:
        """Run one SP-API operation: rate limit, status check, classification, retries (see the table)."""
        attempt = 0
        renewed = False
        scrub = self.transport.scrub
        while True:
            if limited:
                self.limiter.acquire(operation)
            self.count(operation)
            started = time.perf_counter()
            try:
                result = fn()
                log.debug("SP-API %s → ok (%.0f ms)", operation, (time.perf_counter() - started) * 1000)
            except Exception as exc:
                if isinstance(exc, HttpStatusError):
                    log.debug("SP-API %s → HTTP %d (%.0f ms)", operation, exc.status,
                              (time.perf_counter() - started) * 1000)
                verdict = classify(exc, operation, reached_amazon=bool(self.transport.tokens.issued),
                                   renewed=renewed, lwa_host=urlsplit(self.transport.lwa_url).netloc)
                if verdict is None:
                    raise
                if verdict.retry_class is RetryClass.WAIT_FOR_RATE:
                    self.count(operation, self.throttles)
                    assert isinstance(exc, HttpStatusError)
                    self.limiter.throttled(operation, exc.headers.get("x-amzn-RateLimit-Limit"))
                elif verdict.retry_class is RetryClass.RENEW_TOKEN:
                    renewed = True  # an access token expired early: fetch a new one, once
                    self.transport.tokens.invalidate()
                    continue
                elif not verdict.retry_class.retried:
                    error = _fatal(Verdict(verdict.retry_class, scrub(verdict.detail), verdict.status))
                    if recover is not None and verdict.retry_class is not RetryClass.FATAL_UNAVAILABLE \
                            and recover(error):
                        continue
                    raise error from None
                detail = verdict.detail
                kind = verdict.retry_class
            else:
                if require is None or require(result):
                    if isinstance(result, ApiResponse):
                        self.limiter.observe(operation, (result.headers or {}).get("x-amzn-RateLimit-Limit"))
                    return result
                kind, detail = RetryClass.RETRY, "empty or incomplete payload"
            attempt += 1
            if attempt > self.settings.max_retries:
                msg = scrub(f"{operation} failed after {attempt} attempts ({detail})")
                if kind is RetryClass.WAIT_FOR_RATE:
                    raise AmazonThrottledError(f"Amazon kept throttling: {msg}", status=429)
                raise AmazonUnavailableError(f"Amazon unavailable: {msg}")
            self.count(operation, self.retries)
            wait = self.backoff(attempt)
            log.info("%s: %s; retry %d/%d in %.1fs", operation, scrub(detail), attempt,
                     self.settings.max_retries, wait)
            self.clock.sleep(wait)

    def pages(self, operation: str, fetch: Callable[[str | None], ApiResponse],
              next_token: Callable[[ApiResponse], str | None], require: Callable[[ApiResponse], bool] | None = None,
              *, max_pages: int = MAX_PAGES, recover: Recover | None = None) -> Iterator[ApiResponse]:
        """Every page of a paginated operation. ``fetch(token)`` makes one request (token None = first page);
        each page goes through `call`."""
        return self.walk(operation, lambda t: self.call(operation, lambda: fetch(t), require, recover=recover),
                         next_token, max_pages=max_pages)

    @staticmethod
    def walk(operation: str, call_page: Callable[[str | None], ApiResponse],
             next_token: Callable[[ApiResponse], str | None], *, max_pages: int = MAX_PAGES) -> Iterator[ApiResponse]:
        """The pagination loop: ``call_page(token)`` is one page through the retry place. The same next token
        twice (or more than ``max_pages`` pages) raises `AmazonUnavailableError` instead of looping forever."""
        token: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            page = call_page(token)
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
