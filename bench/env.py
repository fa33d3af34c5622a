"""Both simulators on loopback plus an amz2erp config pointing at them (the benchmark's own copy of the
test harness in tests/simenv.py, which the benchmark does not import)."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from amz2erp.clock import Clock
from amz2erp_sim import datagen
from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.spapi import SpApiOptions, SpApiSimulator

CONFIG = """\
[amazon]
refresh_token = "{refresh_token}"
lwa_app_id = "{client_id}"
lwa_client_secret = "{client_secret}"
marketplaces = ["US"]
endpoint = "{spapi_url}"
lwa_endpoint = "{lwa_url}"
max_retries = 10
timeout = 30.0

[erpnext]
url = "{erp_url}"
api_key = "{api_key}"
api_secret = "{api_secret}"
workers = {workers}
timeout = 30.0

[defaults]
company = "Amz Test Co"
warehouse = "Stores - ATC"
fba_warehouse = "Finished Goods - ATC"
account_group = "Duties and Taxes - ATC"

[items]
enrich = false

[state]
path = "{state_path}"
{extra}
"""


def scratch_dir() -> str | None:
    """Where the simulators' SQLite files and the state database go: RAM when Linux offers it."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@contextlib.contextmanager
def simulators(
    clock: Clock,
    listings: list[datagen.SimListing],
    orders: list[datagen.SimOrder],
    *,
    workers: int = 4,
    extra_config: str = "",
    spapi_kwargs: dict[str, Any] | None = None,
    erp_kwargs: dict[str, Any] | None = None,
) -> Iterator[tuple[SpApiSimulator, ErpNextSimulator, Path]]:
    """(SP-API simulator, ERPNext simulator, config path), all started; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="amz2erp-bench-", dir=scratch_dir()) as tmp:
        spapi = SpApiSimulator(SpApiOptions(**(spapi_kwargs or {})), clock=clock, listings=listings, orders=orders)
        erp = ErpNextSimulator(os.path.join(tmp, "erpnext.sqlite"), **(erp_kwargs or {}))
        spapi.start()
        erp.start()
        try:
            creds = spapi.credentials
            cfg = Path(tmp) / "amz2erp.toml"
            cfg.write_text(CONFIG.format(
                refresh_token=creds["refresh_token"], client_id=creds["lwa_app_id"],
                client_secret=creds["lwa_client_secret"], spapi_url=spapi.url, lwa_url=spapi.lwa_url,
                erp_url=erp.url, api_key=erp.api_key, api_secret=erp.api_secret, workers=workers,
                state_path=Path(tmp) / "state.db", extra=extra_config), encoding="utf-8")
            cfg.chmod(0o600)
            yield spapi, erp, cfg
        finally:
            spapi.stop()
            erp.stop()


def run_cli(config: Path, *args: str) -> tuple[int, str]:
    """One amz2erp command in this process (shares the default clock); (exit code, stderr)."""
    from amz2erp.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["--config", str(config), *args])
    return code, err.getvalue()
