"""What a sync run holds: settings, the state store under the run lock, the two remote clients, the clock and
the reporter; plus the worker pool every sync uses. Built once per command by `open_runtime`."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from amz2erp.amazon import marketplaces as mp
from amz2erp.amazon.marketplaces import Marketplace
from amz2erp.clock import Clock, default_clock
from amz2erp.config import Settings
from amz2erp.engine.dryrun import erp_for, ledger_for
from amz2erp.erpnext.schema import REQUIRED_CUSTOM_FIELDS
from amz2erp.errors import Amz2ErpError, ConfigError, ExitCode, RecordError, UsageError
from amz2erp.log import MASKER
from amz2erp.state import Kind, RunLock, StateStore
from amz2erp.ui import Reporter

if TYPE_CHECKING:
    from amz2erp.amazon.client import AmazonClient
    from amz2erp.erpnext.client import ErpNextClient
    from amz2erp.mapping import MappingContext

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")



class Counts:
    """Thread-safe counters for the run summary."""

    def __init__(self) -> None:
        self._c: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._c[key] += n

    def get(self, key: str) -> int:
        with self._lock:
            return self._c[key]

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        state: StateStore,
        erp: ErpNextClient,
        amazon: AmazonClient,
        reporter: Reporter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.state = state
        self.erp = erp
        self.amazon = amazon
        self.reporter = reporter
        self.clock = clock
        self.counts = Counts()
        #: (Amazon order id, cancelled Sales Order, its amendment) per order amended for drift this run
        self.amendments: list[tuple[str, str, str]] = []
        self.exit_code: int = ExitCode.OK  # what the command decided; recorded in the run history
        self._price_list_currency: str | None = None
        self._company: dict[str, Any] | None = None
        self._ctx: MappingContext | None = None
        self._fields_checked = False

    @property
    def company(self) -> dict[str, Any]:
        if self._company is None:
            name = self.settings.defaults.company
            doc = self.erp.get("Company", name)
            if doc is None:
                raise ConfigError(f"[defaults] company: ERPNext has no Company {name!r} (run `amz2erp check`)")
            self._company = doc
        return self._company

    def mapping_context(self) -> MappingContext:
        if self._ctx is None:
            from amz2erp.mapping import MappingContext

            self._ctx = MappingContext.from_settings(
                self.settings,
                company_currency=str(self.company.get("default_currency") or "USD"),
                company_abbr=str(self.company.get("abbr") or ""),
            )
        return self._ctx

    def currency_price_list(self, currency: str | None) -> str:
        """The selling price list for a currency: the configured list for its own currency, "<list> <CUR>"
        for any other (sync-products creates those; orders use them when they exist)."""
        base = self.settings.defaults.price_list
        if self._price_list_currency is None:
            doc = self.erp.get("Price List", base) or {}
            self._price_list_currency = str(doc.get("currency") or self.company.get("default_currency") or "")
        return base if currency in (None, self._price_list_currency) else f"{base} {currency}"

    def require_custom_fields(self) -> None:
        """Refuse to write orders when ERPNext would silently drop amazon_order_id (→ duplicates)."""
        if self._fields_checked:
            return
        for name in REQUIRED_CUSTOM_FIELDS:
            if not self.erp.exists("Custom Field", name):
                raise ConfigError(
                    f"ERPNext has no custom field {name}: without it ERPNext silently drops the Amazon order id "
                    "and re-runs would duplicate orders; run `amz2erp setup` first"
                )
        self._fields_checked = True

    def run_pool(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        on_result: Callable[[T, R], None],
        *,
        workers: int | None = None,
    ) -> None:
        """Apply ``fn`` to a stream with a bounded number of records in flight (memory stays flat however
        long the stream). A fatal error (auth, remote unavailable, config) stops the pool and is re-raised;
        ``fn`` is expected to turn record-level failures into results itself."""
        workers = workers or self.settings.erpnext.workers
        if workers <= 1:
            for item in items:
                on_result(item, fn(item))
            return
        max_inflight = workers * 2
        pending: dict[Future[R], T] = {}
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="amz2erp")
        try:
            for item in items:
                pending[executor.submit(fn, item)] = item
                if len(pending) >= max_inflight:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        on_result(pending.pop(fut), fut.result())
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_result(pending.pop(fut), fut.result())
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


class Writer:
    """What every per-record writer (orders, products) holds for one run."""

    def __init__(self, rt: Runtime, *, dry_run: bool) -> None:
        self.rt = rt
        self.erp = erp_for(rt.erp, dry_run=dry_run)
        # a dry run writes to a ledger that keeps nothing: no branch around the writers' ledger writes
        self.state = ledger_for(rt.state, dry_run=dry_run)
        self.settings = rt.settings
        self.dry_run = dry_run
        self.ctx = rt.mapping_context()

    @contextmanager
    def intent(self, kind: Kind, key: str, content_hash: str = "", *,
               marketplace: str | None = None) -> Iterator[None]:
        """Record the intent before an ERPNext write of a master (customer, address, item). If ERPNext
        definitely refused it (a record error), nothing was written: the intent is dropped, and the failure
        is tracked on the order or listing that needed the master. If the outcome is unknown (unavailable,
        crash), the intent stays "writing" for the next run's lookup to settle."""
        self.state.mark_writing(kind, key, content_hash, marketplace=marketplace)
        try:
            yield
        except RecordError:
            self.state.forget(kind, key)
            raise


class KeyedLocks:
    """One lock per key (an order id, a customer key) while somebody holds or waits for it; dropped after,
    so a 100k-order run does not keep 100k locks (measured: ~600 B per order otherwise)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


def resolve_marketplaces(rt: Runtime, codes: Iterable[str] = ()) -> list[Marketplace]:
    """The marketplaces a command works on: ``--marketplace`` codes (each must be configured), else all."""
    configured = rt.settings.amazon.resolved_marketplaces()
    wanted = list(codes)
    if not wanted:
        return configured
    chosen = []
    for code in wanted:
        try:
            m = mp.resolve(code)
        except KeyError:
            raise UsageError(f"--marketplace {code}: unknown marketplace") from None
        if m not in configured:
            raise UsageError(f"--marketplace {code}: not in [amazon] marketplaces {rt.settings.amazon.marketplaces}")
        chosen.append(m)
    return chosen


def exit_code_for(exc: BaseException | None) -> int:
    if exc is None:
        return ExitCode.OK
    if isinstance(exc, Amz2ErpError):
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL


@contextmanager
def open_runtime(
    settings: Settings,
    reporter: Reporter,
    command: str,
    *,
    clock: Clock | None = None,
    amazon: AmazonClient | None = None,
    erp: ErpNextClient | None = None,
) -> Iterator[Runtime]:
    """Take the run lock, open the state and both clients; record the run in the history."""
    from amz2erp.amazon.client import AmazonClient
    from amz2erp.erpnext.client import ErpNextClient

    clock = clock or default_clock()
    lock = RunLock(settings.state.path)
    lock.acquire()
    try:
        state = StateStore(settings.state.path, clock=clock)
        run_id = state.start_run(command)
        # one masker for the logs, the error boundary and both clients (they add the tokens they are issued)
        erp_client = erp or ErpNextClient(settings.erpnext, masker=MASKER)
        amazon_client = amazon or AmazonClient(settings.amazon, clock=clock, masker=MASKER)
        rt = Runtime(settings, state=state, erp=erp_client, amazon=amazon_client, reporter=reporter, clock=clock)
        error: BaseException | None = None
        try:
            yield rt
        except BaseException as exc:
            error = exc
            raise
        finally:
            code = rt.exit_code if error is None else exit_code_for(error)
            state.end_run(run_id, code, rt.counts.as_dict())
            if amazon is None:
                amazon_client.close()
            state.close()
    finally:
        lock.release()
