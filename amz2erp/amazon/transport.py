"""The wire to Amazon: python-amazon-sp-api construction, Login with Amazon tokens and the response check.

* **Explicit credentials only.** ``credentials=`` plus ``credential_providers=[FromCodeCredentialProvider]``,
  so the library never reads ``SP_API_REFRESH_TOKEN``/``LWA_*`` or its YAML file; ``SP_API_DEFAULT_MARKETPLACE``
  (which would override the marketplace we pass) is removed from the environment while clients are built.
  Access tokens live in a per-client `TokenStore` (expiry on our `Clock`), never in the library's
  process-global cache.
* **Every response is checked.** All SP-API calls share one ``httpx.Client`` with an explicit timeout and
  `check_response` as response hook: any non-2xx status raises `HttpStatusError` (the library is silent on
  HTML/empty 5xx bodies), a 2xx body that is not valid JSON (truncated) raises `BadBodyError`. Report
  documents are downloaded by our own client (status checked, streamed, gunzipped incrementally, decoded by
  charset) with ``settings.report_timeout``.
* ``sp_api`` loggers are never left at DEBUG (at DEBUG the library logs the access token).

What to do about an error is not decided here: `amz2erp.amazon.calls` classifies and retries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast
from urllib.parse import urlsplit

import httpx

from amz2erp.amazon import marketplaces as mp
from amz2erp.amazon import reports as rp
from amz2erp.clock import Clock
from amz2erp.config import AmazonSettings, section_placeholders
from amz2erp.errors import AmazonAuthError, ConfigError
from amz2erp.log import SecretMasker

# --- importing and constructing sp_api without letting the environment in ------------------------------

_NEUTRALISED_ENV = ("SP_API_DEFAULT_MARKETPLACE",)
_env_lock = threading.RLock()


@contextlib.contextmanager
def neutral_env() -> Iterator[None]:
    """Hide the environment variables that make python-amazon-sp-api ignore what we pass it.

    ``SP_API_DEFAULT_MARKETPLACE`` is read when ``sp_api.base.client`` is imported (a junk value makes the
    import itself fail) and again in every constructor, where it replaces the marketplace argument."""
    with _env_lock:
        saved = {k: os.environ.pop(k) for k in _NEUTRALISED_ENV if k in os.environ}
        try:
            yield
        finally:
            os.environ.update(saved)


with neutral_env():
    from sp_api.api import CatalogItems, Finances, Orders, Reports, Sellers, Tokens
    from sp_api.auth import AccessTokenClient, AccessTokenResponse
    from sp_api.auth.exceptions import AuthorizationError
    from sp_api.base import ApiResponse, SellingApiException
    from sp_api.base._transport_httpx import HttpxTransport
    from sp_api.base.credential_provider import FromCodeCredentialProvider, MissingCredentials


def quiet_sp_api_loggers() -> None:
    """Never let the library log at DEBUG: it logs request headers, i.e. the access token."""
    names = ["sp_api"] + [n for n in logging.root.manager.loggerDict if n.startswith("sp_api.")]
    for name in names:
        lg = logging.getLogger(name)
        if lg.level == logging.NOTSET and name != "sp_api":
            continue
        if lg.level < logging.INFO:
            lg.setLevel(logging.INFO)


# --- what a response check raises (classified by `amz2erp.amazon.calls`, never leaves the layer) ------------------------------------------------------


class HttpStatusError(Exception):
    def __init__(self, status: int, headers: httpx.Headers, message: str, code: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.message = message
        self.code = code


class BadBodyError(Exception):
    """A 2xx response whose body is not what the operation must return (invalid JSON, empty payload)."""


def amazon_message(response: httpx.Response) -> tuple[str, str | None]:
    """Amazon's error message and code from an error body (JSON ``errors`` or LWA ``error``), else a short
    description of what came back."""
    text = ""
    try:
        text = response.text
        data = json.loads(text) if text.strip() else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        errs = data.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            e = errs[0]
            msg = str(e.get("message") or e.get("code") or "")
            details = e.get("details")
            if details:
                msg = f"{msg} ({details})"
            return msg, (str(e["code"]) if e.get("code") else None)
        if "error" in data:
            return str(data.get("error_description") or data.get("error")), str(data.get("error"))
    ctype = response.headers.get("content-type", "")
    if not text.strip():
        return "empty body", None
    if "html" in ctype or text.lstrip().startswith("<"):
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        return (f"HTML page: {title.group(1).strip()[:80]}" if title else "HTML page"), None
    return re.sub(r"\s+", " ", text)[:160], None


# --- access tokens ---------------------------------------------------------------------------------------


class TokenStore:
    """This client's LWA access token (not the library's process-global cache), expiring on our clock."""

    def __init__(self, clock: Clock, on_fetch: Callable[[], None], masker: SecretMasker) -> None:
        self._clock = clock
        self._on_fetch = on_fetch
        self._masker = masker
        self.issued: list[str] = []  # every access token we received: Amazon has answered this run
        self._lock = threading.Lock()
        self._token: dict[str, Any] | None = None
        self._expires = 0.0

    def get(self, fetch: Callable[[], dict[str, Any]]) -> AccessTokenResponse:
        with self._lock:
            if self._token is None or self._clock.monotonic() >= self._expires:
                self._on_fetch()  # counted per attempt, like every other operation
                data = fetch()
                token = data.get("access_token")
                if not isinstance(token, str) or not token:
                    raise BadBodyError("LWA answered without an access_token")
                self.issued.append(token)
                self._masker.add([token])  # never shown in a message or log line
                try:
                    ttl = float(data.get("expires_in") or 3600)
                except (TypeError, ValueError):
                    ttl = 3600.0
                self._token = data
                self._expires = self._clock.monotonic() + max(30.0, ttl - 60.0)
            return AccessTokenResponse(**self._token)

    def invalidate(self) -> None:
        with self._lock:
            self._token = None


def _lwa_client_class(url: str, transport: Any, store: TokenStore) -> type:
    parts = urlsplit(url)

    class _LocalAccessTokenClient(AccessTokenClient):
        scheme = parts.scheme + "://"
        host = parts.netloc
        path = parts.path or "/auth/o2/token"

        def __init__(self, refresh_token: Any = None, credentials: Any = None, proxies: Any = None,
                     verify: Any = True) -> None:
            super().__init__(refresh_token=refresh_token, credentials=credentials, proxies=proxies, verify=verify)
            self._transport.close()
            self._transport: Any = transport

        def get_auth(self) -> AccessTokenResponse:
            return store.get(lambda: self._request(self.scheme + self.host + self.path, self.data, self.headers))

        def _request(self, url: str, data: Any, headers: Any) -> dict[str, Any]:
            response: httpx.Response = self._transport.request("POST", url, data=data, headers=headers)
            status = response.status_code
            if status == 429 or status >= 500:
                message, code = amazon_message(response)
                raise HttpStatusError(status, response.headers, f"LWA: {message}", code)
            try:
                body = response.json()
            except ValueError:
                if status == 200:
                    raise BadBodyError("LWA answered 200 with a body that is not JSON") from None
                body = {}
            if status != 200 or not isinstance(body, dict):
                body = body if isinstance(body, dict) else {}
                raise AuthorizationError(body.get("error"), body.get("error_description"), status)
            return body

    return _LocalAccessTokenClient


@dataclass(frozen=True)
class _MarketplaceArg:
    """What the library's constructor reads from a marketplace: endpoint, marketplace_id, region."""

    endpoint: str
    marketplace_id: str
    region: str


_AWS_REGION = {"na": "us-east-1", "eu": "eu-west-1", "fe": "us-west-2"}

_API_CLASSES: dict[str, tuple[Any, dict[str, Any]]] = {
    "orders2026": (Orders, {"version": "2026-01-01"}),
    "orders_v0": (Orders, {"version": "v0"}),
    "orders_v0_pii": (Orders, {"version": "v0"}),
    "reports": (Reports, {}),
    "tokens": (Tokens, {}),
    "catalog": (CatalogItems, {"version": "2022-04-01"}),
    "sellers": (Sellers, {}),
    "finances_v0": (Finances, {"version": "v0"}),  # settlements: financial event groups
    "finances": (Finances, {"version": "2024-06-19"}),  # settlements: transactions
}


def check_response(response: httpx.Response) -> None:
    """httpx response hook on every SP-API call: non-2xx and non-JSON bodies raise."""
    response.read()
    status = response.status_code
    if 200 <= status < 300:
        body = response.content
        if body.strip():
            try:
                json.loads(body)
            except ValueError:
                raise BadBodyError(f"HTTP {status} with a body that is not valid JSON ({len(body)} bytes)") from None
        return
    message, code = amazon_message(response)
    raise HttpStatusError(status, response.headers, message, code)


class Transport:
    """The HTTP clients, the token store and the library clients of one `AmazonClient` (built lazily, once).

    ``masker`` knows every value that must never appear in a message (refresh token, client secret, access
    and restricted data tokens as they are issued); `scrub` masks them."""

    def __init__(self, settings: AmazonSettings, clock: Clock, on_token_fetch: Callable[[], None],
                 masker: SecretMasker | None = None) -> None:
        self.settings = settings
        marketplaces = settings.resolved_marketplaces()
        self.endpoint = (settings.endpoint or mp.REGION_ENDPOINTS[settings.region]).rstrip("/")
        self.lwa_url = settings.lwa_endpoint or mp.LWA_ENDPOINT
        self._mp_arg = _MarketplaceArg(self.endpoint, marketplaces[0].marketplace_id, _AWS_REGION[settings.region])
        self.masker = masker if masker is not None else SecretMasker()
        self.masker.add([settings.refresh_token.get_secret_value(), settings.lwa_client_secret.get_secret_value()])
        self.http = httpx.Client(
            timeout=httpx.Timeout(settings.timeout),
            follow_redirects=False,
            event_hooks={"response": [check_response]},
        )
        # LWA is every run's first request: a short connect timeout makes a wrong or unreachable host fail fast.
        self._lwa_http = httpx.Client(timeout=httpx.Timeout(settings.timeout, connect=min(5.0, settings.timeout)),
                                      follow_redirects=False)
        self._doc_http = httpx.Client(timeout=httpx.Timeout(settings.report_timeout), follow_redirects=True)
        self._sp_transport = HttpxTransport(client=self.http)
        self.tokens = TokenStore(clock, on_token_fetch, self.masker)
        self._lwa_class = _lwa_client_class(self.lwa_url, HttpxTransport(client=self._lwa_http), self.tokens)
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        quiet_sp_api_loggers()

    def close(self) -> None:
        for c in (self.http, self._lwa_http, self._doc_http):
            c.close()

    def scrub(self, text: str) -> str:
        return self.masker.mask(text)

    def built(self, name: str) -> Any | None:
        """The library client ``name`` if it was built already (no construction, no credential check)."""
        return self._clients.get(name)

    def api(self, name: str) -> Any:
        """A library client, built once: explicit credentials, our transport, our endpoint."""
        with self._clients_lock:
            client = self._clients.get(name)
            if client is not None:
                return client
            cls, kwargs = _API_CLASSES[name]
            examples = section_placeholders("amazon", self.settings)
            if examples:
                # Login with Amazon would only answer invalid_grant after the network round trip: say why now.
                verb = "still hold the example values" if len(examples) > 1 else "still holds the example value"
                raise ConfigError(f"{', '.join(examples)} {verb} of the `init` template; fill in the credentials "
                                  "of your SP-API app")
            creds = {
                "refresh_token": self.settings.refresh_token.get_secret_value(),
                "lwa_app_id": self.settings.lwa_app_id,
                "lwa_client_secret": self.settings.lwa_client_secret.get_secret_value(),
            }
            try:
                with neutral_env():
                    client = cls(
                        marketplace=self._mp_arg,
                        credentials=creds,
                        credential_providers=[FromCodeCredentialProvider],
                        auth_token_client_class=self._lwa_class,
                        timeout=self.settings.timeout,
                        **kwargs,
                    )
            except MissingCredentials:
                raise AmazonAuthError("Amazon credentials are incomplete (refresh_token, lwa_app_id, "
                                      "lwa_client_secret)") from None
            client._transport.close()
            client._transport = self._sp_transport
            client.endpoint = self.endpoint
            self._clients[name] = client
            quiet_sp_api_loggers()
            return client

    def download(self, url: str, compressed: bool | None) -> tuple[IO[bytes], str]:
        """A report document, decompressed into a temporary file (rewound), and its charset."""
        # a real temporary file (not held in memory; SpooledTemporaryFile is no full BufferedIOBase before 3.11)
        spool = cast(IO[bytes], tempfile.TemporaryFile())  # noqa: SIM115 - returned open, closed by the caller
        try:
            with self._doc_http.stream("GET", url) as response:
                if not 200 <= response.status_code < 300:
                    response.read()
                    message, code = amazon_message(response)
                    raise HttpStatusError(response.status_code, response.headers, message, code)
                charset = rp.charset_from_content_type(response.headers.get("content-type"))
                dec = rp.Decompressor(None if compressed is None else compressed)
                for chunk in response.iter_bytes():
                    spool.write(dec.feed(chunk))
                spool.write(dec.flush())
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool, charset


# sp_api names the rest of the layer needs: imported here, once, under `neutral_env`.
__all__ = [
    "AccessTokenResponse",
    "ApiResponse",
    "AuthorizationError",
    "BadBodyError",
    "HttpStatusError",
    "SellingApiException",
    "TokenStore",
    "Transport",
    "amazon_message",
    "check_response",
    "neutral_env",
    "quiet_sp_api_loggers",
]
