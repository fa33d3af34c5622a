"""A wrong ERPNext URL, a fresh `init` template and a wrong company are diagnosed, not misreported.

Tiny loopback servers stand in for what a wrong [erpnext] url really reaches: a web server's page, the
Frappe desk (a redirect to the login page), a plain-http port asked for https, a port where nothing listens.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from amz2erp.config import ErpNextSettings, placeholder_keys
from amz2erp.erpnext.checks import CheckResult, checks_exit_code
from amz2erp.erpnext.client import ErpNextClient, describe_non_api_answer, describe_tls_error
from amz2erp.errors import ErpNextConfigError, ErpNextUnavailableError, ExitCode
from tests.conftest import SimEnvFactory
from tests.simenv import SimEnv

KEY, SECRET = "diag-key-AAAA", "diag-secret-BBBB"


def _handler(status: int, body: str, headers: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            data = body.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


NGINX_PAGE = "<html><head><title>Welcome to nginx!</title></head><body>It works</body></html>"


def html_server() -> contextlib.AbstractContextManager[int]:
    return serve(_handler(200, NGINX_PAGE, {"Content-Type": "text/html", "Server": "nginx/1.24"}))


def desk_server() -> contextlib.AbstractContextManager[int]:
    """What the Frappe desk does for a guest at /app/...: a redirect to the login page."""
    return serve(_handler(302, "", {"Location": "/login?redirect-to=%2Fapp%2Fhome"}))


class _PlainErrors(BaseHTTPRequestHandler):
    """Python's own web server: an HTML 'Error response' page for everything (it was reported as
    `ERPNext list Custom Field: Error response` with exit 1)."""

    def do_GET(self) -> None:
        self.send_error(404)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def client_for(url: str, **kw: Any) -> ErpNextClient:
    settings = ErpNextSettings.model_validate(
        {"url": url, "api_key": KEY, "api_secret": SECRET, "max_retries": 3, **kw}
    )
    return ErpNextClient(settings, backoff=0.01)


# --- the client classifies the answer -------------------------------------------------------------------


def test_a_web_page_is_a_config_error_naming_what_answered() -> None:
    with html_server() as port:
        client = client_for(f"http://127.0.0.1:{port}")
        with pytest.raises(ErpNextConfigError) as err:
            client.probe()
        with pytest.raises(ErpNextConfigError):
            client.get("Company", "Amz Test Co")  # was: "company does not exist"
    message = str(err.value)
    assert err.value.exit_code == ExitCode.CONFIG
    assert f"http://127.0.0.1:{port} answered a web page" in message
    assert "'Welcome to nginx!'" in message and "nginx/1.24" in message
    assert "root address" in message
    assert client.stats.count("GET ping") == 1  # a config mistake is not retried


def test_a_path_in_the_url_is_named_with_the_root_to_use() -> None:
    with html_server() as port:
        client = client_for(f"http://127.0.0.1:{port}/app/home")
        with pytest.raises(ErpNextConfigError) as err:
            list(client.list("Custom Field"))
    assert f"'http://127.0.0.1:{port}'" in str(err.value) and "without the path '/app/home'" in str(err.value)
    with desk_server() as port:
        client = client_for(f"http://127.0.0.1:{port}/app/home")
        with pytest.raises(ErpNextConfigError) as err:
            client.probe()
    assert "redirects (HTTP 302) to /login" in str(err.value)
    assert "without the path '/app/home'" in str(err.value)


def test_an_error_page_of_another_web_server_is_not_a_record_error() -> None:
    with serve(_PlainErrors) as port:
        client = client_for(f"http://127.0.0.1:{port}")
        with pytest.raises(ErpNextConfigError, match=r"answered a web page \(HTTP 404, text/html"):
            list(client.list("Custom Field"))


def test_https_on_a_plain_http_port_says_so_without_a_tls_dump() -> None:
    with html_server() as port:
        client = client_for(f"https://127.0.0.1:{port}")
        with pytest.raises(ErpNextConfigError) as err:
            client.probe()
    message = str(err.value)
    assert err.value.exit_code == ExitCode.CONFIG
    assert f"127.0.0.1:{port} does not speak TLS" in message and f"'http://127.0.0.1:{port}'" in message
    assert "verify_tls" not in message and "\n" not in message


def test_tls_failures_say_which_kind() -> None:
    url = "https://erp.example.com"
    untrusted = requests.exceptions.SSLError(
        "HTTPSConnectionPool(host='erp.example.com', port=443): Max retries exceeded (Caused by SSLError("
        "SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "self-signed certificate (_ssl.c:1006)')))"
    )
    message, config = describe_tls_error(url, untrusted)
    assert config and "certificate of erp.example.com is not accepted (self-signed certificate)" in message
    broken = requests.exceptions.SSLError(
        "HTTPSConnectionPool(host='erp.example.com', port=443): Max retries exceeded (Caused by SSLError("
        "SSLEOFError(8, '[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)')))"
    )
    message, config = describe_tls_error(url, broken)
    assert not config and message == (
        "TLS connection to erp.example.com failed (EOF occurred in violation of protocol)"
    )


def test_a_closed_port_is_unreachable_at_once() -> None:
    port = closed_port()
    client = client_for(f"http://127.0.0.1:{port}", max_retries=8)
    with pytest.raises(ErpNextUnavailableError) as err:
        client.probe()
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert f"nothing listens at 127.0.0.1:{port}" in str(err.value) and "connection refused" in str(err.value)
    assert client.stats.count("GET ping") == 1  # no retry loop before the site ever answered


def test_a_host_that_does_not_resolve_is_named_and_not_retried() -> None:
    calls: list[str] = []

    class NoDns(requests.adapters.BaseAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            calls.append(str(request.url))
            raise requests.exceptions.ConnectionError(
                "HTTPSConnectionPool(host='erp.nowhere.test', port=443): Max retries exceeded "
                "(Caused by NameResolutionError(\"Failed to resolve 'erp.nowhere.test'\"))"
            )

        def close(self) -> None:
            pass

    session = requests.Session()
    session.mount("https://", NoDns())
    settings = ErpNextSettings.model_validate(
        {"url": "https://erp.nowhere.test", "api_key": KEY, "api_secret": SECRET, "max_retries": 8}
    )
    client = ErpNextClient(settings, session=session, backoff=0.01)
    with pytest.raises(ErpNextUnavailableError, match=r"host 'erp\.nowhere\.test' .* is not found \(DNS\)"):
        client.probe()
    assert len(calls) == 1


def test_json_answers_are_never_diagnosed_as_a_wrong_url() -> None:
    assert describe_non_api_answer("http://h", 200, {"content-type": "text/plain"}, '{"message": "pong"}') is None
    assert describe_non_api_answer("http://h", 502, {"content-type": "text/html"}, "<title>502</title>") is None
    assert describe_non_api_answer("http://h", 200, {}, "") is None
    page = describe_non_api_answer("http://h/x", 200, {"content-type": "text/html"}, "<p>hi</p>")
    assert page is not None and "without the path '/x'" in page


def test_checks_exit_code_is_the_first_failure() -> None:
    ok = CheckResult("a", True, "fine")
    assert checks_exit_code([ok]) == ExitCode.OK
    unreachable = CheckResult("b", False, "x", code=ExitCode.UNAVAILABLE)
    refused = CheckResult("c", False, "y", code=ExitCode.AUTH)
    assert checks_exit_code([ok, unreachable, refused]) == ExitCode.UNAVAILABLE
    assert checks_exit_code([ok, refused, unreachable]) == ExitCode.AUTH


# --- through the CLI ---------------------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str, str]:
    from amz2erp.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def point_erpnext_at(env: SimEnv, url: str) -> None:
    text = env.config_path.read_text().replace(env.erp.url, url)
    env.config_path.write_text(text)


def test_cli_wrong_url_check_and_sync_exit_2_with_the_diagnosis(tmp_path: Path) -> None:
    with SimEnv(tmp_path, listings=5, orders=5) as env, html_server() as port:
        point_erpnext_at(env, f"http://127.0.0.1:{port}/app/home")
        check = env.run("check")
        sync = env.run("sync-orders")
        setup = env.run("setup")
    assert check.code == 2, check.out + check.err
    assert "✗ erpnext reachable:" in check.out and "answered a web page" in check.out
    assert f"Asking ERPNext at http://127.0.0.1:{port}/app/home for ping" in check.err
    for result in (sync, setup):
        assert result.code == 2, result.err
        assert "answered a web page" in result.err and "without the path '/app/home'" in result.err
        assert "Traceback" not in result.err and "does not exist" not in result.err


def test_cli_check_exit_codes_match_the_syncs(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=0)
    env.setup_erp()
    assert env.run("check").code == 0
    env.write_config(api_secret="wrong-secret-value")
    refused = env.run("check")
    assert refused.code == ExitCode.AUTH, refused.out
    assert "✗ erpnext credentials" in refused.out
    env.write_config(erp_url=f"http://127.0.0.1:{closed_port()}")
    down = env.run("check")
    assert down.code == ExitCode.UNAVAILABLE, down.out
    assert "✗ erpnext reachable" in down.out and "nothing listens" in down.out
    # every check still has its ✓/✗ line: the Amazon ones ran too
    assert "✓ amazon credentials" in down.out


def test_cli_check_on_the_init_template_names_the_placeholders_without_any_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "amz2erp.toml"
    assert run_cli("init", "--path", str(path))[0] == 0

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"check looked up a host for placeholder values: {args[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    code, out, err = run_cli("--config", str(path), "check")
    assert code == ExitCode.CONFIG, out + err
    lines = [line for line in out.splitlines() if line.startswith(("✓", "✗"))]
    assert lines[0].startswith("✗ placeholders:")
    for key in ("[erpnext] url", "[erpnext] api_key", "[erpnext] api_secret", "[amazon] refresh_token",
                "[amazon] lwa_app_id", "[amazon] lwa_client_secret", "[defaults] company"):
        assert key in lines[0]
    assert any(line.startswith("✗ erpnext reachable: not checked") for line in lines)
    assert any(line.startswith("✗ amazon credentials: not checked") for line in lines)
    assert "your-api-secret" not in out + err and "Atzr|your-refresh-token" not in out + err


def test_placeholder_keys_only_names_example_values(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=0)
    from amz2erp.config import load_settings

    settings, _ = load_settings(str(env.config_path))
    assert placeholder_keys(settings) == []
    env.write_config(api_key="your-api-key", erp_url="https://erp.example.com/")
    settings, _ = load_settings(str(env.config_path))
    assert placeholder_keys(settings) == ["[erpnext] url", "[erpnext] api_key"]


def test_amazon_unreachable_fails_fast_in_check(tmp_path: Path) -> None:
    with SimEnv(tmp_path, listings=5, orders=0) as env:
        env.setup_erp()
        env.write_config(lwa_url=f"http://127.0.0.1:{closed_port()}/auth/o2/token")
        result = env.run("check")
        calls = env.spapi.operation_counts()
    assert result.code == ExitCode.UNAVAILABLE, result.out
    assert "✗ amazon credentials: Amazon could not be asked: Amazon unreachable: Login with Amazon" in result.out
    assert "Asking Amazon" in result.err
    assert not calls.get("getMarketplaceParticipations")  # and no retry loop slept on the clock
    assert env.clock.slept == 0


def test_setup_with_a_wrong_company_refuses(sim_env: SimEnvFactory) -> None:
    env = sim_env(listings=5, orders=0)
    env.config_path.write_text(
        env.config_path.read_text().replace('company = "Amz Test Co"', 'company = "Amz Tset Co"')
    )
    for args in (("setup",), ("setup", "--dry-run")):
        result = env.run(*args)
        assert result.code == ExitCode.CONFIG, result.out
        assert "Nothing to do" not in result.out
        assert "company 'Amz Tset Co' does not exist in ERPNext" in result.err
        assert "set [defaults] company to one of: Amz Test Co" in result.err
    assert env.erp.count("Custom Field") == 0  # nothing was created for a company that is not there


def test_amazon_client_refuses_template_credentials_before_any_request() -> None:
    from amz2erp.amazon.client import AmazonClient
    from amz2erp.config import AmazonSettings
    from amz2erp.errors import ConfigError

    port = closed_port()
    settings = AmazonSettings.model_validate({
        "refresh_token": "Atzr|your-refresh-token",
        "lwa_app_id": "amzn1.application-oa2-client.your-app-id",
        "lwa_client_secret": "a-real-looking-secret",
        "marketplaces": ["US"],
        "endpoint": f"http://127.0.0.1:{port}",
        "lwa_endpoint": f"http://127.0.0.1:{port}/auth/o2/token",
    })
    with AmazonClient(settings) as amazon, pytest.raises(ConfigError) as err:
        amazon.marketplace_participations()
    assert err.value.exit_code == ExitCode.CONFIG
    assert "[amazon] refresh_token, [amazon] lwa_app_id still hold the example values" in str(err.value)
    assert "your-refresh-token" not in str(err.value)
    assert sum(amazon.calls.values()) == 0  # refused before Login with Amazon was asked


def test_cli_sync_on_template_amazon_credentials_exits_2_naming_them(tmp_path: Path) -> None:
    with SimEnv(tmp_path, listings=5, orders=5) as env:
        env.setup_erp()
        env.write_config(refresh_token="Atzr|your-refresh-token")
        result = env.run("sync-orders")
    assert result.code == ExitCode.CONFIG, result.err
    assert "Error: [amazon] refresh_token still holds the example value of the `init` template" in result.err


def test_a_wrong_url_mid_run_stops_the_run_instead_of_failing_each_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that starts serving its own page mid-run is one configuration error, not N failed orders."""
    with SimEnv(tmp_path, listings=5, orders=8) as env:
        env.setup_erp()
        assert env.run("sync-products").code == 0

        def web_page(self: ErpNextClient, doctype: str, *args: Any, **kwargs: Any) -> Any:
            raise ErpNextConfigError(f"ERPNext: {self.url} answered a web page (HTTP 200, text/html)")

        monkeypatch.setattr(ErpNextClient, "insert", web_page)
        monkeypatch.setattr(ErpNextClient, "insert_many", web_page)
        result = env.run("sync-orders")
        status = env.run("--json", "status")
    assert result.code == ExitCode.CONFIG, result.err
    assert [line for line in result.err.splitlines() if line.startswith("Error:")] == [
        f"Error: ERPNext: {env.erp.url} answered a web page (HTTP 200, text/html)"
    ]
    assert json.loads(status.out)["failed"] == []  # nothing was recorded as a failed order
