"""retry: failed orders found again. Which failed orders a run's windows bring back anyway, which are read
back in bulk (by time range or by ids) and which one by one; `amz2erp retry`, by the ledger or by named ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from amz2erp.engine.orders import ORDER_ID, OrderWriter, WindowResult, fetch_window, process_orders
from amz2erp.engine.runtime import Runtime
from amz2erp.engine.windows import ReadMode, resolve_read_mode
from amz2erp.errors import UsageError
from amz2erp.models import Order, UnparsableOrder
from amz2erp.state import Kind, Status

# Failed orders whose last updates lie closer together than this are read back by one time-range search
# (100 orders a page, items included) rather than one getOrder each. A gap costs at most gap × order rate / 100
# extra pages; at a few hundred orders a day six hours stay within one page.
REFETCH_GAP = timedelta(hours=6)


@dataclass(frozen=True)
class FailedOrder:
    order_id: str
    marketplace: str | None
    last_update: datetime | None


@dataclass(frozen=True)
class RefetchRange:
    marketplace: str
    start: datetime
    end: datetime
    ids: frozenset[str]
    by_ids: bool = False  # Orders v0: getOrders filtered on these ids, updated since ``start`` (``end`` unused)


@dataclass
class RefetchPlan:
    covered: set[str] = field(default_factory=set)  # in a window this run reads anyway
    ranges: list[RefetchRange] = field(default_factory=list)
    singles: list[str] = field(default_factory=list)  # one call each (no date, or alone in its range)

    @property
    def outside(self) -> int:
        return sum(len(r.ids) for r in self.ranges) + len(self.singles)


def failed_orders(rt: Runtime) -> list[FailedOrder]:
    out = []
    for entry in rt.state.entries(Kind.ORDER, Status.FAILED):
        stamp = entry.info.get("last_update")
        when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
        out.append(FailedOrder(entry.key, entry.marketplace, when))
    return out


def plan_refetch(failed: Iterable[FailedOrder], windows: dict[str, tuple[datetime, datetime]], *,
                 by_ids: bool = False, gap: timedelta = REFETCH_GAP) -> RefetchPlan:
    """Which failed orders come back with the windows this run reads anyway (the cursor sits at the earliest
    failure, so normally all of them), which are read back in bulk, and which one by one.

    In bulk: Orders 2026-01-01 by time range (items come with the search); Orders v0 by ids, 50 a call
    (a v0 range would cost one getOrderItems for every order in it, failed or not)."""
    plan = RefetchPlan()
    dated: dict[str, list[FailedOrder]] = {}
    for f in failed:
        window = windows.get(f.marketplace or "")
        if f.last_update is not None and window is not None and window[0] <= f.last_update <= window[1]:
            plan.covered.add(f.order_id)
        elif f.last_update is None or f.marketplace is None:
            plan.singles.append(f.order_id)
        else:
            dated.setdefault(f.marketplace, []).append(f)
    for marketplace, group in sorted(dated.items()):
        group.sort(key=lambda f: f.last_update or datetime.min)
        if by_ids:
            for i in range(0, len(group), 50):
                batch = group[i : i + 50]
                first = batch[0].last_update
                assert first is not None
                plan.ranges.append(RefetchRange(marketplace, first, first, frozenset(f.order_id for f in batch),
                                                by_ids=True))
            continue
        clusters: list[list[FailedOrder]] = []
        for f in group:
            assert f.last_update is not None
            last = clusters[-1][-1].last_update if clusters else None
            if last is not None and f.last_update - last <= gap:
                clusters[-1].append(f)
            else:
                clusters.append([f])
        for cluster in clusters:
            if len(cluster) == 1:
                plan.singles.append(cluster[0].order_id)
                continue
            first, last = cluster[0].last_update, cluster[-1].last_update
            assert first is not None and last is not None
            plan.ranges.append(RefetchRange(marketplace, first, last + timedelta(seconds=1),
                                            frozenset(f.order_id for f in cluster)))
    return plan


def refetch(rt: Runtime, plan: RefetchPlan, *, record_missing: bool = True) -> Iterator[Order | UnparsableOrder]:
    """The orders of ``plan.ranges`` and ``plan.singles``, each once. An order a range did not bring back
    (updated since it failed) is asked for by id. ``record_missing``: an order Amazon no longer returns stays
    failed with that reason (the user sees it and can `retry --forget` it)."""
    from amz2erp.amazon import marketplaces as mp

    # A range is read by report only when it is long, even under `[sync] mode = "report"`: most ranges span
    # hours, and a report costs minutes of Amazon's time.
    mode = ReadMode.API if rt.settings.sync.mode == ReadMode.API.value else ReadMode.AUTO
    singles = list(plan.singles)
    for r in plan.ranges:
        read = resolve_read_mode(mode, r.end - r.start, rt.settings.sync.auto_report_days)
        found: set[str] = set()
        records = (rt.amazon.fetch_orders_by_ids(r.marketplace, sorted(r.ids), r.start) if r.by_ids
                   else fetch_window(rt, mp.resolve(r.marketplace), r.start, r.end, read))
        for record in records:
            if record.amazon_order_id in r.ids and record.amazon_order_id not in found:
                found.add(record.amazon_order_id)
                yield record
        singles.extend(sorted(r.ids - found))
    for order_id in singles:
        order = rt.amazon.fetch_order(order_id)
        if order is None:
            if record_missing:
                rt.state.mark_failed(Kind.ORDER, order_id, "Amazon no longer returns this order")
            continue
        yield order


def retry_orders(rt: Runtime, writer: OrderWriter, records: Iterable[Order | UnparsableOrder], count: int) -> WindowResult:
    with rt.reporter.progress(f"retrying {count} failed {'order' if count == 1 else 'orders'}",
                              total=count) as task:
        return process_orders(rt, writer, records, task)


def check_order_ids(ids: Iterable[str]) -> list[str]:
    """Amazon order ids as a user typed them: 3-7-7 digits, each once; anything else is a usage error."""
    out: list[str] = []
    for raw in ids:
        order_id = raw.strip()
        if not ORDER_ID.fullmatch(order_id):
            raise UsageError(f"{raw!r} is not an Amazon order id (like 111-1234567-1234567)")
        if order_id not in out:
            out.append(order_id)
    return out


def retry_failed(rt: Runtime, *, ids: Iterable[str] = ()) -> WindowResult:
    """`amz2erp retry`: re-fetch and re-process the orders the ledger holds as failed, in bulk where their
    dates allow, or explicitly named ones. A named order Amazon does not know is refused before anything is
    written."""
    writer = OrderWriter(rt)  # first: it refuses a run without the custom fields before anything is read
    named = check_order_ids(ids)
    total = WindowResult()
    if named:
        fetched = []
        for order_id in named:
            order = rt.amazon.fetch_order(order_id)
            if order is None:
                raise UsageError(f"order {order_id}: Amazon does not know this order id (nothing was written)")
            fetched.append(order)
        total.add(retry_orders(rt, writer, fetched, len(fetched)))
        return total
    plan = plan_refetch(failed_orders(rt), {}, by_ids=rt.settings.amazon.orders_api == "v0")
    if plan.outside:
        total.add(retry_orders(rt, writer, refetch(rt, plan), plan.outside))
    return total
