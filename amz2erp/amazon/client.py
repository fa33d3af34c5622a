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
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any, TypeVar

from amz2erp.amazon import limits
from amz2erp.amazon import marketplaces as mp
from amz2erp.amazon import reports as rp
from amz2erp.amazon.calls import Caller
from amz2erp.amazon.marketplaces import resolve_ids
from amz2erp.amazon.orders import OrderFetcher
from amz2erp.amazon.parse import (
    iso,
    parse_catalog_item,
)
from amz2erp.amazon.ratelimit import RateLimiter
from amz2erp.amazon.transport import ApiResponse, Transport
from amz2erp.clock import Clock, SystemClock
from amz2erp.config import AmazonSettings
from amz2erp.errors import (
    AmazonAuthError,
    AmazonBadRequestError,
    AmazonReportError,
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

# --- constants -----------------------------------------------------------------------------------------

REPORT_WAIT_SLICE = 15.0  # seconds: prefetching looks for a createReport token this often while waiting
_GRID_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # planned report windows are cut on a 30-day grid
_MIN_DATE = datetime.min.replace(tzinfo=timezone.utc)
MAX_MARKETPLACES_PER_CALL = 50
MAX_ORDER_IDS_PER_CALL = 50  # Orders v0 getOrders AmazonOrderIds
MAX_PAGES = 100_000

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
        self.limiter = RateLimiter(self.clock, rate_limits)
        self.transport = Transport(settings, self.clock, lambda: self.caller.count("lwaToken"))
        self.caller = Caller(settings, self.clock, self.limiter, self.transport, backoff_base=backoff_base, rng=rng)
        # the benchmarks' counters: the retry place's own
        self.calls, self.retries, self.throttles = self.caller.calls, self.caller.retries, self.caller.throttles
        self.orders = OrderFetcher(settings, self.clock, self.caller, self.transport)
        self._closed = False

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
        self.transport.close()

    # --- marketplaces -------------------------------------------------------------------------------

    def marketplace_participations(self) -> list[dict[str, Any]]:
        """getMarketplaceParticipations: [{marketplace_id, country_code, name, participating, ...}]."""
        sellers = self.transport.api("sellers")
        res = self.caller.call(
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

    # --- orders (amz2erp.amazon.orders) -------------------------------------------------------------

    def fetch_orders(
        self, marketplace_ids: list[str], updated_after: datetime, updated_before: datetime
    ) -> Iterator[Order | UnparsableOrder]:
        """Orders last updated in [updated_after, updated_before] (``updated_before`` clamped to now − 2 min),
        each once, with their items; through Orders 2026-01-01 searchOrders or v0 getOrders+getOrderItems per
        ``settings.orders_api``. One payload that does not parse yields `UnparsableOrder`."""
        return self.orders.fetch_orders(marketplace_ids, updated_after, updated_before)

    def fetch_order(self, amazon_order_id: str) -> Order | None:
        """One order with its items, or None when Amazon does not know it (404)."""
        return self.orders.fetch_order(amazon_order_id)

    def fetch_orders_by_ids(self, marketplace_id: str, order_ids: list[str],
                            updated_after: datetime) -> Iterator[Order | UnparsableOrder]:
        """Orders v0 only: these orders (last updated at or after ``updated_after``), with their items, by
        getOrders filtered on AmazonOrderIds, 50 a call (Orders 2026-01-01 searchOrders has no such filter)."""
        return self.orders.fetch_orders_by_ids(marketplace_id, order_ids, updated_after)

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
        reports = self.transport.api("reports")
        params = {"reportTypes": report_type, "processingStatuses": "DONE", "marketplaceIds": ",".join(mids[:10]),
                  "pageSize": 100}

        def fetch(token: str | None) -> ApiResponse:
            return reports.get_reports(nextToken=token) if token else reports.get_reports(**params)

        try:
            for page in self.caller.pages("getReports", fetch, lambda r: r.next_token,
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
        reports = self.transport.api("reports")
        body: dict[str, Any] = {"reportType": report_type, "marketplaceIds": list(mids)}
        if start is not None:
            body["dataStartTime"] = iso(start)
        if end is not None:
            body["dataEndTime"] = iso(end)
        created = self.caller.call("createReport", lambda: reports.create_report(**body),
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
        reports = self.transport.api("reports")
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
            res = self.caller.call("getReport", lambda: reports.get_report(report_id),
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
        reports = self.transport.api("reports")
        meta_require: Callable[[ApiResponse], bool] = lambda r: bool(r.payload.get("url"))  # noqa: E731
        meta = self.caller.call("getReportDocument", lambda: reports.get_report_document(document_id), meta_require)
        for refreshed in (False, True):
            url = str(meta.payload["url"])
            compressed = bool(meta.payload.get("compressionAlgorithm")) or None
            try:
                return self.caller.call("downloadReportDocument",
                                  lambda url=url, c=compressed: self.transport.download(url, c),  # type: ignore[misc]
                                  limited=False)
            except (AmazonAuthError, AmazonBadRequestError):
                if refreshed:
                    raise AmazonReportError(f"report document {document_id} could not be downloaded") from None
                # the presigned URL expired (5 minutes): ask for a fresh one, once
                meta = self.caller.call("getReportDocument", lambda: reports.get_report_document(document_id),
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

    def fetch_listings(self, marketplace_id: str) -> Iterator[Listing]:
        """Every listing of one marketplace from GET_MERCHANT_LISTINGS_ALL_DATA (a fresh snapshot)."""
        mid = resolve_ids([marketplace_id])[0]
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
        mids = resolve_ids(marketplace_ids)
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
        mids = resolve_ids(marketplace_ids)
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
        mid = resolve_ids([marketplace_id])[0]
        catalog = self.transport.api("catalog")
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

            for page in self.caller.pages("searchCatalogItems", fetch,
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



__all__ = ["AmazonClient"]
