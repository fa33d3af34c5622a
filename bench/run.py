"""The amz2erp benchmark: one command, one table.

    python -m bench.run            # full: 1k/10k/100k orders (about 15 minutes on 2 cores)
    python -m bench.run --quick    # 1k/10k, smaller samples (about 1.5 minutes)

1. SP-API calls per 1,000 orders and simulated Amazon time of a two-year backfill, in api mode, report mode and
   the Frappe connector's call pattern, on the SP-API simulator with Amazon's documented rate limits on a
   simulated clock (bench/amazon_cost.py);
2. ERPNext write throughput with 1, 2, 4 and 8 workers against the ERPNext simulator with a per-request
   latency, next to the simulator's ceiling (bench/erp_throughput.py);
3. peak RSS of the CLI process for a report-mode backfill of 10k and 100k orders (bench/rss.py);
4. sync-settlements: SP-API calls per settlement and per 1,000 orders settled, Journal Entry write time
   (bench/settlements.py).

Parts 1 and 3 run side by side (part 1 in a worker process: its figures are simulated time, part 3's are
memory, neither depends on real speed); part 2 measures real time and runs alone afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.amazon_cost import CostResult, run_client_mode, run_frappe_pattern
from bench.erp_throughput import WriteResult, run_writes
from bench.rss import RssResult, run_rss
from bench.settlements import SettlementBenchResult, run_settlements

TARGET_CALLS = 15.0
TARGET_MINUTES = 30.0
TARGET_RSS_MB = 150.0
TARGET_SHARE = 0.80


def _fmt_duration(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def machine() -> dict[str, str]:
    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    mem = sh(["free", "-h"]).splitlines()
    return {
        "cpus": sh(["nproc"]) or str(os.cpu_count()),
        "cpu": cpu,
        "memory": " ".join(mem[1].split()[1:2]) + " total" if len(mem) > 1 else "?",
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def render(costs: list[CostResult], writes: list[WriteResult], rss: list[RssResult], opts: argparse.Namespace,
           info: dict[str, str], elapsed: float, settles: list[SettlementBenchResult] | None = None) -> str:
    lines: list[str] = []
    lines.append(f"Machine: {info['cpus']} × {info['cpu']}, {info['memory']} RAM, Python {info['python']}, "
                 f"{info['os']}; run {info['date']} (`python -m bench.run{' --quick' if opts.quick else ''}`, "
                 f"{elapsed / 60:.1f} min).")
    lines.append("")
    lines.append(f"**1. Amazon: a {opts.days}-day backfill** (SP-API simulator, Amazon's documented rate limits "
                 f"on a simulated clock, reports processed in {opts.report_seconds:g} s, backfill `--chunk "
                 f"{opts.chunk_days}d`). Calls are SP-API operations (429s included; LWA tokens and S3 downloads "
                 "not counted); Amazon time is simulated time spent waiting on Amazon.")
    lines.append("")
    names = {"api": "api (Orders 2026-01-01 searchOrders)", "report": "report (flat-file orders report)",
             "report+hint": "report, backfill announcing its range (proposed engine change)",
             "frappe": "Frappe connector pattern (getOrders + getOrderItems + financial events per order)"}
    rows = []
    for c in costs:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(c.by_operation.items(), key=lambda kv: -kv[1]))
        read = f"{c.orders_seen:,}" + ("" if c.orders_seen == c.orders else " ¹")
        rows.append([names[c.mode], f"{c.orders:,}", read, f"{c.calls:,}", f"{c.calls_per_1000:,.1f}",
                     _fmt_duration(c.amazon_seconds), ops])
    lines.append(table(["mode", "orders", "read", "SP-API calls", "calls / 1,000 orders", "Amazon time",
                        "calls by operation"], rows))
    if any(c.orders_seen != c.orders for c in costs):
        lines.append("")
        lines.append("¹ Amazon returns no order older than two years. The horizon moves on while a backfill runs, "
                     "so a backfill that takes days loses the oldest orders before it reaches them (it reads "
                     "newest first).")
    lines.append("")
    if writes:
        w0 = writes[0]
        lines.append(f"**2. ERPNext writes** (engine path: lookup, customer, address, Sales Order submitted with "
                     f"its status fixed; ERPNext simulator with {opts.erp_latency * 1000:g} ms per request and "
                     f"{opts.erp_server_workers} server workers, i.e. a ceiling of {w0.ceiling_rps:g} requests/s; "
                     f"{w0.orders} to {writes[-1].orders} timed orders after a warm-up).")
        lines.append("")
        rows = [[str(w.workers), f"{w.orders_per_s:.1f}", f"{w.requests_per_s:.1f}", f"{w.requests_per_order:.1f}",
                 f"{w.ceiling_rps:g} req/s = {w.ceiling_orders_per_s:.1f} orders/s",
                 f"{100 * w.share_of_ceiling:.0f} %"] for w in writes]
        lines.append(table(["workers", "orders/s", "requests/s", "requests / order", "simulator ceiling",
                            "share of ceiling"], rows))
        lines.append("")
    if rss:
        lines.append("**3. Peak RSS of the CLI process** (`backfill --mode report` over two years in a child "
                     "process, real clock, SP-API rate limits off: this part measures memory, not time; "
                     "`[orders] customer = \"marketplace\"`).")
        lines.append("")
        rows = [[f"{r.orders:,}", f"{r.sales_orders:,}", f"{r.peak_rss_mb:.0f} MiB", f"{r.baseline_rss_mb:.0f} MiB",
                 f"{r.seconds:.0f} s"] for r in rss]
        lines.append(table(["orders on Amazon", "Sales Orders written", "peak RSS", "`amz2erp --version` RSS",
                            "wall time"], rows))
        lines.append("")
    if settles:
        lines.extend(render_settlements(settles))
    lines.append("**Targets**")
    lines.append("")
    lines.extend(targets(costs, writes, rss, opts))
    return "\n".join(lines)


def render_settlements(settles: list[SettlementBenchResult]) -> list[str]:
    lines = ["**4. sync-settlements** (60 days of US orders, 14-day settlements; both simulators, Amazon's "
             "documented rate limits on a simulated clock, ERPNext simulator with 5 ms per request; the second "
             "run must write nothing).", ""]
    rows = [[f"{x.orders:,}", f"{x.orders_settled:,}", str(x.settlements), f"{x.rows:,}", str(x.calls),
             f"{x.calls_per_settlement:.2f}", f"{x.calls_per_1000_orders:.1f}",
             ", ".join(f"{k} {v}" for k, v in sorted(x.by_operation.items())), f"{x.je_write_ms:.0f} ms",
             f"{x.run_seconds:.1f} s", f"{x.rerun_writes} writes, {x.rerun_calls} calls"] for x in settles]
    lines.append(table(["orders", "orders settled", "settlements", "rows", "SP-API calls", "calls / settlement",
                        "calls / 1,000 orders settled", "calls by operation", "Journal Entry write",
                        "run (wall)", "re-run"], rows))
    lines.append("")
    return lines


def targets(costs: list[CostResult], writes: list[WriteResult], rss: list[RssResult],
            opts: argparse.Namespace) -> list[str]:
    out = []
    rep = [c for c in costs if c.mode.startswith("report")]
    for c in rep:
        ok = c.calls_per_1000 <= TARGET_CALLS
        out.append(f"- ≤ {TARGET_CALLS:g} SP-API calls / 1,000 orders ({c.mode}, {c.orders:,} orders): "
                   f"{c.calls_per_1000:.1f} {'✓' if ok else '✗'}")
    big = [c for c in rep if c.orders >= 100_000]
    for c in big:
        ok = c.amazon_seconds <= TARGET_MINUTES * 60
        out.append(f"- {opts.days}-day, {c.orders:,}-order backfill ≤ {TARGET_MINUTES:g} min of Amazon time "
                   f"({c.mode}): {_fmt_duration(c.amazon_seconds)} {'✓' if ok else '✗'}")
    for r in rss:
        if r.orders >= 100_000:
            ok = r.peak_rss_mb <= TARGET_RSS_MB
            out.append(f"- peak RSS ≤ {TARGET_RSS_MB:g} MB at {r.orders:,} orders: {r.peak_rss_mb:.0f} MiB "
                       f"{'✓' if ok else '✗'}")
    for w in writes:
        if w.workers == 4:
            ok = w.share_of_ceiling >= TARGET_SHARE
            out.append(f"- writes ≥ {100 * TARGET_SHARE:.0f} % of the simulator's ceiling with 4 workers: "
                       f"{100 * w.share_of_ceiling:.0f} % {'✓' if ok else '✗'}")
    return out


def amazon_part(sizes: list[int], days: int, chunk: timedelta, report_seconds: float,
                began: float) -> list[CostResult]:
    out = []
    for n in sizes:
        for mode in ("api", "report", "report+hint", "frappe"):
            if mode == "frappe":
                c = run_frappe_pattern(n, days=days)
            else:
                c = run_client_mode(n, mode, days=days, chunk=chunk, report_seconds=report_seconds)
            out.append(c)
            print(f"[{time.monotonic() - began:6.1f}s] part 1: {mode} {n:,}: read {c.orders_seen:,}, {c.calls} calls, "
                  f"{_fmt_duration(c.amazon_seconds)}", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1k/10k orders and small samples (about a minute)")
    p.add_argument("--sizes", default=None, help="orders per backfill, comma-separated (default 1000,10000,100000)")
    p.add_argument("--days", type=int, default=730, help="backfill span in days (default 730 = two years)")
    p.add_argument("--chunk-days", type=int, default=7, help="backfill --chunk (default 7, the CLI default)")
    p.add_argument("--report-seconds", type=float, default=180.0,
                   help="simulated report processing time (default 180 s)")
    p.add_argument("--erp-latency", type=float, default=0.05, help="ERPNext simulator latency per request (s)")
    p.add_argument("--erp-server-workers", type=int, default=4, help="ERPNext simulator workers")
    p.add_argument("--erp-orders", type=int, default=None,
                   help="timed orders per busy worker (default 30; quick 10)")
    p.add_argument("--rss-sizes", default=None, help="orders for the RSS part (default 10000,100000; quick 3000)")
    p.add_argument("--parts", default="1,2,3,4", help="which parts to run (default 1,2,3,4)")
    p.add_argument("--settle-sizes", default=None, help="orders for part 4 (default 1000,5000; quick 1000)")
    p.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    p.add_argument("--markdown", default=None, help="also write the table (Markdown) to this file")
    opts = p.parse_args(argv)
    sizes = [int(s) for s in (opts.sizes or ("1000,10000" if opts.quick else "1000,10000,100000")).split(",")]
    rss_sizes = [int(s) for s in (opts.rss_sizes or ("3000" if opts.quick else "10000,100000")).split(",") if s]
    per_worker = opts.erp_orders or (10 if opts.quick else 30)
    parts = {int(x) for x in opts.parts.split(",") if x}
    chunk = timedelta(days=opts.chunk_days)
    began = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def rss_part() -> list[RssResult]:
        out = []
        for n in rss_sizes:
            out.append(run_rss(n, days=opts.days, extra_config='[orders]\ncustomer = "marketplace"\n'))
            progress(f"part 3: {n:,} orders: peak RSS {out[-1].peak_rss_mb:.0f} MiB")
        return out

    costs: list[CostResult] = []
    writes: list[WriteResult] = []
    rss: list[RssResult] = []
    # part 1 in its own process (its own GIL and core), part 3 meanwhile from a thread of this one, which also
    # serves part 3's simulators; part 2 afterwards, alone
    with ProcessPoolExecutor(1) as worker, ThreadPoolExecutor(1) as background:
        costs_future = worker.submit(amazon_part, sizes, opts.days, chunk, opts.report_seconds, began) \
            if 1 in parts else None
        rss_future = background.submit(rss_part) if 3 in parts and rss_sizes else None
        if costs_future is not None:
            costs = costs_future.result()
        if rss_future is not None:
            rss = rss_future.result()
    if 2 in parts:
        for w in (1, 2, 4, 8):
            writes.extend(run_writes([w], latency=opts.erp_latency, server_workers=opts.erp_server_workers,
                                     orders=per_worker * min(w, opts.erp_server_workers), warmup=20))
            progress(f"part 2: {w} workers: {writes[-1].orders_per_s:.1f} orders/s")
    settles: list[SettlementBenchResult] = []
    if 4 in parts:
        for n in [int(x) for x in (opts.settle_sizes or ("1000" if opts.quick else "1000,5000")).split(",") if x]:
            settles.append(run_settlements(n))
            progress(f"part 4: {n:,} orders: {settles[-1].calls} SP-API calls for {settles[-1].settlements} settlements")
    info = machine()
    text = render(costs, writes, rss, opts, info, time.monotonic() - began, settles)
    print(text)
    if opts.markdown:
        with open(opts.markdown, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    if opts.json:
        data: dict[str, Any] = {"machine": info, "options": vars(opts),
                                "amazon": [dict(asdict(c), calls_per_1000=c.calls_per_1000) for c in costs],
                                "writes": [dict(asdict(w), orders_per_s=w.orders_per_s, requests_per_s=w.requests_per_s,
                                                share_of_ceiling=w.share_of_ceiling) for w in writes],
                                "rss": [asdict(r) for r in rss],
                                "settlements": [dict(asdict(x), calls_per_settlement=x.calls_per_settlement,
                                                     calls_per_1000_orders=x.calls_per_1000_orders) for x in settles]}
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
