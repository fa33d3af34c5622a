"""An end-to-end environment: both simulators on loopback, generated data, a config pointing at them, and a
way to run amz2erp commands in-process (fast, shared simulated clock) or as real processes."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from amz2erp.clock import SimulatedClock, set_default_clock
from amz2erp_sim import datagen
from amz2erp_sim.erpnext import ErpNextSimulator
from amz2erp_sim.spapi import SpApiOptions, SpApiSimulator
from tests.conftest import SIM_CONFIG, SP_API_MODELS


@dataclass
class Result:
    code: int
    out: str
    err: str


class SimEnv:
    def __init__(
        self,
        tmp_path: Path,
        *,
        listings: int = 40,
        orders: int = 100,
        seed: int = 3,
        marketplaces: tuple[str, ...] = ("US", "CA"),
        days: int = 30,
        clock: SimulatedClock | None = None,
        orders_api: str = "2026-01-01",
        mode: str = "api",
        workers: int = 4,
        extra_config: str = "",
        report_poll_initial: float = 5.0,
        spapi_kwargs: dict[str, Any] | None = None,
        erp_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.clock = clock or SimulatedClock(datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc))
        now = self.clock.now()
        self.listings = datagen.generate_listings(seed, listings, marketplaces)
        self.orders = (
            datagen.generate_orders(
                seed, orders, self.listings, now - timedelta(days=days), now - timedelta(minutes=10)
            )
            if orders
            else []
        )
        self.spapi = SpApiSimulator(
            SpApiOptions(**{"models_dir": SP_API_MODELS, **(spapi_kwargs or {})}),
            clock=self.clock, listings=self.listings, orders=self.orders,
        )
        self.erp = ErpNextSimulator(str(tmp_path / "erpnext.sqlite"), **(erp_kwargs or {}))
        self.config_path = tmp_path / "amz2erp.toml"
        self.state_path = tmp_path / "state.db"
        self._fmt = dict(
            marketplaces="[" + ", ".join(f'"{m}"' for m in marketplaces) + "]",
            orders_api=orders_api,
            mode=mode,
            workers=workers,
            extra=extra_config,
            report_poll_initial=report_poll_initial,
            after=(now - timedelta(days=days + 1)).date().isoformat(),
        )

    def __enter__(self) -> SimEnv:
        self.spapi.start()
        self.erp.start()
        self.write_config()
        set_default_clock(self.clock)
        return self

    def __exit__(self, *exc: object) -> None:
        set_default_clock(None)
        self.spapi.stop()
        self.erp.stop()

    def write_config(self, **overrides: Any) -> None:
        creds = self.spapi.credentials
        values = dict(
            self._fmt,
            refresh_token=creds["refresh_token"],
            client_id=creds["lwa_app_id"],
            client_secret=creds["lwa_client_secret"],
            spapi_url=self.spapi.url,
            lwa_url=self.spapi.lwa_url,
            erp_url=self.erp.url,
            api_key=self.erp.api_key,
            api_secret=self.erp.api_secret,
            state_path=self.state_path,
        )
        values.update(overrides)
        self.config_path.write_text(SIM_CONFIG.format(**values), encoding="utf-8")
        self.config_path.chmod(0o600)

    def run(self, *args: str) -> Result:
        """Run one command in-process (the clock is shared with the simulators)."""
        from amz2erp.cli import run

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(["--config", str(self.config_path), *args])
        return Result(code, out.getvalue(), err.getvalue())

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A real process (for kill tests). It uses the system clock: give the simulators one too."""
        full_env = dict(os.environ, **(env or {}))
        return subprocess.Popen(
            [sys.executable, "-m", "amz2erp", "--config", str(self.config_path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )

    def setup_erp(self) -> None:
        result = self.run("setup")
        assert result.code == 0, result.err

    # --- truth vs ERPNext ------------------------------------------------------------------------------

    def sales_orders(self) -> list[dict[str, Any]]:
        return self.erp.docs("Sales Order")

    def sales_orders_by_amazon_id(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for so in self.sales_orders():
            out.setdefault(str(so.get("amazon_order_id")), []).append(so)
        return out
