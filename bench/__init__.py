"""Benchmarks: open-loop saga load, CDC hop latency, read latency. `make bench` writes docs/benchmarks/."""
