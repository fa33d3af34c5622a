"""Token buckets on a simulated clock: documented rate and burst, header adaptation, 429s, thread-safety."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from amz2erp.amazon.ratelimit import DEFAULT_LIMITS, RateLimiter, TokenBucket, parse_rate_header
from amz2erp.clock import SimulatedClock

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


class FrozenClock:
    """Time stands still; sleeps are only recorded (to see what each caller was told to wait)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return START

    def monotonic(self) -> float:
        return 100.0

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)


def test_burst_is_free_then_rate_applies() -> None:
    clock = SimulatedClock(START)
    bucket = TokenBucket(0.5, 30, clock, safety=1.0)
    for _ in range(30):
        assert bucket.acquire() == 0.0
    assert clock.slept == 0.0
    assert bucket.acquire() == pytest.approx(2.0)
    for _ in range(9):
        bucket.acquire()
    # 10 calls beyond the burst at 0.5/s take 20 simulated seconds, and not a real second
    assert clock.slept == pytest.approx(20.0)


def test_tokens_refill_with_clock_time_up_to_burst() -> None:
    clock = SimulatedClock(START)
    bucket = TokenBucket(2.0, 2, clock, safety=1.0)
    bucket.acquire()
    bucket.acquire()
    clock.advance(3600)  # an hour later the bucket holds `burst` tokens, not 7200
    assert bucket.state().tokens == pytest.approx(2.0)
    bucket.acquire()
    bucket.acquire()
    assert bucket.acquire() == pytest.approx(0.5)


def test_safety_margin_waits_slightly_longer_than_amazon() -> None:
    clock = SimulatedClock(START)
    bucket = TokenBucket(0.0167, 1, clock)  # default safety 0.98
    bucket.acquire()
    waited = bucket.acquire()
    assert 1 / 0.0167 < waited < 1 / 0.0167 * 1.05


def test_header_lowers_the_rate_but_never_raises_it() -> None:
    clock = SimulatedClock(START)
    limiter = RateLimiter(clock, {"getOrderItems": (0.5, 1)}, safety=1.0)
    limiter.acquire("getOrderItems")
    limiter.observe("getOrderItems", "2.0")  # higher than documented: ignored
    bucket = limiter.bucket("getOrderItems")
    assert bucket is not None
    assert bucket.rate == 0.5
    limiter.observe("getOrderItems", "0.1")
    assert bucket.rate == 0.1
    assert limiter.acquire("getOrderItems") == pytest.approx(10.0)
    limiter.observe("getOrderItems", "garbage")
    limiter.observe("getOrderItems", None)
    assert bucket.rate == 0.1


def test_429_empties_the_bucket() -> None:
    clock = SimulatedClock(START)
    limiter = RateLimiter(clock, {"searchOrders": (0.0056, 20)}, safety=1.0)
    limiter.acquire("searchOrders")  # 19 tokens left on our side
    limiter.throttled("searchOrders", "0.0056")  # ... but Amazon says the bucket is empty
    assert limiter.acquire("searchOrders") == pytest.approx(1 / 0.0056)


def test_unknown_operation_is_not_limited_unless_a_default_is_given() -> None:
    clock = SimulatedClock(START)
    assert RateLimiter(clock).acquire("downloadReportDocument") == 0.0
    limited = RateLimiter(clock, {}, default=(1.0, 1), safety=1.0)
    limited.acquire("x")
    assert limited.acquire("x") == pytest.approx(1.0)


def test_concurrent_callers_get_distinct_slots() -> None:
    """Reservations are atomic: 16 threads x 25 calls on a 1/s bucket of burst 10 get exactly the slots
    0 (x10), 1, 2, ..., 390 seconds - no two callers share a token."""
    clock = FrozenClock()
    bucket = TokenBucket(1.0, 10, clock, safety=1.0)
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            bucket.acquire()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(clock.sleeps) == 400 - 10  # the first 10 did not sleep
    assert sorted(round(s, 6) for s in clock.sleeps) == [float(i) for i in range(1, 391)]


def test_parse_rate_header() -> None:
    assert parse_rate_header("0.0167") == pytest.approx(0.0167)
    assert parse_rate_header(" 5 ") == 5.0
    assert parse_rate_header("0") is None
    assert parse_rate_header("nan") is None
    assert parse_rate_header("") is None
    assert parse_rate_header(None) is None


def test_documented_limits_cover_every_operation_amazon_py_calls() -> None:
    needed = {"getOrders", "getOrderItems", "getOrder", "searchOrders", "getOrder2026", "createReport",
              "getReport", "getReports", "getReportDocument", "searchCatalogItems",
              "createRestrictedDataToken", "getMarketplaceParticipations"}
    assert needed <= set(DEFAULT_LIMITS)
    assert DEFAULT_LIMITS["searchOrders"] == (0.0056, 20)  # orders_2026-01-01.json usage plan
    assert DEFAULT_LIMITS["getOrders"] == (0.0167, 20)
