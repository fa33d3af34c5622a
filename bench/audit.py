"""`amz2erp audit` cost: SP-API calls and ERPNext requests to audit a year of orders (issue 16).

    python -m bench.audit                 # 10k and 100k orders
    python -m bench.audit --orders 10000  # one size

A year of generated orders (one marketplace) sits in the SP-API simulator, with Amazon's documented rate
limits and reports processed in 180 s (as in bench.run) on a simulated clock; the ERPNext simulator is seeded
directly with one submitted Sales Order per importable order ("as a sync left it") plus a little damage (one
order missing, one duplicate, one cancelled on Amazon but live), so the audit also does the per-document reads
a difference needs. Then the real CLI runs `amz2erp audit --from … --to …` in-process and the simulators count what it
asked: SP-API calls by operation (LWA token and the S3 document downloads apart) and ERPNext requests by
method and doctype.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from amz2erp import mapping
from amz2erp.clock import SimulatedClock, set_default_clock
from amz2erp_sim import datagen
from amz2erp_sim.spapi import AUTH_OPERATION, DOCUMENT_OPERATION
from bench.env import run_cli, simulators

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
DAYS = 365
US = "ATVPDKIKX0DER"
SEEDED = Counter({"missing": 1, "duplicate": 1, "cancelled on Amazon, live in ERPNext": 1})


@dataclass
class AuditBenchResult:
    orders: int  # orders placed on Amazon in the year
    sales_orders: int  # Sales Orders seeded into ERPNext
    findings: dict[str, int]  # what the audit found (the seeded damage, and totals that differ, if any)
    exit_code: int
    spapi_calls: int
    spapi_by_operation: dict[str, int] = field(default_factory=dict)
    downloads: int = 0  # report documents fetched from S3 (not SP-API calls)
    erp_requests: int = 0
    erp_by_kind: dict[str, int] = field(default_factory=dict)
    simulated_minutes: float = 0.0  # Amazon's side: report processing and rate limits, simulated clock
    wall_seconds: float = 0.0


def _run_json(config: Path, *args: str) -> tuple[int, str, str]:
    """One command with --json in this process: (exit code, stdout, stderr)."""
    from amz2erp.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["--config", str(config), "--json", *args])
    return code, out.getvalue(), err.getvalue()


def _importable(o: datagen.SimOrder) -> bool:
    return o.status not in ("Canceled", "Pending", "PendingAvailability", "Unfulfillable") \
        and any(i.quantity_ordered > 0 for i in o.items)


def run_audit_bench(orders: int, *, seed: int = 16) -> AuditBenchResult:
    clock = SimulatedClock(NOW)
    listings = datagen.generate_listings(seed, 60, ("US",))
    generated = datagen.generate_orders(seed, orders, listings, NOW - timedelta(days=DAYS),
                                        NOW - timedelta(minutes=10))
    # taxes Amazon collects are booked, so a Sales Order's grand total is Amazon's OrderTotal
    extra = '[orders]\nmarketplace_facilitator_tax = "book"\n'
    amazon = {"strict": False, "report_processing_seconds": 180.0}
    with simulators(clock, listings, generated, extra_config=extra, spapi_kwargs=amazon) as (spapi, erp, config):
        set_default_clock(clock)
        try:
            assert run_cli(config, "-q", "setup")[0] == 0
            importable = [o for o in generated if _importable(o)]
            middle = len(importable) // 2  # the damage lies well inside the audited year
            cancel_me = next(o for o in reversed(importable) if o.status == "Unshipped")
            seeded = 0
            for n, o in enumerate(importable):
                if n == middle:
                    continue  # one order missing
                copies = 2 if n == middle + 1 else 1  # one duplicate, as another connector leaves it
                for c in range(copies):
                    erp.insert_doc("Sales Order", {
                        "name": f"SO-{n:06d}-{c}", "amazon_order_id": o.amazon_order_id, "docstatus": 1,
                        "customer": "Amazon Buyer", "company": "Amz Test Co", "currency": o.currency,
                        "grand_total": float(o.order_total), "amazon_marketplace_id": US,
                        "transaction_date": mapping.marketplace_date(o.purchase_date, US).isoformat()})
                    seeded += 1
            spapi.cancel_order(cancel_me.amazon_order_id)
            del generated, importable
            calls_before = Counter(spapi.operation_counts())
            log_before = len(erp.request_log)
            clock_before = clock.now()
            started = time.perf_counter()
            start = (NOW - timedelta(days=DAYS - 1)).date().isoformat()
            code, out, err = _run_json(config, "audit", "--from", start, "--to", NOW.date().isoformat())
            wall = time.perf_counter() - started
            if code not in (0, 1):
                raise RuntimeError(f"audit exited {code}: {err[-800:]}")
            calls = Counter(spapi.operation_counts()) - calls_before
            calls.pop(AUTH_OPERATION, None)
            downloads = calls.pop(DOCUMENT_OPERATION, 0)  # S3, not an SP-API operation (as in part 4)
            requests = Counter(f"{r.method} {r.doctype}" for r in erp.request_log[log_before:])
        finally:
            set_default_clock(None)
    kinds = Counter(f["kind"] for f in json.loads(out)["findings"])
    if kinds != SEEDED:  # the figures are only worth something if the audit found exactly the damage
        raise RuntimeError(f"audit found {dict(kinds)}, the seeded damage is {dict(SEEDED)}")
    return AuditBenchResult(orders, seeded, dict(kinds), code, sum(calls.values()), dict(sorted(calls.items())),
                            downloads, sum(requests.values()), dict(sorted(requests.items())),
                            (clock.now() - clock_before).total_seconds() / 60.0, wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, action="append", help="orders in the year (repeatable)")
    args = parser.parse_args(argv)
    for n in args.orders or [10_000, 100_000]:
        r = run_audit_bench(n)
        print(f"{r.orders:>7} orders/year, {r.sales_orders} Sales Orders: exit {r.exit_code}; "
              f"findings {r.findings}; SP-API {r.spapi_calls} calls {r.spapi_by_operation} + {r.downloads} "
              f"document downloads; ERPNext {r.erp_requests} requests "
              f"{r.erp_by_kind}; Amazon time {r.simulated_minutes:.0f} min simulated; wall {r.wall_seconds:.1f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
