"""Workloads: the named scenario catalogue, locust files and hypothesis state machines.

Anything that imports ``locust`` lives under ``scenarios/locust/`` and runs in
its own process: importing locust monkey-patches the interpreter with gevent.
"""
