"""Window and cursor arithmetic, as pure functions: where a read starts and ends, how backfill cuts a range
into chunks, which read path (API or report) a window takes, and where the cursor moves after a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from amz2erp.amazon import limits
from amz2erp.amazon.marketplaces import Marketplace
from amz2erp.config import SyncSettings
from amz2erp.errors import UsageError


class ReadMode(str, Enum):
    """How orders are read: per call (api), from the bulk orders report (report), or by window size (auto).
    The values are the ones `--mode` and `[sync] mode` accept."""

    API = "api"
    REPORT = "report"
    AUTO = "auto"


def to_utc_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def newest_readable(now: datetime) -> datetime:
    """Where every window ends: Amazon's lag (now − 2 minutes) and a few seconds more, because our clock and
    Amazon's are never quite the same."""
    return (now - limits.ORDERS_LAG - timedelta(seconds=5)).replace(microsecond=0)


def reachable_start(start: datetime, now: datetime, marketplace: Marketplace) -> datetime:
    """``start`` moved up to Amazon's two-year horizon for this marketplace (unchanged where Amazon keeps the
    whole history, or when ``start`` is above it): nothing below the horizon can be read, so no window, no
    report and no checkpoint is made for it."""
    horizon = limits.orders_horizon(now, [marketplace])
    if horizon is None or start >= horizon:
        return start
    return horizon.replace(microsecond=0) + timedelta(seconds=1)


@dataclass
class Chunk:
    start: datetime
    end: datetime


def plan_chunks(start: datetime, end: datetime, chunk: timedelta) -> list[Chunk]:
    """Windows from newest to oldest, each at most ``chunk`` long, covering [start, end)."""
    if chunk <= timedelta(0):
        raise UsageError("--chunk must be positive")
    chunks = []
    upper = end
    while upper > start:
        lower = max(start, upper - chunk)
        chunks.append(Chunk(lower, upper))
        upper = lower
    return chunks


def chunk_size(sync: SyncSettings, chunk: timedelta | None, mode: ReadMode | str | None) -> timedelta:
    """The chunk a backfill walks in: ``--chunk``, else ``[sync] chunk_days``. A chunk read from orders reports
    (``--mode report``, or auto for chunks longer than ``auto_report_days``) may not exceed the 30 days one
    report covers: refused rather than silently cut, so a chunk is always what the user asked for."""
    size = chunk if chunk is not None else timedelta(days=sync.chunk_days)
    if size <= timedelta(0):
        raise UsageError("--chunk must be positive")
    by_report = resolve_read_mode(read_mode(mode, sync), size, sync.auto_report_days) is ReadMode.REPORT
    if by_report and size > limits.REPORT_WINDOW:
        days = limits.REPORT_WINDOW.days
        raise UsageError(f"--chunk {_duration_text(size)} is longer than one orders report covers ({days} days): "
                         f"use --chunk {days}d or less, or --mode api")
    return size


def _duration_text(size: timedelta) -> str:
    seconds = int(size.total_seconds())
    for unit, length in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def job_key(marketplace_id: str, start: datetime, end: datetime, chunk: timedelta) -> str:
    return f"backfill:{marketplace_id}:{start.isoformat()}:{end.isoformat()}:{int(chunk.total_seconds())}"


def covered_until(checkpoints: dict[str, dict[str, Any]], ch: Chunk) -> datetime:
    """How far an earlier run finished this chunk (its start when it did not)."""
    done = checkpoints.get(ch.start.isoformat())
    return datetime.fromisoformat(done["chunk_end"]) if done else ch.start


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``2w`` → timedelta (for --chunk, --every)."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise UsageError(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def read_mode(mode: ReadMode | str | None, sync: SyncSettings) -> ReadMode:
    """The mode asked for (``--mode``), else ``[sync] mode``."""
    return ReadMode(mode or sync.mode)


def resolve_read_mode(mode: ReadMode, span: timedelta, auto_report_days: int) -> ReadMode:
    """API or REPORT for a window ``span`` long: auto reads by report only what is longer than
    ``auto_report_days`` (a report costs minutes of Amazon's time, so short windows are cheaper per call)."""
    if mode is ReadMode.AUTO:
        return ReadMode.REPORT if span > timedelta(days=auto_report_days) else ReadMode.API
    return mode


def next_cursor(cursor: datetime | None, start: datetime, end: datetime, *, earliest_failure: datetime | None,
                undated_failures: int) -> datetime | None:
    """Where the cursor goes after a window [start, end) was read; None: it stays where it is.

    The cursor moves only over orders that landed: it is pinned at the earliest failure (so the next window
    reads the failed order again); a failure without a date (an unreadable payload) keeps the cursor where it
    was, since nothing says how far is safe. It never moves backwards."""
    new = end
    if undated_failures:
        new = cursor or start
    elif earliest_failure is not None:
        new = min(end, earliest_failure)
    return new if cursor is None or new > cursor else None
