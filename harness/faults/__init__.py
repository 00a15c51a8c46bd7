"""Fault injection: the nemesis, beside the data flow.

:mod:`.nemesis` applies planned faults (keys, Redis, workers), verifies that
each landed, records it in the history with the scans and tenants whose data
it destroyed, and heals at the end. :mod:`.attribution` names those scans and
tenants from the contract's key patterns (pure: no Redis, no processes).
"""
