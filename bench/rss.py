"""Part 3: peak RSS of the CLI process for a report-mode backfill of N orders.

The CLI runs as a child process (``python -m bench.cli_unthrottled … backfill --mode report``, i.e. the real
CLI with client-side rate limits lifted) against both simulators served from this process on the real clock,
SP-API rate limits off and reports processed at once: this part measures memory, not time. Peak RSS is the
child's own ``VmHWM`` (/proc/self/status) written at exit (see bench/cli_unthrottled.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from amz2erp.clock import SystemClock
from amz2erp_sim import datagen
from bench.env import run_cli, simulators


@dataclass
class RssResult:
    orders: int
    sales_orders: int
    peak_rss_mb: float
    seconds: float
    exit_code: int
    baseline_rss_mb: float


def _child(config: str, *args: str) -> tuple[int, float, float, str]:
    """Run the CLI child; (exit code, peak RSS in MiB, seconds, stderr tail)."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.NamedTemporaryFile(prefix="amz2erp-rss-", delete=False) as f:
        peak_file = f.name
    env["BENCH_RSS_FILE"] = peak_file
    try:
        began = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "bench.cli_unthrottled", "--config", config, *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=root)
        assert proc.stderr is not None
        err = proc.stderr.read()  # drain while it runs
        proc.wait()
        seconds = time.monotonic() - began
        with open(peak_file, encoding="ascii") as f:
            text = f.read().strip()
        peak_kib = float(text) if text else float("nan")
    finally:
        os.unlink(peak_file)
    return proc.returncode, peak_kib / 1024.0, seconds, err.decode(errors="replace")[-800:]


def run_rss(n: int, *, days: int = 730, workers: int = 4, seed: int = 11, extra_config: str = "") -> RssResult:
    now = datetime.now(timezone.utc)
    listings = datagen.generate_listings(seed, 40, ("US",))
    orders = datagen.generate_orders(seed, n, listings, now - timedelta(days=days) + timedelta(hours=2),
                                     now - timedelta(minutes=10))
    clock = SystemClock()
    with simulators(clock, listings, orders, workers=workers, extra_config=extra_config,
                    spapi_kwargs={"rate_limits": False, "report_processing_seconds": 0.0, "strict": False}) as (
            _spapi, erp, cfg):
        del orders  # the simulator holds its own copy
        code, err = run_cli(cfg, "-q", "setup")
        if code != 0:
            raise RuntimeError(f"setup failed ({code}): {err[-500:]}")
        _, base_rss, _, _ = _child(str(cfg), "--version")
        start = (now - timedelta(days=days)).date().isoformat()
        code, rss, secs, err = _child(str(cfg), "-q", "backfill", "--from", start, "--mode", "report",
                                      "--no-products")
        if code not in (0, 1):
            raise RuntimeError(f"backfill exited {code}: {err}")
        made = erp.count("Sales Order")
    return RssResult(n, made, rss, secs, code, base_rss)
