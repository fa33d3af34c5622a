"""Dry run: an ERPNext client and a ledger that keep nothing. Reads pass through to the real ERPNext and state
store (so a dry run sees what earlier runs did); every write is dropped: no document is written, no cursor
moved, no intent, failure or checkpoint recorded. The writers use them in place of the real ones and need no
branch around their writes; what they would write they note as `PlannedWrite`s."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from amz2erp.erpnext.client import ErpNextClient
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


class DryErp(ErpNextClient):
    """An `ErpNextClient` whose reads go to the real one and whose writes do nothing (a write returns what
    ERPNext would have been sent, without a name: nothing was created)."""

    def __init__(self, real: ErpNextClient) -> None:  # no HTTP client of its own: the real one reads
        self._real = real

    # --- reads: the real ERPNext ------------------------------------------------------------------------

    def list(self, doctype: str, *, fields: Sequence[str] | None = None,
             filters: Mapping[str, Any] | Sequence[Any] | None = None, order_by: str | None = None,
             limit: int | None = None, page_size: int = 500) -> Iterator[dict[str, Any]]:
        return self._real.list(doctype, fields=fields, filters=filters, order_by=order_by, limit=limit,
                               page_size=page_size)

    def get(self, doctype: str, name: str) -> dict[str, Any] | None:
        return self._real.get(doctype, name)

    def find(self, doctype: str, filters: Mapping[str, Any] | Sequence[Any], fields: Sequence[str] = ("name",), *,
             order_by: str | None = None) -> dict[str, Any] | None:
        return self._real.find(doctype, filters, fields, order_by=order_by)

    def exists(self, doctype: str, name: str) -> bool:
        return self._real.exists(doctype, name)

    def make_mapped(self, method: str, source_name: str, *,
                    filtered_children: Sequence[str] | None = None) -> dict[str, Any]:
        return self._real.make_mapped(method, source_name, filtered_children=filtered_children)  # writes nothing

    # --- writes: sent nowhere ---------------------------------------------------------------------------

    def insert(self, doctype: str, doc: Mapping[str, Any], *,
               key: Mapping[str, str] | None = None) -> dict[str, Any]:
        return dict(doc, name="")

    def update(self, doctype: str, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return dict(changes, name=name)

    def submit(self, doctype: str, name: str) -> dict[str, Any]:
        return {"name": name, "docstatus": 1}

    def cancel(self, doctype: str, name: str) -> dict[str, Any]:
        return {"name": name, "docstatus": 2}

    def delete(self, doctype: str, name: str) -> bool:
        return True

    def update_sales_order_status(self, name: str, status: str = "Draft") -> Any:
        return None

    def ensure(self, doctype: str, name: str, doc: Mapping[str, Any]) -> bool:
        return False  # nothing was created


def erp_for(erp: ErpNextClient, *, dry_run: bool) -> ErpNextClient:
    """The ERPNext client a run writes with: the real one, or in a dry run one that sends no write."""
    return DryErp(erp) if dry_run else erp


def ledger_for(state: StateStore, *, dry_run: bool) -> StateStore | DryLedger:
    """The ledger a run writes to: the state store, or in a dry run one that keeps nothing."""
    return DryLedger(state) if dry_run else state
