"""ASGI apps the benchmarks run as worker processes."""
