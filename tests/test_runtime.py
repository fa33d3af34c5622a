from __future__ import annotations

import threading
import time

from amz2erp.engine.runtime import KeyedLocks


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
