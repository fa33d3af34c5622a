"""``python -m bench.cli_unthrottled …`` = ``python -m amz2erp …`` with the client-side SP-API rate limits
lifted, for the memory benchmark: it runs on the real clock against simulators without rate limits, where
waiting a minute per createReport (or five seconds before the first poll of a report the simulator has
already finished) would only add idle time. Nothing else differs from the CLI.

With ``BENCH_RSS_FILE`` set, the process writes its own peak RSS (``VmHWM`` of /proc/self/status, in KiB) there
at exit: unlike the parent's ``ru_maxrss`` of a child, it does not include the parent's memory that a
(v)fork-then-exec child is charged with on Linux."""

import atexit
import os

from amz2erp.amazon import ratelimit

ratelimit.DEFAULT_LIMITS.clear()  # RateLimiter copies this at construction: no buckets, no waits


def _no_report_wait() -> None:
    """The simulator finishes reports at once here: poll them at once too (no 5-second first wait)."""
    from amz2erp.amazon.client import AmazonClient

    defaults = AmazonClient.__init__.__kwdefaults__
    if defaults is not None:
        defaults["report_poll_initial"] = 0.05


_no_report_wait()


def _report_peak() -> None:
    path = os.environ.get("BENCH_RSS_FILE")
    if not path:
        return
    with open("/proc/self/status", encoding="ascii") as f:
        peak = next((line.split()[1] for line in f if line.startswith("VmHWM:")), "0")
    with open(path, "w", encoding="ascii") as out:
        out.write(peak)


atexit.register(_report_peak)

from amz2erp.cli import main  # noqa: E402

main()
