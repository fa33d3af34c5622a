"""The retry classification table of `amz2erp.amazon.calls`, one row per test, over `httpx.MockTransport`.

No server and no socket: each handler answers what Amazon (or the network) would, the response goes through
the layer's own `check_response` hook, and `Caller.call` decides. Sleeps are on a simulated clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from amz2erp.amazon.calls import Caller, RetryClass, classify
from amz2erp.amazon.ratelimit import RateLimiter
from amz2erp.amazon.transport import Transport, check_response
from amz2erp.clock import SimulatedClock
from amz2erp.config import AmazonSettings
from amz2erp.errors import (
    AmazonAuthError,
    AmazonBadRequestError,
    AmazonError,
    AmazonThrottledError,
    AmazonUnavailableError,
)

REFRESH = "Atzr|refresh-token-that-must-never-leak"
URL = "http://127.0.0.1:9/orders/v0/orders"  # never contacted: the MockTransport answers


class Harness:
    """A `Caller` whose operation is one GET through a MockTransport answering from ``answers`` in turn."""

    def __init__(self, answers: list[Callable[[httpx.Request], httpx.Response]], *, max_retries: int = 3,
                 reached_amazon: bool = True) -> None:
        self.clock = SimulatedClock(datetime(2026, 3, 1, tzinfo=timezone.utc))
        settings = AmazonSettings(refresh_token=REFRESH, lwa_app_id="amzn1.application-oa2-client.test",
                                  lwa_client_secret="client-secret-that-must-never-leak",
                                  endpoint="http://127.0.0.1:9", lwa_endpoint="http://127.0.0.1:9/auth/o2/token",
                                  marketplaces=["US"], max_retries=max_retries, backoff_ceiling=2.0)
        self.transport = Transport(settings, self.clock, lambda: None)
        if reached_amazon:
            self.transport.tokens.issued.append("Atza|an-access-token")
        self.limiter = RateLimiter(self.clock)
        self.caller = Caller(settings, self.clock, self.limiter, self.transport)
        self.requests = 0
        self._answers: Iterator[Callable[[httpx.Request], httpx.Response]] = iter(answers)

        def handler(request: httpx.Request) -> httpx.Response:
            self.requests += 1
            return next(self._answers)(request)

        self.http = httpx.Client(transport=httpx.MockTransport(handler), event_hooks={"response": [check_response]})

    def call(self, recover: Callable[[AmazonError], bool] | None = None) -> httpx.Response:
        return self.caller.call("getOrders", lambda: self.http.get(URL), recover=recover)

    def close(self) -> None:
        self.http.close()
        self.transport.close()


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(answers: list[Callable[[httpx.Request], httpx.Response]], **kw: Any) -> Harness:
        made.append(Harness(answers, **kw))
        return made[-1]

    yield make
    for h in made:
        h.close()


def status(code: int, body: Any = None, *, text: str | None = None,
           headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(code, text=text, headers=headers)
        return httpx.Response(code, json=body if body is not None else {}, headers=headers)
    return answer


def raises(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc
    return answer


OK = status(200, {"payload": {"Orders": []}})


def amazon_error(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


def test_429_waits_for_the_rate_amazon_states_then_succeeds(harness: Callable[..., Harness]) -> None:
    h = harness([status(429, amazon_error("QuotaExceeded", "You exceeded your quota"),
                        headers={"x-amzn-RateLimit-Limit": "0.0055"}), OK])
    assert h.call().status_code == 200
    assert (h.caller.throttles["getOrders"], h.caller.retries["getOrders"], h.requests) == (1, 1, 2)
    bucket = h.limiter.bucket("getOrders")
    assert bucket is not None and bucket.rate == pytest.approx(0.0055)  # the header lowered the bucket


def test_429_until_the_retries_run_out_is_throttled(harness: Callable[..., Harness]) -> None:
    h = harness([status(429, amazon_error("QuotaExceeded", "quota"))] * 3, max_retries=2)
    with pytest.raises(AmazonThrottledError, match="Amazon kept throttling: getOrders failed after 3 attempts"):
        h.call()
    assert h.requests == 3


def test_500_is_retried(harness: Callable[..., Harness]) -> None:
    h = harness([status(500, amazon_error("InternalFailure", "We encountered an internal error")), OK])
    assert h.call().status_code == 200
    assert h.caller.retries["getOrders"] == 1 and h.clock.slept <= 2.0  # backoff_ceiling


def test_html_503_is_retried_then_unavailable_with_the_page_title(harness: Callable[..., Harness]) -> None:
    page = "<html><head><title>503 Service Unavailable</title></head><body>busy</body></html>"
    h = harness([status(503, text=page, headers={"content-type": "text/html"})] * 4, max_retries=3)
    with pytest.raises(AmazonUnavailableError, match="HTML page: 503 Service Unavailable"):
        h.call()
    assert h.requests == 4 and h.caller.retries["getOrders"] == 3


def test_408_request_timeout_is_retried(harness: Callable[..., Harness]) -> None:
    h = harness([status(408, text=""), OK])
    assert h.call().status_code == 200 and h.requests == 2


def test_403_unauthorized_is_fatal_auth_at_once(harness: Callable[..., Harness]) -> None:
    h = harness([status(403, amazon_error("Unauthorized", "Access to requested resource is denied."))])
    with pytest.raises(AmazonAuthError, match=r"Amazon refused getOrders .*Access to requested resource is denied"
                       ) as err:
        h.call()
    assert err.value.status == 403 and h.requests == 1 and h.caller.retries["getOrders"] == 0


def test_403_expired_token_renews_once_then_is_fatal(harness: Callable[..., Harness]) -> None:
    expired = status(403, amazon_error("Unauthorized", "The security token included in the request is expired"))
    h = harness([expired, OK])
    assert h.call().status_code == 200 and h.requests == 2  # renewed at once, no backoff
    assert h.clock.slept == 0
    h2 = harness([expired, expired])
    with pytest.raises(AmazonAuthError, match="expired"):
        h2.call()
    assert h2.requests == 2


def test_400_invalid_input_is_rejected_with_amazons_message(harness: Callable[..., Harness]) -> None:
    h = harness([status(400, amazon_error("InvalidInput", "CreatedAfter is not a valid ISO 8601 date"))])
    with pytest.raises(AmazonBadRequestError, match=r"Amazon rejected getOrders .*CreatedAfter is not a valid") as err:
        h.call()
    assert err.value.status == 400 and h.requests == 1


def test_404_is_rejected_not_retried(harness: Callable[..., Harness]) -> None:
    h = harness([status(404, amazon_error("NotFound", "Order not found"))])
    with pytest.raises(AmazonBadRequestError) as err:
        h.call()
    assert err.value.status == 404 and h.requests == 1


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("connection reset"),
                                 httpx.ReadError("[Errno 104] Connection reset by peer")],
                         ids=["timeout", "reset-mid-response", "reset-by-peer"])
def test_timeouts_and_resets_are_retried(harness: Callable[..., Harness], exc: Exception) -> None:
    h = harness([raises(exc), OK])
    assert h.call().status_code == 200
    assert h.caller.retries["getOrders"] == 1


def test_truncated_json_body_is_retried(harness: Callable[..., Harness]) -> None:
    h = harness([status(200, text='{"payload": {"Orders": [{"AmazonOrderId": "111-'), OK])
    assert h.call().status_code == 200 and h.caller.retries["getOrders"] == 1


def test_connect_error_before_amazon_ever_answered_is_fatal_at_once(harness: Callable[..., Harness]) -> None:
    h = harness([raises(httpx.ConnectError("[Errno 111] Connection refused"))], reached_amazon=False)
    with pytest.raises(AmazonUnavailableError, match=r"Amazon unreachable: Login with Amazon \(127.0.0.1:9\)"):
        h.call(recover=lambda error: pytest.fail("an unreachable host is not a policy's business"))
    assert h.requests == 1 and h.clock.slept == 0


def test_connect_error_after_amazon_answered_is_retried(harness: Callable[..., Harness]) -> None:
    h = harness([raises(httpx.ConnectError("refused")), OK], reached_amazon=True)
    assert h.call().status_code == 200 and h.requests == 2


def test_a_recover_policy_repeats_a_fatal_call_once_it_changed_something(harness: Callable[..., Harness]) -> None:
    refused = status(403, amazon_error("Unauthorized", "Access to requested resource is denied."))
    h = harness([refused, OK])
    seen: list[AmazonError] = []

    def drop_pii(error: AmazonError) -> bool:
        seen.append(error)
        return len(seen) == 1  # the first refusal changes what is asked; a second would not

    assert h.call(recover=drop_pii).status_code == 200
    assert len(seen) == 1 and isinstance(seen[0], AmazonAuthError) and h.caller.retries["getOrders"] == 0


def test_messages_never_carry_a_secret(harness: Callable[..., Harness]) -> None:
    h = harness([status(400, amazon_error("InvalidInput", f"bad refresh_token {REFRESH}"))])
    with pytest.raises(AmazonBadRequestError) as err:
        h.call()
    assert REFRESH not in str(err.value) and "***" in str(err.value)


def test_unknown_exceptions_are_not_classified() -> None:
    # a bug in our own code must surface as itself, not as "Amazon unavailable"
    assert classify(KeyError("x"), "getOrders", reached_amazon=True, renewed=False) is None
    verdict = classify(httpx.ReadTimeout("t"), "getOrders", reached_amazon=True, renewed=False)
    assert verdict is not None and verdict.retry_class is RetryClass.RETRY and verdict.retry_class.retried
