"""`demo --keep` is a playground: after the scripted demo, commands typed by hand (on the real clock) work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


def amz2erp(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amz2erp", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_kept_simulators_run_on_the_real_clock_and_every_command_works(tmp_path: Path) -> None:
    err_path = tmp_path / "demo.err"
    with open(tmp_path / "demo.out", "w") as out, open(err_path, "w") as err:
        demo = subprocess.Popen([sys.executable, "-m", "amz2erp", "demo", "--orders", "40", "--keep"],
                                stdout=out, stderr=err, text=True)
    try:
        config = None
        deadline = time.monotonic() + 240
        while config is None and time.monotonic() < deadline and demo.poll() is None:
            time.sleep(0.5)
            for line in err_path.read_text().splitlines():
                if line.strip().startswith("config "):
                    config = line.split()[-1]
        assert config is not None, f"demo --keep did not come up: {err_path.read_text()[-2000:]}"
        cfg = ["--config", config]

        results = {}
        for args in (["check"], ["sync-orders", "--mode", "report"], ["sync-orders", "--mode", "api"],
                     ["--json", "status"]):
            results[" ".join(args)] = result = amz2erp(*cfg, *args)
            assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        # a second check does not run into Amazon's one-a-minute participations plan
        assert amz2erp(*cfg, "check").returncode == 0

        status = json.loads(results["--json status"].stdout)
        now = datetime.now(timezone.utc)
        order_cursors = [c for c in status["cursors"] if "order" in c["stream"]]
        assert order_cursors, status["cursors"]
        for cursor in order_cursors:
            value = datetime.fromisoformat(str(cursor["value"]).replace("Z", "+00:00"))
            # the hand-typed syncs moved the cursor to (real) now, never into the future
            assert now - timedelta(minutes=15) < value <= now, cursor
        assert "sync-orders" in {r["command"] for r in status["runs"]}
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if the demo ignores SIGTERM
            os.kill(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)


def test_switch_clock_relaxes_the_usage_plans_for_typing_by_hand() -> None:
    """Amazon's plan allows 15 getMarketplaceParticipations, then one a minute: `check` by hand hung on 429s
    after ~15 runs. After switch_clock(min_rate, min_burst) the kept simulator allows far more."""
    from urllib.parse import urlencode

    from amz2erp.clock import SimulatedClock, SystemClock
    from amz2erp_sim.spapi import SpApiSimulator

    sim = SpApiSimulator(clock=SimulatedClock())
    creds = sim.credentials
    form = urlencode({"grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
                      "client_id": creds["lwa_app_id"], "client_secret": creds["lwa_client_secret"]}).encode()
    token = json.loads(sim.handle("POST", "/auth/o2/token", {"content-type": "application/x-www-form-urlencoded"},
                                  form).body)["access_token"]

    def participations() -> int:
        return sim.handle("GET", "/sellers/v1/marketplaceParticipations", {"x-amz-access-token": token}, b"").status

    statuses = [participations() for _ in range(16)]
    assert statuses[:15] == [200] * 15 and statuses[15] == 429  # Amazon's real plan on the demo's clock
    sim.switch_clock(SystemClock(), report_processing_seconds=2.0, min_rate=5.0, min_burst=60)
    assert sim.clock.now() > datetime.now(timezone.utc) - timedelta(seconds=5)
    assert sim.report_processing_seconds == 2.0
    assert [participations() for _ in range(60)] == [200] * 60
