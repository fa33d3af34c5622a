"""Client-side token buckets, one per SP-API operation, on a `Clock`.

Seeded with Amazon's documented usage plans (rate in requests per second, burst = bucket size), taken from
each operation's "Usage Plan" table in the official models. A bucket adapts *down* when Amazon's
``x-amzn-RateLimit-Limit`` header reports a lower rate than the one we use (sellers never get less than
the default, but a shared application quota can), and is emptied when Amazon answers 429, so the next call
waits a full token interval.

Waiting is a reservation: under the lock a caller takes a token (the balance may go negative) and learns
how long it has to wait, then sleeps outside the lock through the clock. Concurrent callers therefore queue
up in arrival order and never over-spend the bucket.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

from amz2erp.amazon import limits
from amz2erp.clock import Clock

log = logging.getLogger(__name__)

#: operation → (rate per second, burst): Amazon's documented table, kept with the other Amazon facts.
DEFAULT_LIMITS: dict[str, tuple[float, int]] = limits.RATE_LIMITS

#: Fraction of the documented rate we actually use: a little headroom for clock skew between us and Amazon.
DEFAULT_SAFETY = 0.98


def parse_rate_header(value: str | None) -> float | None:
    """``x-amzn-RateLimit-Limit`` → requests per second, or None when absent or unreadable."""
    if value is None:
        return None
    try:
        rate = float(str(value).strip())
    except ValueError:
        return None
    if not math.isfinite(rate) or rate <= 0:
        return None
    return rate


@dataclass
class BucketState:
    rate: float
    burst: int
    tokens: float


class TokenBucket:
    """A token bucket of ``burst`` tokens refilled at ``rate`` tokens per second of `clock` time."""

    def __init__(self, rate: float, burst: int, clock: Clock, *, safety: float = DEFAULT_SAFETY) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if not 0 < safety <= 1:
            raise ValueError("safety must be in (0, 1]")
        self._clock = clock
        self._safety = safety
        self._documented_rate = rate
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._last = clock.monotonic()
        self._lock = threading.Lock()

    # --- introspection ------------------------------------------------------------------------------

    @property
    def rate(self) -> float:
        """The rate currently assumed (documented, or lower when Amazon said so)."""
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    def state(self) -> BucketState:
        with self._lock:
            self._refill()
            return BucketState(self._rate, self._burst, self._tokens)

    # --- core ---------------------------------------------------------------------------------------

    def _effective_rate(self) -> float:
        return self._rate * self._safety

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self._burst), self._tokens + elapsed * self._effective_rate())
            self._last = now

    def reserve(self) -> float:
        """Take one token; return how many seconds the caller must wait before using it."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._effective_rate()

    def acquire(self) -> float:
        """Take one token, sleeping on the clock if needed. Returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._clock.sleep(wait)
        return wait

    def observe_rate(self, rate: float | None) -> bool:
        """Adapt to a rate reported by Amazon. Only ever lowers the rate. Returns True if it changed."""
        if rate is None or rate <= 0:
            return False
        with self._lock:
            if rate >= self._rate * 0.999:
                return False
            self._refill()
            self._rate = rate
            return True

    def throttled(self) -> None:
        """Amazon answered 429: the bucket is empty on their side, so empty ours (keep any debt)."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)


class RateLimiter:
    """Token buckets per operation. Unknown operations get ``default`` (or no limit when None)."""

    def __init__(
        self,
        clock: Clock,
        limits: dict[str, tuple[float, int]] | None = None,
        *,
        default: tuple[float, int] | None = None,
        safety: float = DEFAULT_SAFETY,
    ) -> None:
        self._clock = clock
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._default = default
        self._safety = safety
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds spent waiting for tokens

    def bucket(self, operation: str) -> TokenBucket | None:
        with self._lock:
            b = self._buckets.get(operation)
            if b is None:
                spec = self._limits.get(operation, self._default)
                if spec is None:
                    return None
                b = TokenBucket(spec[0], spec[1], self._clock, safety=self._safety)
                self._buckets[operation] = b
            return b

    def ready(self, operation: str) -> bool:
        """Whether a call of ``operation`` could go out now without waiting (for optional work such as
        prefetching: do it only when it costs no wait)."""
        b = self.bucket(operation)
        return b is None or b.state().tokens >= 1.0

    def acquire(self, operation: str) -> float:
        b = self.bucket(operation)
        if b is None:
            return 0.0
        waited = b.acquire()
        if waited:
            with self._lock:
                self.waited += waited
        return waited

    def observe(self, operation: str, header: str | None) -> None:
        b = self.bucket(operation)
        rate = parse_rate_header(header)
        if b is not None and b.observe_rate(rate):
            log.info("Amazon reports a lower rate limit for %s: %s requests/s", operation, rate)

    def throttled(self, operation: str, header: str | None = None) -> None:
        b = self.bucket(operation)
        if b is None:
            return
        b.observe_rate(parse_rate_header(header))
        b.throttled()
