"""backfill: historic orders in reverse-chronological chunks, resumable, never touching sync-orders' cursor.

Each finished chunk is checkpointed in the state store under a job key made of the marketplace and the
requested range, so re-running the same command after a crash continues with the first unfinished chunk.
Orders go through the same exactly-once path as sync-orders, so overlapping ranges create nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from amz2erp.engine.dryrun import DryLedger
from amz2erp.engine.orders import OrderWriter, fetch_window, process_orders
from amz2erp.engine.plan import PlannedWrite
from amz2erp.engine.products import sync_products
from amz2erp.engine.runtime import Runtime, resolve_marketplaces
from amz2erp.engine.windows import (
    Chunk,
    ReadMode,
    chunk_size,
    covered_until,
    job_key,
    newest_readable,
    plan_chunks,
    reachable_start,
    read_mode,
    resolve_read_mode,
    to_utc_start,
)
from amz2erp.errors import UsageError
from amz2erp.state import StateStore


@dataclass
class BackfillResult:
    chunks: int = 0
    chunks_done_before: int = 0
    failed: int = 0
    products_failed: int = 0  # listings that failed in the product pass
    unreachable: list[str] = field(default_factory=list)
    plans: list[PlannedWrite] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (order id, error)


def backfill(rt: Runtime, *, date_from: date, date_to: date | None, chunk: timedelta | None = None,
             marketplaces: Iterable[str] = (), dry_run: bool = False, mode: ReadMode | str | None = None,
             products: bool = False) -> BackfillResult:
    """The orders of [date_from, date_to] newest-first in chunks, resumable from the checkpoints. ``products``:
    sync-products runs first (its listings become the Items the orders need)."""
    size = chunk_size(rt.settings.sync, chunk, mode)
    products_failed = sync_products(rt, marketplaces=marketplaces, dry_run=dry_run).failed if products else 0
    now = rt.clock.now()
    requested_start = to_utc_start(date_from)  # the checkpoints' key: fixed, unlike the horizon and "now"
    ceiling = newest_readable(now)
    # --to ending today (or later) reaches past "now": the chunks are laid out on the requested, fixed end
    # and only their reading is cut at the ceiling, so an interrupted run resumes the same chunks.
    nominal_end = to_utc_start(date_to) + timedelta(days=1) if date_to else None
    end = min(nominal_end, ceiling) if nominal_end else ceiling
    if requested_start >= end:
        raise UsageError(f"--from {date_from} is not before --to {date_to or 'now'}")
    result = BackfillResult(products_failed=products_failed)
    writer = OrderWriter(rt, dry_run=dry_run)
    for marketplace in resolve_marketplaces(rt, marketplaces):
        # the horizon is per marketplace: JP, AU and SG keep their whole history
        start = reachable_start(requested_start, now, marketplace)
        if start > requested_start:
            result.unreachable.append(
                f"{marketplace.code} {requested_start:%Y-%m-%d} → {min(end, start):%Y-%m-%d}: older than Amazon's "
                "two-year horizon (the Orders API and reports do not return these orders)")
            rt.reporter.info("Unreachable: " + result.unreachable[-1])
            rt.counts.add("unreachable ranges")
            if start >= end:
                continue
        read = resolve_read_mode(read_mode(mode, rt.settings.sync), size, rt.settings.sync.auto_report_days)
        mp_end = nominal_end or _anchored_end(writer.state, marketplace.marketplace_id, requested_start, size, end)
        # Chunks keep the bounds the requested range gives them (their checkpoints' keys); only reading is
        # cut: at the horizon (which moves) and at the ceiling ("now"). Chunks wholly outside are dropped.
        chunks = [Chunk(c.start, min(c.end, ceiling)) for c in plan_chunks(requested_start, mp_end, size)
                  if c.start < ceiling and c.end > start]
        key = job_key(marketplace.marketplace_id, requested_start, mp_end, size)
        checkpoints = rt.state.checkpoints(key)
        # a chunk is done when a checkpoint covers it up to its (possibly cut) end; one cut earlier by an
        # earlier "now" is read on from where that run stopped
        done = {c.start.isoformat() for c in chunks if covered_until(checkpoints, c) >= c.end}
        result.chunks += len(chunks)
        todo = [c for c in chunks if c.start.isoformat() not in done]
        if read is ReadMode.REPORT and todo:
            # tell the access layer the whole walk up front: it asks for every window's report within the
            # createReport burst instead of one at a time (two years: ~14 instead of ~17 Amazon minutes)
            rt.amazon.plan_orders_reports([marketplace.marketplace_id], max(start, todo[-1].start), todo[0].end)
        began = time.monotonic()
        finished_now = 0
        for i, ch in enumerate(chunks, 1):
            if ch.start.isoformat() in done:
                result.chunks_done_before += 1
                continue
            eta = ""
            if finished_now:
                per_chunk = (time.monotonic() - began) / finished_now
                remaining = sum(1 for c in chunks[i - 1:] if c.start.isoformat() not in done)
                eta = f", ETA {timedelta(seconds=int(per_chunk * remaining))}"
            label = (f"{marketplace.code} chunk {i}/{len(chunks)} {max(start, ch.start):%Y-%m-%d} → {ch.end:%Y-%m-%d}"
                     f" ({read.value}{eta})")
            read_from = max(start, covered_until(checkpoints, ch))
            with rt.reporter.progress(label) as task:
                res = process_orders(rt, writer, fetch_window(rt, marketplace, read_from, ch.end, read), task)
            rt.reporter.info(f"{label}: {res.processed} orders, {res.failed} failed")
            result.failed += res.failed
            result.plans.extend(res.plans)
            result.failures.extend(res.failures)
            rt.counts.add("chunks")
            finished_now += 1
            if res.failed == 0:
                writer.state.checkpoint_done(key, ch.start, ch.end, res.processed)
    return result


def _anchored_end(ledger: StateStore | DryLedger, marketplace_id: str, start: datetime, size: timedelta,
                  end: datetime) -> datetime:
    """Without --to the range ends "now", which moves; the first run's end is remembered so that a re-run
    of the same command resumes the same chunks instead of starting over."""
    anchor = job_key(marketplace_id, start, start, size) + ":end"
    stored = ledger.get_value(anchor)
    if stored:
        return datetime.fromisoformat(stored)
    ledger.set_value(anchor, end.isoformat())
    return end
