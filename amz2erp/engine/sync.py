"""sync-orders: the incremental run. Each marketplace is read from its cursor (minus the overlap) to
now − 2 minutes; failed orders the windows do not cover are read back first; the cursor moves after each
window by `windows.next_cursor`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from amz2erp.amazon.marketplaces import Marketplace
from amz2erp.engine.orders import STREAM, OrderWriter, WindowResult, fetch_window, process_orders
from amz2erp.engine.retry import RefetchPlan, failed_orders, plan_refetch, refetch, retry_orders
from amz2erp.engine.runtime import Runtime, resolve_marketplaces
from amz2erp.engine.windows import (
    ReadMode,
    newest_readable,
    next_cursor,
    reachable_start,
    read_mode,
    resolve_read_mode,
    to_utc_start,
)
from amz2erp.errors import UsageError


def sync_orders(rt: Runtime, *, after: date | None = None, marketplaces: Iterable[str] = (),
                dry_run: bool = False, mode: ReadMode | str | None = None) -> WindowResult:
    """Incremental: each marketplace from its cursor (minus the overlap) to now − 2 minutes. The cursor moves
    only over orders that landed: a failure pins it at the failed order's last-update time.

    Failed orders come back with the window when it covers them (the pinned cursor makes sure it does);
    the others are read back first, in bulk (`plan_refetch`)."""
    now = rt.clock.now()
    end = newest_readable(now)
    if after is not None and after > now.date():
        raise UsageError(f"--after {after} is in the future: Amazon has orders up to {end:%Y-%m-%d %H:%M} UTC")
    asked = read_mode(mode, rt.settings.sync)
    writer = OrderWriter(rt, dry_run=dry_run)
    total = WindowResult()
    overlap = timedelta(minutes=rt.settings.sync.overlap_minutes)
    windows: list[tuple[Marketplace, datetime | None, datetime, datetime]] = []
    for marketplace in resolve_marketplaces(rt, marketplaces):
        cursor = rt.state.get_cursor(STREAM, marketplace.marketplace_id)
        if after is not None:
            start = to_utc_start(after)
        elif cursor is not None:
            start = cursor - overlap
        elif rt.settings.sync.after is not None:
            start = to_utc_start(rt.settings.sync.after)
        else:
            raise UsageError("no start date: pass --after YYYY-MM-DD or set [sync] after")
        reachable = reachable_start(start, now, marketplace)
        if reachable > start:
            source = "--after" if after is not None else "the cursor" if cursor is not None else "[sync] after"
            rt.reporter.info(f"{marketplace.code}: {source} {start:%Y-%m-%d} is older than Amazon's two-year "
                             f"horizon; orders updated before {reachable:%Y-%m-%d %H:%M} UTC cannot be read, "
                             "reading from there")
            rt.counts.add("unreachable ranges")
            start = reachable
        if start >= end:
            rt.reporter.info(f"{marketplace.code}: up to date (cursor {cursor.isoformat() if cursor else '-'})")
            continue
        windows.append((marketplace, cursor, start, end))
    plan = RefetchPlan()
    if not dry_run:
        plan = plan_refetch(failed_orders(rt), {m.marketplace_id: (s, e) for m, _, s, e in windows},
                            by_ids=rt.settings.amazon.orders_api == "v0")
        if plan.outside:
            total.add(retry_orders(rt, writer, refetch(rt, plan), plan.outside))
    for marketplace, cursor, start, end in windows:
        read = resolve_read_mode(asked, end - start, rt.settings.sync.auto_report_days)
        rt.counts.add("windows")
        with rt.reporter.progress(f"{marketplace.code} orders updated {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"
                                  f" ({read.value})") as task:
            res = process_orders(rt, writer, fetch_window(rt, marketplace, start, end, read), task,
                                 track=plan.covered)
        total.add(res)
        new_cursor = next_cursor(cursor, start, end, earliest_failure=res.earliest_failure,
                                 undated_failures=res.undated_failures)
        if new_cursor is not None:
            writer.state.set_cursor(STREAM, marketplace.marketplace_id, new_cursor)
    missing = plan.covered - total.seen
    if missing:  # a window should have brought them (it covers their last update); ask for them by id
        total.add(retry_orders(rt, writer, refetch(rt, RefetchPlan(singles=sorted(missing))), len(missing)))
    return total
