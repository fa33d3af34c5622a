"""Benchmarks (not tests): ``python -m bench.run`` prints the table in bench/RESULTS.md."""
