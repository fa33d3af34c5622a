"""Dry run (engine/dryrun.py): reads reach the real ledger and ERPNext, writes reach neither."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from amz2erp.engine.dryrun import DryErp, DryLedger
from amz2erp.state import Kind, StateStore, Status


def test_the_dry_ledger_reads_the_real_one_and_keeps_nothing(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as state:
        state.mark_done(Kind.ITEM, "SKU-1", "SKU-1", "")
        dry = DryLedger(state)
        assert dry.get(Kind.ITEM, "SKU-1") is not None  # what earlier runs did is seen
        dry.mark_failed(Kind.ORDER, "111-1234567-1234567", "boom")
        dry.mark_writing(Kind.ITEM, "SKU-2", "h")
        dry.mark_done(Kind.ITEM, "SKU-1", "OTHER", "h2")
        dry.set_cursor("orders", "ATVPDKIKX0DER", datetime(2026, 10, 1, tzinfo=timezone.utc))
        dry.checkpoint_done("job", datetime(2026, 10, 1, tzinfo=timezone.utc),
                            datetime(2026, 10, 2, tzinfo=timezone.utc), 3)
        dry.set_value("anchor", "x")
        assert state.entries(Kind.ORDER) == [] and state.get(Kind.ITEM, "SKU-2") is None
        entry = state.get(Kind.ITEM, "SKU-1")
        assert entry is not None and entry.erp_name == "SKU-1" and entry.status is Status.DONE
        assert state.cursors() == [] and state.checkpoints("job") == {} and state.get_value("anchor") is None


class _Recorder:
    """Stands in for the real ERPNext client: answers reads, records any write that reaches it."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def get(self, doctype: str, name: str) -> dict[str, Any] | None:
        return {"name": name, "doctype": doctype}

    def __getattr__(self, name: str) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            self.writes.append(name)
        return write


def test_the_dry_erpnext_client_reads_through_and_sends_no_write() -> None:
    real = _Recorder()
    dry = DryErp(real)  # type: ignore[arg-type]
    assert dry.get("Item", "SKU-1") == {"name": "SKU-1", "doctype": "Item"}
    assert dry.insert("Item", {"item_code": "SKU-2"}, key={"item_code": "SKU-2"}) == {"item_code": "SKU-2", "name": ""}
    dry.update("Item", "SKU-1", {"disabled": 1})
    dry.submit("Sales Order", "SO-1")
    dry.cancel("Sales Order", "SO-1")
    dry.delete("Sales Order", "SO-1")
    dry.update_sales_order_status("SO-1")
    assert dry.ensure("Price List", "Standard Selling EUR", {}) is False
    assert real.writes == []
