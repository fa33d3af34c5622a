"""Output: progress on stderr (rich, only on a terminal), plain log lines under cron, summaries on stdout
as a table or JSON. One injectable `Reporter` so the sync code never decides how things are shown."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from amz2erp.log import MASKER

log = logging.getLogger("amz2erp")


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def update(self, *, total: int | None = None, description: str | None = None) -> None: ...


class _NullTask:
    def __init__(self, description: str, total: int | None) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        # Under cron: a log line at most every 30 s, so long runs still show they are alive.
        if time.monotonic() - self._last > 30:
            self._last = time.monotonic()
            log.info("%s: %d%s", self.description, self.done, f"/{self.total}" if self.total else "")

    def update(self, *, total: int | None = None, description: str | None = None) -> None:
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description
            log.info("%s", description)


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
            kwargs["description"] = description
        self._progress.update(self._id, **kwargs)


class Reporter:
    """Shows progress and results. ``json_mode`` keeps stdout machine-readable (one JSON document)."""

    def __init__(self, *, quiet: bool = False, json_mode: bool = False, interactive: bool | None = None) -> None:
        self.quiet = quiet
        self.json_mode = json_mode
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Task]:
        if self.quiet or not self.interactive:
            task = _NullTask(description, total)
            log.info("%s", description)
            yield task
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.err, transient=True) as progress:
            yield _RichTask(progress, progress.add_task(description, total=total))

    def info(self, message: str) -> None:
        """A human line on stderr (not in --json, not with -q)."""
        if not self.quiet:
            self.err.print(MASKER.mask(message), markup=False)

    def line(self, message: str) -> None:
        """A result line on stdout (suppressed in --json mode)."""
        if not self.json_mode:
            self.out.print(MASKER.mask(message), markup=False)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.json_mode:
            return
        table = Table(title=title, title_justify="left")
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(MASKER.mask(str(c)) for c in row))
        self.out.print(table)

    def emit_json(self, data: Mapping[str, Any]) -> None:
        if self.json_mode:
            sys.stdout.write(MASKER.mask(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n")
            sys.stdout.flush()
