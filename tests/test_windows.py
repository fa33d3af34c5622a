"""The window and cursor arithmetic (engine/windows.py) as pure functions, without a server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from amz2erp.config import SyncSettings
from amz2erp.engine.windows import (
    Chunk,
    ReadMode,
    covered_until,
    next_cursor,
    read_mode,
    resolve_read_mode,
)

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
END = T0 + timedelta(days=1)


def test_cursor_moves_to_the_window_end_when_everything_landed() -> None:
    assert next_cursor(T0, T0, END, earliest_failure=None, undated_failures=0) == END
    assert next_cursor(None, T0, END, earliest_failure=None, undated_failures=0) == END


def test_cursor_is_pinned_at_the_earliest_failure() -> None:
    failed_at = T0 + timedelta(hours=5)
    assert next_cursor(T0 - timedelta(days=1), T0, END, earliest_failure=failed_at, undated_failures=0) == failed_at


def test_an_undated_failure_keeps_the_cursor() -> None:
    # with a cursor: it stays (None = no write); without one: the window's start is stored
    assert next_cursor(T0, T0, END, earliest_failure=T0 + timedelta(hours=1), undated_failures=1) is None
    assert next_cursor(None, T0, END, earliest_failure=None, undated_failures=1) == T0


def test_the_cursor_never_moves_backwards() -> None:
    cursor = T0 + timedelta(hours=10)
    # a failure older than the cursor (the window started below it, by the overlap) does not pull it back
    assert next_cursor(cursor, T0, END, earliest_failure=T0 + timedelta(hours=2), undated_failures=0) is None


def test_a_failure_after_the_window_end_is_capped_at_the_end() -> None:
    assert next_cursor(T0, T0, END, earliest_failure=END + timedelta(hours=1), undated_failures=0) == END


@pytest.mark.parametrize(("mode", "span_days", "expected"), [
    (ReadMode.API, 60, ReadMode.API),
    (ReadMode.REPORT, 1, ReadMode.REPORT),
    (ReadMode.AUTO, 7, ReadMode.API),
    (ReadMode.AUTO, 8, ReadMode.REPORT),
])
def test_read_mode_resolves_to_a_read_path(mode: ReadMode, span_days: int, expected: ReadMode) -> None:
    assert resolve_read_mode(mode, timedelta(days=span_days), auto_report_days=7) is expected


def test_read_mode_prefers_the_option_over_the_config() -> None:
    sync = SyncSettings(mode="report")
    assert read_mode(None, sync) is ReadMode.REPORT
    assert read_mode("api", sync) is ReadMode.API
    with pytest.raises(ValueError):
        read_mode("bulk", sync)


def test_covered_until_reads_the_checkpoint_of_a_chunk() -> None:
    chunk = Chunk(T0, END)
    assert covered_until({}, chunk) == T0
    half = T0 + timedelta(hours=12)
    assert covered_until({T0.isoformat(): {"chunk_end": half.isoformat()}}, chunk) == half
