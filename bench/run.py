"""The amz2erp benchmark: one command, one table.

    python -m bench.run            # full: 1k/10k/100k orders (about 15 minutes on 2 cores)
    python -m bench.run --quick    # 1k/10k, smaller samples, part 2 at the default workers (about 2 minutes)

1. SP-API calls per 1,000 orders and simulated Amazon time of a two-year backfill, in api mode, report mode and
   the Frappe connector's call pattern, on the SP-API simulator with Amazon's documented rate limits on a
   simulated clock (bench/amazon_cost.py);
2. ERPNext writes in orders/s per write path (new-buyer and existing-buyer orders through the engine with 1, 2,
   4 and 8 workers; ready Sales Orders one per POST and through insert_many, the server's best path, and new
   buyers' ready Customers, Addresses and Sales Orders through insert_many, their own best path) on the
   ERPNext simulator priced like a real ERPNext v15, with the requests per order by kind
   (bench/erp_throughput.py);
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
from bench.erp_throughput import (
    DEFAULT_WORKERS,
    EXISTING_BUYER,
    INSERT_MANY,
    NEW_BUYER,
    NEW_INSERT_MANY,
    POST_ONE,
    ErpBench,
    PathResult,
    run_erp_bench,
)
from bench.rss import RssResult, run_rss
from bench.settlements import SettlementBenchResult, run_settlements

TARGET_CALLS = 15.0
TARGET_MINUTES = 30.0
TARGET_RSS_MB = 150.0
TARGET_SHARE = 0.80
# the real server (ERPNext v15, 2 workers, 2 cores; the client on the same box), what the model is checked against
REAL_POST_ONE = (7.3, 8.6)  # one submitted Sales Order per POST, 1 client thread
REAL_INSERT_MANY = (16.2, 19.3)  # insert_many of 10/50/200 submitted Sales Orders, 1 client thread
REAL_BY_PATH = {(POST_ONE, 1): "7.3–8.6", (POST_ONE, 4): "9.9–12.0", (INSERT_MANY, 1): "16.2 (×50; ×10 16.6, ×200 19.3)",
                (INSERT_MANY, 2): "18.2", (NEW_BUYER, DEFAULT_WORKERS): "2.1 (sync-orders, 1,025 orders)"}
# issue 17: what the engine's write paths should reach with the default settings
TARGET_NEW_BUYER = 8.0
TARGET_EXISTING_BUYER = 12.0


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


def render(costs: list[CostResult], writes: ErpBench | None, rss: list[RssResult], opts: argparse.Namespace,
           info: dict[str, str], elapsed: float, settles: list[SettlementBenchResult] | None = None) -> str:
    lines: list[str] = []
    lines.append(f"Machine: {info['cpus']} × {info['cpu']}, {info['memory']} RAM, Python {info['python']}, "
                 f"{info['os']}; run {info['date']} (`python -m bench.run{' --quick' if opts.quick else ''}`, "
                 f"{elapsed / 60:.1f} min).")
    lines.append("")
    if costs:
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
    if writes is not None:
        lines.extend(render_writes(writes, info))
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


def _kinds(p: PathResult) -> str:
    return ", ".join(f"{k} {v:.2f}".replace(".00", "") for k, v in p.per_order())


def render_writes(bench: ErpBench, info: dict[str, str]) -> list[str]:
    best = bench.best
    lines = [f"**2. ERPNext writes** (ERPNext simulator priced like a real ERPNext v15: 2 workers sharing 2 cores, "
             f"every request costed by what it does, amz2erp_sim/erpnext/costs.py; speed {bench.speed:g} = "
             f"{'real time' if bench.speed == 1 else 'scaled time'}; load average before part 2: "
             f"{info.get('load', '?')}). Orders/s is wall-clock time of the timed orders. Share of own best path: "
             "of the fastest insert_many of the same ready documents the path writes (new buyers: Customer, Address "
             "and Sales Order; existing buyers: the Sales Order); share of single best path: of insert_many of ready "
             "Sales Orders alone, whatever the path writes.", ""]
    rows = []
    for p in bench.paths:
        if p.engine:
            own = bench.own_best(p)
            rows.append([p.path, str(p.client_workers), f"{p.orders_per_s:.1f}", f"{p.requests_per_order:.2f}",
                         _kinds(p), f"{p.server_ms_per_order:.0f} ms", f"{p.ceiling:.1f}",
                         f"{100 * bench.own_share(p):.0f} %" + (f" ({own.orders_per_s:.1f}/s)" if own else ""),
                         f"{100 * bench.share(p):.0f} %",
                         REAL_BY_PATH.get((p.path, p.client_workers), "") + (f", {p.failed} failed" if p.failed else "")])
    lines.append(table(["engine path", "workers", "orders/s", "requests / order", "requests per order by kind",
                        "server time / order", "path ceiling, orders/s", "share of own best path",
                        "share of single best path", "real server"], rows))
    lines.append("")
    rows = [[p.path, str(p.client_workers), str(p.orders), f"{p.orders_per_s:.1f}", _kinds(p),
             f"{p.server_ms_per_order:.0f} ms", REAL_BY_PATH.get((p.path, p.client_workers), "")]
            for p in bench.paths if not p.engine]
    lines.append(table(["server path (ready documents)", "client threads", "orders", "orders/s", "requests per order",
                        "server time / order", "real server, orders/s"], rows))
    lines.append("")
    new_best = bench.fastest(NEW_INSERT_MANY)
    if best is not None:
        lines.append(f"Single best path (existing buyers' own): {best.path} from {best.client_workers} client "
                     f"thread(s), {best.orders_per_s:.1f} orders/s.")
    if new_best is not None:
        lines.append(f"New buyers' best path: {new_best.path} from {new_best.client_workers} client thread(s), "
                     f"{new_best.orders_per_s:.1f} orders/s.")
    if best is not None or new_best is not None:
        lines.append("")
    lines.extend(render_gaps(bench))
    return lines


def _ms_by_kind(p: PathResult) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in p.server_ms_by_kind() if round(v) > 0)


def render_gaps(bench: ErpBench) -> list[str]:
    """Where each engine path's server time per order goes next to its own best path's, at the default
    workers (else the first measured; server time, not wall time: what the server itself is charged for)."""
    out = []
    for path in (NEW_BUYER, EXISTING_BUYER):
        p = bench.find(path, DEFAULT_WORKERS) or next((x for x in bench.paths if x.path == path), None)
        own = bench.own_best(p) if p is not None else None
        if p is None or own is None:
            continue
        out.append(f"- {path}, {p.client_workers} workers: {p.server_ms_per_order:.0f} ms of server time per order "
                   f"({_ms_by_kind(p)}) against its best path's {own.server_ms_per_order:.0f} ms "
                   f"({_ms_by_kind(own)}).")
    if out:
        out = ["Server time per order by request kind (ms):", "", *out, ""]
    return out


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


def _within(value: float, band: tuple[float, float]) -> str:
    return "✓" if band[0] <= value <= band[1] else "✗"


def write_targets(bench: ErpBench) -> list[str]:
    out = []
    one = bench.find(POST_ONE, 1)
    if one is not None:
        out.append(f"- model check: one submitted Sales Order per POST, 1 client thread, {REAL_POST_ONE[0]:g}–"
                   f"{REAL_POST_ONE[1]:g}/s on the real server (±10 %): {one.orders_per_s:.1f}/s "
                   f"{_within(one.orders_per_s, (REAL_POST_ONE[0] * 0.9, REAL_POST_ONE[1] * 1.1))}")
    many = bench.find(INSERT_MANY, 1)
    if many is not None:
        out.append(f"- model check: insert_many, 1 client thread, {REAL_INSERT_MANY[0]:g}–{REAL_INSERT_MANY[1]:g}/s "
                   f"on the real server (±10 %): {many.orders_per_s:.1f}/s "
                   f"{_within(many.orders_per_s, (REAL_INSERT_MANY[0] * 0.9, REAL_INSERT_MANY[1] * 1.1))}")
    new = bench.find(NEW_BUYER, DEFAULT_WORKERS)
    if new is not None:
        out.append(f"- model check: new-buyer orders, default {DEFAULT_WORKERS} workers, against the real run's "
                   f"2.1 orders/s: {new.orders_per_s:.1f}/s (see the notes)")
    for path, target in ((NEW_BUYER, TARGET_NEW_BUYER), (EXISTING_BUYER, TARGET_EXISTING_BUYER)):
        p = bench.find(path, DEFAULT_WORKERS)
        if p is None:
            continue
        out.append(f"- {path} ≥ {target:g}/s with the default {DEFAULT_WORKERS} workers: {p.orders_per_s:.1f}/s "
                   f"{'✓' if p.orders_per_s >= target else '✗'}")
        out.append(f"- {path} ≥ {100 * TARGET_SHARE:.0f} % of its own best path: {100 * bench.own_share(p):.0f} % "
                   f"{'✓' if bench.own_share(p) >= TARGET_SHARE else '✗'} (of the single best path: "
                   f"{100 * bench.share(p):.0f} % {'✓' if bench.share(p) >= TARGET_SHARE else '✗'})")
    return out


def targets(costs: list[CostResult], writes: ErpBench | None, rss: list[RssResult],
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
    if writes is not None:
        out.extend(write_targets(writes))
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
    p.add_argument("--quick", action="store_true", help="1k/10k orders, small samples, part 2 at the default workers only (about 2 minutes)")
    p.add_argument("--sizes", default=None, help="orders per backfill, comma-separated (default 1000,10000,100000)")
    p.add_argument("--days", type=int, default=730, help="backfill span in days (default 730 = two years)")
    p.add_argument("--chunk-days", type=int, default=7, help="backfill --chunk (default 7, the CLI default)")
    p.add_argument("--report-seconds", type=float, default=180.0,
                   help="simulated report processing time (default 180 s)")
    p.add_argument("--erp-speed", type=float, default=1.0,
                   help="the ERPNext simulator's costs × SPEED (default 1.0: a real server's time)")
    p.add_argument("--erp-workers", default=None,
                   help=f"engine [erpnext] workers to time, comma-separated (default 1,2,4,8; quick {DEFAULT_WORKERS})")
    p.add_argument("--erp-orders", type=int, default=None,
                   help="timed orders per engine path and worker count (default 60; quick 24)")
    p.add_argument("--erp-ready", type=int, default=None,
                   help="ready Sales Orders per server path (default 100; quick 50)")
    p.add_argument("--rss-sizes", default=None, help="orders for the RSS part (default 10000,100000; quick 3000)")
    p.add_argument("--parts", default="1,2,3,4", help="which parts to run (default 1,2,3,4)")
    p.add_argument("--settle-sizes", default=None, help="orders for part 4 (default 1000,5000; quick 1000)")
    p.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    p.add_argument("--markdown", default=None, help="also write the table (Markdown) to this file")
    opts = p.parse_args(argv)
    sizes = [int(s) for s in (opts.sizes or ("1000,10000" if opts.quick else "1000,10000,100000")).split(",")]
    rss_sizes = [int(s) for s in (opts.rss_sizes or ("3000" if opts.quick else "10000,100000")).split(",") if s]
    erp_workers = [int(x) for x in (opts.erp_workers or (str(DEFAULT_WORKERS) if opts.quick else "1,2,4,8")).split(",")]
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
    writes: ErpBench | None = None
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
    info = machine()
    if 2 in parts:
        info["load"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        writes = run_erp_bench(erp_workers, orders=opts.erp_orders or (24 if opts.quick else 60),
                               ready=opts.erp_ready or (50 if opts.quick else 100), speed=opts.erp_speed,
                               warmup=40 if opts.quick else 60, progress=progress)
    settles: list[SettlementBenchResult] = []
    if 4 in parts:
        for n in [int(x) for x in (opts.settle_sizes or ("1000" if opts.quick else "1000,5000")).split(",") if x]:
            settles.append(run_settlements(n))
            progress(f"part 4: {n:,} orders: {settles[-1].calls} SP-API calls for {settles[-1].settlements} settlements")
    text = render(costs, writes, rss, opts, info, time.monotonic() - began, settles)
    print(text)
    if opts.markdown:
        with open(opts.markdown, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    if opts.json:
        data: dict[str, Any] = {"machine": info, "options": vars(opts),
                                "amazon": [dict(asdict(c), calls_per_1000=c.calls_per_1000) for c in costs],
                                "writes": None if writes is None else {
                                    "speed": writes.speed,
                                    "paths": [dict(asdict(w), orders_per_s=w.orders_per_s, requests=w.requests,
                                                   requests_per_order=w.requests_per_order, ceiling=w.ceiling,
                                                   share_of_best_path=writes.share(w),
                                                   share_of_own_best_path=writes.own_share(w))
                                              for w in writes.paths]},
                                "rss": [asdict(r) for r in rss],
                                "settlements": [dict(asdict(x), calls_per_settlement=x.calls_per_settlement,
                                                     calls_per_1000_orders=x.calls_per_1000_orders) for x in settles]}
        with open(opts.json, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
