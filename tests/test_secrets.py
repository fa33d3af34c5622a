"""Secrets (issue 8): every command and error path runs with sentinel secret values — real, working credentials
of both simulators — and the sentinel never appears in stdout, stderr, the cron-style log file, the state
database or ``--dry-run``/``--json`` output. TLS verification is on by default; a plain-http ERPNext URL that
is not loopback gets a warning."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from amz2erp.clock import SystemClock
from amz2erp.config import ErpNextSettings
from amz2erp.erpnext.client import ErpNextClient
from tests.conftest import SimEnvFactory
from tests.reliability import FIGURES, TIMINGS
from tests.simenv import SimEnv
from tests.test_bad_input import _Mutator

REFRESH = "Atzr|SENTINEL-refresh-7f3a9cQZ"
LWA_SECRET = "amzn1.oa2-cs.v1.SENTINEL-lwa-91b2XW"
API_KEY = "SENTINELkey4e1dPL"
API_SECRET = "SENTINEL-api-secret-c0deMV"
WRONG = "SENTINEL-wrong-secret-5a5aKK"
SECRETS = (REFRESH, LWA_SECRET, API_KEY, API_SECRET, WRONG)
# distinctive cores: a secret cut short, re-encoded or split still leaks its core
CORES = ("7f3a9cQZ", "91b2XW", "4e1dPL", "c0deMV", "5a5aKK")


def _leaks(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    return [s for s in SECRETS + CORES if s in text or s.encode().hex() in text]


class _Runner:
    """Runs amz2erp as a real process the way cron does: stdout and stderr appended to one log file."""

    def __init__(self, env: SimEnv, log: Path) -> None:
        self.env = env
        self.log = log
        self.runs = 0
        self.codes: list[int] = []
        self.durations: list[tuple[float, tuple[str, ...]]] = []

    def __call__(self, *args: str, config: Path | None = None, env: dict[str, str] | None = None,
                 expect: set[int] | None = None) -> tuple[int, str]:
        cfg = config or self.env.config_path
        out_path = self.log.with_suffix(f".{self.runs}.out")
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(self.log, "ab") as log:
            proc = subprocess.run([sys.executable, "-m", "amz2erp", "--config", str(cfg), *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                                  env=dict(os.environ, **(env or {})))
            out.write(proc.stdout)
            log.write(proc.stdout)
        self.runs += 1
        self.codes.append(proc.returncode)
        self.durations.append((time.monotonic() - t0, args))
        text = proc.stdout.decode("utf-8", errors="replace")
        assert _leaks(proc.stdout) == [], (args, text[-3000:])
        assert "Traceback" not in text or "--traceback" in args, text[-3000:]
        if expect is not None and proc.returncode not in expect:
            pytest.fail(f"{args} exited {proc.returncode}, expected {expect}:\n{text[-3000:]}")
        return proc.returncode, text


@pytest.fixture
def secret_env(sim_env: SimEnvFactory) -> Iterator[SimEnv]:
    # the simulator finishes reports at once: poll them at once too
    env = sim_env(listings=12, orders=30, seed=61, days=10, clock=SystemClock(), marketplaces=("US",),  # type: ignore[arg-type]
                  report_poll_initial=0.05,
                  spapi_kwargs={"rate_limits": False, "report_processing_seconds": 0.0, "lwa_refresh_token": REFRESH,
                          "lwa_client_secret": LWA_SECRET, "strict": False},
                  erp_kwargs={"api_key": API_KEY, "api_secret": API_SECRET})
    yield env


def _variant(env: SimEnv, name: str, old: str, new: str) -> Path:
    path = env.tmp_path / f"{name}.toml"
    text = env.config_path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    path.chmod(0o600)
    return path


def test_sentinel_secrets_never_leak(secret_env: SimEnv) -> None:
    started = time.monotonic()
    env = secret_env
    assert API_SECRET in env.config_path.read_text() and REFRESH in env.config_path.read_text()
    run = _Runner(env, env.tmp_path / "amz2erp.log")
    frm = (env.clock.now() - timedelta(days=11)).date().isoformat()
    ok = {0}

    # every command, at debug verbosity, with and without --json and --dry-run
    run("-vv", "check", expect={2})  # before setup: the custom fields are missing
    run("-vv", "--json", "setup", "--dry-run", expect=ok)
    run("-vv", "setup", expect=ok)
    run("-vv", "--json", "check", expect=ok)
    run("-vv", "--json", "sync-products", "--dry-run", expect=ok)
    run("-vv", "--json", "sync-products", expect=ok)
    run("-vv", "--json", "sync-orders", "--dry-run", expect=ok)
    run("-vv", "sync-orders", "--dry-run", expect=ok)
    run("-vv", "sync-orders", expect=ok)
    run("-vv", "--json", "backfill", "--from", frm, "--chunk", "5d", "--dry-run", "--no-products", expect=ok)
    run("-vv", "backfill", "--from", frm, "--chunk", "5d", "--no-products", "--mode", "api", expect=ok)
    run("-vv", "--json", "retry", expect=ok)
    run("-vv", "--json", "status", expect=ok)
    run("-vv", "status", expect=ok)
    run("-vv", "--json", "cron", "--every", "15m", expect=ok)
    run("-vv", "init", "--path", str(env.tmp_path / "new.toml"), expect=ok)
    # the secrets from the environment instead of the file
    placeholders = _variant(env, "from-env", API_SECRET, "placeholder")
    placeholders.write_text(placeholders.read_text().replace(REFRESH, "placeholder")
                            .replace(LWA_SECRET, "placeholder").replace(API_KEY, "placeholder"))
    secret_vars = {"AMZ2ERP_REFRESH_TOKEN": REFRESH, "AMZ2ERP_LWA_CLIENT_SECRET": LWA_SECRET,
                   "AMZ2ERP_ERPNEXT_API_KEY": API_KEY, "AMZ2ERP_ERPNEXT_API_SECRET": API_SECRET}
    run("-vv", "--json", "check", config=placeholders, env=secret_vars, expect=ok)
    run("-vv", "--json", "sync-orders", "--dry-run", config=placeholders, env=secret_vars, expect=ok)

    # error paths
    wrong_erp = _variant(env, "wrong-erp", API_SECRET, WRONG)
    run("-vv", "sync-orders", config=wrong_erp, expect={3})
    run("-vv", "--json", "check", config=wrong_erp, expect={2, 3})
    run("-vv", "--traceback", "setup", config=wrong_erp, expect={3})
    wrong_lwa = _variant(env, "wrong-lwa", REFRESH, "Atzr|" + WRONG)
    run("-vv", "sync-orders", config=wrong_lwa, expect={3})
    run("-vv", "--traceback", "--json", "sync-products", config=wrong_lwa, expect={3})
    down = _variant(env, "down", f'url = "{env.erp.url}"', 'url = "http://127.0.0.1:9"\nmax_retries = 0')
    run("-vv", "sync-orders", config=down, expect={4})
    run("-vv", "--traceback", "check", config=down, expect={2, 4})
    misspelt = _variant(env, "misspelt", "api_secret =", "api_secrte =")
    run("-vv", "check", config=misspelt, expect={2})
    unterminated = _variant(env, "unterminated", f'api_secret = "{API_SECRET}"', f'api_secret = "{API_SECRET}')
    run("-vv", "status", config=unterminated, expect={2})
    wrong_type = _variant(env, "wrong-type", f'refresh_token = "{REFRESH}"', f'refresh_token = ["{REFRESH}"]')
    run("-vv", "--json", "sync-orders", config=wrong_type, expect={2})
    in_url = _variant(env, "secret-in-url", f'url = "{env.erp.url}"', f'url = "{env.erp.url}/{API_SECRET}"')
    run("-vv", "--traceback", "sync-orders", config=in_url)
    # an internal error (an unreadable order payload, see bug B2) with --traceback: the trace is masked too
    victim = next(o for o in env.spapi.orders if o.status in ("Unshipped", "Shipped"))
    mutator = _Mutator(env)
    mutator.target, mutator.edits = victim.amazon_order_id, [("set", "orderItems.0.product", True)]
    run("-vv", "--traceback", "--json", "sync-orders", "--after", frm)
    mutator.target = None

    # the lock held: exit 75
    from amz2erp.state import RunLock

    lock = RunLock(env.state_path)
    lock.acquire()
    try:
        run("-vv", "sync-orders", expect={75})
    finally:
        lock.release()

    # the log file and the state database (with its WAL) hold no secret either
    log = (env.tmp_path / "amz2erp.log").read_bytes()
    assert log and _leaks(log) == []
    for path in env.tmp_path.iterdir():
        if path.name.startswith("state.db"):
            assert _leaks(path.read_bytes()) == [], path
    assert (env.tmp_path / "state.db").stat().st_size > 0
    # and the secrets really were in use: the simulators accepted them
    assert env.erp.count("Sales Order") > 0
    assert {3, 4, 2, 75} <= set(run.codes)
    FIGURES["secrets: command and error-path runs checked"] += run.runs
    TIMINGS["test_secrets"] = time.monotonic() - started


def test_tls_verification_is_on_by_default() -> None:
    settings = ErpNextSettings(url="https://erp.example.com", api_key="k", api_secret="s")
    assert settings.verify_tls is True
    client = ErpNextClient(settings)
    assert client.session.verify is True


@pytest.mark.parametrize("url,warns", [
    ("http://erp.example.com", True), ("http://10.0.0.5:8000", True), ("http://erp.local", True),
    ("https://erp.example.com", False), ("http://127.0.0.1:8000", False), ("http://localhost:8000", False),
    ("http://[::1]:8000", False),
])
def test_plain_http_that_is_not_loopback_warns(url: str, warns: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ErpNextClient(ErpNextSettings(url=url, api_key="k", api_secret=API_SECRET))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    plain = [w for w in warnings if "http" in w.lower()]
    assert bool(plain) is warns, warnings
    assert all(API_SECRET not in w for w in warnings)
