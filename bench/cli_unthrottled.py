"""``python -m bench.cli_unthrottled …`` = ``python -m amz2erp …`` with the client-side SP-API rate limits
lifted, for the memory benchmark: it runs on the real clock against simulators without rate limits, where
waiting a minute per createReport would only add idle time. Nothing else differs from the CLI."""

from amz2erp import ratelimit

ratelimit.DEFAULT_LIMITS.clear()  # RateLimiter copies this at construction: no buckets, no waits

from amz2erp.cli import main  # noqa: E402

main()
