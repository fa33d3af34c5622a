"""Time sources: the real clock, and a simulated one shared by the SP-API simulator and the access layer.

Everything that waits (rate limiting, backoff, report polling) or asks "what time is it" goes through a
`Clock`, so tests and benchmarks can run Amazon's real rate limits on simulated time.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (for rate limiting and timeouts)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock:
    """A clock whose time advances only when somebody sleeps on it (``scale=None``), or runs ``scale`` times
    faster than real time (``scale=60`` turns a minute of Amazon rate limit into a real second).

    Thread-safe. ``slept`` counts the simulated seconds spent sleeping, which is what benchmarks report as
    "Amazon time" spent waiting.
    """

    def __init__(self, start: datetime | None = None, *, scale: float | None = None) -> None:
        self._start = start or datetime.now(timezone.utc)
        if self._start.tzinfo is None:
            raise ValueError("SimulatedClock start must be timezone-aware")
        self._scale = scale
        self._offset = 0.0  # simulated seconds added by sleep() in instant mode
        self._real0 = time.monotonic()
        self._lock = threading.Lock()
        self.slept = 0.0

    def monotonic(self) -> float:
        with self._lock:
            if self._scale is None:
                return self._offset
            return (time.monotonic() - self._real0) * self._scale + self._offset

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._scale is None:
            with self._lock:
                self._offset += seconds
                self.slept += seconds
        else:
            with self._lock:
                self.slept += seconds
            time.sleep(seconds / self._scale)

    def advance(self, seconds: float) -> None:
        """Move time forward without counting it as sleep (tests: 'an hour later')."""
        with self._lock:
            self._offset += seconds


_default_clock: Clock = SystemClock()


def default_clock() -> Clock:
    """The clock commands use when none is passed: the system clock, except inside `amz2erp demo`, which
    shares one simulated clock between the local simulators and the commands so "three minutes later"
    takes no time."""
    return _default_clock


def set_default_clock(clock: Clock | None) -> None:
    global _default_clock
    _default_clock = clock or SystemClock()
