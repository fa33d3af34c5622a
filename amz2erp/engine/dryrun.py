"""Dry run: the ledger that keeps nothing. Reads pass through to the real state store (so a dry run sees what
earlier runs did); every write is dropped, so a dry run moves no cursor, records no intent, failure or
checkpoint. The writers use it in place of the state store and need no branch around their ledger writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amz2erp.state import Kind, LedgerEntry, StateStore, Status


class DryLedger:
    """The reads of a `StateStore`, and its writes as no-ops."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    # --- reads: the real ledger ---------------------------------------------------------------------------

    def get(self, kind: Kind, key: str) -> LedgerEntry | None:
        return self._state.get(kind, key)

    def entries(self, kind: Kind | None = None, status: Status | None = None) -> list[LedgerEntry]:
        return self._state.entries(kind, status)

    def count(self, kind: Kind, status: Status | None = None) -> int:
        return self._state.count(kind, status)

    def get_cursor(self, stream: str, marketplace: str) -> datetime | None:
        return self._state.get_cursor(stream, marketplace)

    def get_value(self, key: str) -> str | None:
        return self._state.get_value(key)

    def checkpoints(self, job: str) -> dict[str, dict[str, Any]]:
        return self._state.checkpoints(job)

    # --- writes: kept nowhere ---------------------------------------------------------------------------

    def mark_writing(self, kind: Kind, key: str, content_hash: str, *, marketplace: str | None = None) -> None:
        pass

    def mark_done(self, kind: Kind, key: str, erp_name: str | None, content_hash: str, *,
                  marketplace: str | None = None, info: dict[str, Any] | None = None) -> None:
        pass

    def mark_failed(self, kind: Kind, key: str, error: str, *, marketplace: str | None = None,
                    info: dict[str, Any] | None = None, last_update: datetime | None = None) -> None:
        pass

    def mark_skipped(self, kind: Kind, key: str, reason: str, *, marketplace: str | None = None,
                     info: dict[str, Any] | None = None) -> None:
        pass

    def forget(self, kind: Kind, key: str) -> None:
        pass

    def set_cursor(self, stream: str, marketplace: str, value: datetime) -> None:
        pass

    def set_value(self, key: str, value: str) -> None:
        pass

    def checkpoint_done(self, job: str, chunk_start: datetime, chunk_end: datetime, orders: int) -> None:
        pass


def ledger_for(state: StateStore, *, dry_run: bool) -> StateStore | DryLedger:
    """The ledger a run writes to: the state store, or in a dry run one that keeps nothing."""
    return DryLedger(state) if dry_run else state
