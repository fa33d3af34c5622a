"""Shared fixtures. Tests talk only to 127.0.0.1; nothing here reaches the internet."""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.simenv import SimEnv

REPO = Path(__file__).resolve().parent.parent

#: Everything the tests read lives inside the repository, so a fresh clone runs the whole suite and nothing
#: skips. fixture_path() is the one way tests find a vendored fixture.
FIXTURES = REPO / "tests" / "fixtures"


def fixture_path(*parts: str) -> Path:
    """A vendored fixture file or folder; a missing one fails loudly instead of skipping a test."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test fixture {path.relative_to(REPO)} is missing from the repository")
    return path


#: Request/response pairs recorded from a real ERPNext v15 server (what each shows: the folder's README.md).
ERPNEXT_RECORDINGS = fixture_path("erpnext_v15_recordings")
#: Amazon's official SP-API models, Apache-2.0 (LICENSE, NOTICE and provenance beside them).
SP_API_MODELS = fixture_path("sp_api_models")

_ENV_TO_CLEAR = (
    "AMZ2ERP_CONFIG",
    "AMZ2ERP_REFRESH_TOKEN",
    "AMZ2ERP_LWA_APP_ID",
    "AMZ2ERP_LWA_CLIENT_SECRET",
    "AMZ2ERP_ERPNEXT_API_KEY",
    "AMZ2ERP_ERPNEXT_API_SECRET",
    "SP_API_DEFAULT_MARKETPLACE",
    "AWS_ENV",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's config, state or credentials."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))


def amz2erp_cmd() -> list[str]:
    """How to run the CLI as a real process (the installed console script's module form)."""
    return [sys.executable, "-m", "amz2erp"]


def write_config(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    os.chmod(path, 0o600)
    return path


MINIMAL_CONFIG = """\
[amazon]
refresh_token = "{refresh_token}"
lwa_app_id = "app-id"
lwa_client_secret = "{client_secret}"
marketplaces = ["US"]

[erpnext]
url = "{erp_url}"
api_key = "key-1234"
api_secret = "{api_secret}"

[defaults]
company = "Amz Test Co"
warehouse = "Stores - ATC"

[state]
path = "{state_path}"
"""


#: The config SimEnv writes: every section, pointing at both simulators (the one other template is
#: MINIMAL_CONFIG above, for commands that never reach a server).
SIM_CONFIG = """\
[amazon]
refresh_token = "{refresh_token}"
lwa_app_id = "{client_id}"
lwa_client_secret = "{client_secret}"
marketplaces = {marketplaces}
endpoint = "{spapi_url}"
lwa_endpoint = "{lwa_url}"
orders_api = "{orders_api}"
max_retries = 10
backoff_ceiling = 30.0
timeout = 5.0
report_poll_initial = {report_poll_initial}

[erpnext]
url = "{erp_url}"
api_key = "{api_key}"
api_secret = "{api_secret}"
workers = {workers}
timeout = 5.0

[defaults]
company = "Amz Test Co"
warehouse = "Stores - ATC"
fba_warehouse = "Finished Goods - ATC"
account_group = "Duties and Taxes - ATC"

[orders.exchange_rates]
"CAD:USD" = 0.72

[sync]
after = {after}
mode = "{mode}"

[state]
path = "{state_path}"
{extra}
"""


#: the type of the ``sim_env`` fixture: keyword arguments of ``SimEnv`` in, a started environment out
SimEnvFactory = Callable[..., "SimEnv"]


@pytest.fixture
def sim_env(tmp_path: Path) -> Iterator[SimEnvFactory]:
    """The one end-to-end harness: ``env = sim_env(listings=.., orders=..)`` starts a ``SimEnv`` (both simulators,
    generated data, a config pointing at them) in this test's tmp_path; a second call gets its own sub-folder.
    Every environment is stopped when the test ends, however it ends."""
    from tests.simenv import SimEnv

    with contextlib.ExitStack() as stack:
        made: list[SimEnv] = []

        def make(**kwargs: Any) -> SimEnv:
            folder = tmp_path if not made else tmp_path / f"env{len(made)}"
            folder.mkdir(exist_ok=True)
            made.append(stack.enter_context(SimEnv(folder, **kwargs)))
            return made[-1]

        yield make


# --- reliability tests (issue 8) -------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kills", type=int, default=50,
                     help="How many SIGKILLs the crash test must land (default 50; e.g. --kills 500).")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reliability = sys.modules.get("tests.reliability")
    figures = getattr(reliability, "FIGURES", None)
    if not figures:
        return
    terminalreporter.section("reliability figures (issue 8)")
    for name, value in sorted(figures.items()):
        terminalreporter.write_line(f"{name}: {value}")
    for name, seconds in sorted(getattr(reliability, "TIMINGS", {}).items()):
        terminalreporter.write_line(f"time {name}: {seconds:.1f}s")


def fake_crontab(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `crontab` stand-in (``-l`` prints the store, ``-`` replaces it) that `amz2erp cron` is pointed at
    through $AMZ2ERP_CRONTAB, so no test touches the machine's crontab; returns the store file."""
    store = directory / "crontab.txt"
    script = directory / "crontab"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "-l" ]; then
  if [ -f "{store}" ]; then cat "{store}"; else echo "no crontab for $USER" >&2; exit 1; fi
elif [ "$1" = "-" ]; then
  cat > "{store}"
fi
""")
    script.chmod(0o755)
    monkeypatch.setenv("AMZ2ERP_CRONTAB", str(script))
    return store
