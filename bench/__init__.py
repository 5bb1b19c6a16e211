"""Benchmark suites (`flywheel bench`) and experiments: measurements that may import every package."""
