"""Throughput and scale benchmarks; run them all with ``make bench``."""
