"""Output: progress on stderr (rich, only on a terminal), plain log lines under cron, summaries on stdout
as a table or JSON. One injectable `Reporter` so the sync code never decides how things are shown."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from amz2erp.log import MASKER


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def update(self, *, total: int | None = None, description: str | None = None) -> None: ...


class _PlainTask:
    """Progress without a terminal (cron, a pipe): plain timestamped lines, at the start, at most every
    30 s, and at the end, so a long run in a log file shows it is alive and how far it got."""

    INTERVAL = 30.0

    def __init__(self, description: str, total: int | None, emit: Callable[[str], None] | None) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self._emit = emit
        self._last = time.monotonic()

    def _say(self) -> None:
        if self._emit is not None:
            self._emit(f"{self.description}: {self.done}" + (f"/{self.total}" if self.total else ""))

    def advance(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self._last >= self.INTERVAL:
            self._last = time.monotonic()
            self._say()

    def update(self, *, total: int | None = None, description: str | None = None) -> None:
        if total is not None:
            self.total = total
        if description is not None and description != self.description:
            self.description = description
            if self._emit is not None:
                self._emit(description)

    def finish(self) -> None:
        if self.done:
            self._say()


class _RichTask:
    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._id, n)

    def update(self, *, total: int | None = None, description: str | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if total is not None:
            kwargs["total"] = total
        if description is not None:
            kwargs["description"] = escape(description)
        self._progress.update(self._id, **kwargs)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 order``, ``2 orders``, ``1 entry``/``2 entries`` (give ``many`` when adding "s" is wrong)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


class Reporter:
    """Shows progress and results. ``json_mode`` keeps stdout machine-readable (one JSON document).

    Levels: ``quiet`` prints only warnings and errors (no tables, no result lines, no progress); without a
    terminal on stderr (cron, a pipe) progress is plain timestamped lines instead of a bar.
    """

    def __init__(self, *, quiet: bool = False, json_mode: bool = False, interactive: bool | None = None) -> None:
        self.quiet = quiet
        self.json_mode = json_mode
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.json_emitted = False
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Task]:
        if self.quiet or not self.interactive:
            task = _PlainTask(description, total, None if self.quiet else self._plain)
            if not self.quiet:
                self._plain(description)
            yield task
            task.finish()
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.err, transient=True) as progress:
            yield _RichTask(progress, progress.add_task(escape(description), total=total))

    def _plain(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
        self.err.print(f"{stamp} {MASKER.mask(message)}", markup=False, highlight=False)

    def info(self, message: str) -> None:
        """A human line on stderr (not with -q)."""
        if not self.quiet:
            self.err.print(MASKER.mask(message), markup=False)

    def warn(self, message: str) -> None:
        """A line on stderr that -q keeps (a problem the user must see)."""
        self.err.print(MASKER.mask(message), markup=False)

    def line(self, message: str) -> None:
        """A result line on stdout (suppressed in --json mode and with -q)."""
        if not self.json_mode and not self.quiet:
            self.out.print(MASKER.mask(message), markup=False)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
              *, ids: Sequence[str] = ()) -> None:
        """A table on stdout. Cells are plain text (a ``[…]`` in remote text is never read as markup); the
        columns named in ``ids`` are never cut or wrapped, so an id can be copied from any width: the
        other columns wrap instead."""
        if self.json_mode or self.quiet:
            return
        cells = [[MASKER.mask(str(c)) for c in row] for row in rows]
        table = Table(title=Text(title), title_justify="left")
        for i, col in enumerate(columns):
            if col in ids:
                width = max([len(col), *(len(r[i]) for r in cells)])
                table.add_column(Text(col), no_wrap=True, min_width=width)
            else:
                table.add_column(Text(col), overflow="fold")
        for row in cells:
            table.add_row(*(Text(c) for c in row))
        self.out.print(table)

    def emit_json(self, data: Mapping[str, Any]) -> None:
        if self.json_mode:
            self.json_emitted = True
            sys.stdout.write(MASKER.mask(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n")
            sys.stdout.flush()
