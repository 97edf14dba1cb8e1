"""Benchmarks of the whole pipeline against its physical limits (see docs/performance.md)."""
