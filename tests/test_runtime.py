from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from amz2erp.clock import SimulatedClock
from amz2erp.engine.runtime import KeyedLocks
from amz2erp.state import Kind, StateStore, Status


def test_keyed_locks_exclude_per_key_and_are_dropped_after_use() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    overlap: list[str] = []
    guard = threading.Lock()

    def work(key: str) -> None:
        with locks(key):
            with guard:
                inside[key] += 1
                if inside[key] > 1:
                    overlap.append(key)
            time.sleep(0.002)
            with guard:
                inside[key] -= 1

    threads = [threading.Thread(target=work, args=("a" if i % 2 else "b",)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []
    assert len(locks) == 0  # nothing kept once nobody holds or waits


def test_keyed_locks_let_different_keys_run_together() -> None:
    locks = KeyedLocks()
    started = threading.Event()
    release = threading.Event()

    def hold_a() -> None:
        with locks("a"):
            started.set()
            release.wait(5)

    t = threading.Thread(target=hold_a)
    t.start()
    started.wait(5)
    with locks("b"):  # does not wait for "a"
        assert len(locks) == 2
    release.set()
    t.join()
    assert len(locks) == 0


def test_the_ledger_stamps_with_the_injected_clock_and_reads_back_enums(tmp_path: Path) -> None:
    clock = SimulatedClock(datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc))
    with StateStore(tmp_path / "state.db", clock=clock) as state:
        state.mark_done(Kind.ORDER, "111-1234567-1234567", "SAL-ORD-0001", "h")
        run = state.start_run("sync-orders")
        state.end_run(run, 0, {})
        entry = state.get(Kind.ORDER, "111-1234567-1234567")
        assert entry is not None
        assert entry.updated_at == "2031-05-06T07:08:09+00:00"
        assert entry.kind is Kind.ORDER and entry.status is Status.DONE
        assert str(entry.status) == "done"  # the stored value, in messages and tables
        assert state.last_runs(1)[0]["started_at"] == "2031-05-06T07:08:09+00:00"
        # the stored values did not change: a plain string finds the entry
        assert state.count("order", "done") == 1  # type: ignore[arg-type]
