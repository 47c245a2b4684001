"""Benchmarks for Trailhouse (issue 7): a seeded dataset, ingest, storage and lookup measurements
against a real ``trailhouse serve``, with DuckDB over the same NDJSON as the baseline.

Run ``python -m bench.run --help``; ``make bench`` (1M events) and ``make bench-large`` (10M) wrap
it. Results land in ``bench/results/*.json``; docs/benchmarks.md explains and summarises them.
"""
