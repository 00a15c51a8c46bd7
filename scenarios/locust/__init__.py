"""Locust load tests that record into scanproof's history (see docs/drivers.md).

Only :mod:`scenarios.locust._workload` is importable without locust; the other
modules import locust, which monkey-patches the interpreter with gevent, so they
run in locust's own processes.
"""
