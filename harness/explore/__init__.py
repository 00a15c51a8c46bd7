"""Exploring schedules and replaying them.

:mod:`.steps` (the step vocabulary and replay files), :mod:`.executor` (runs
one example of steps on a live cluster from clean state), :mod:`.replay`
(re-run a replay file K times). The hypothesis state machine that draws
steps lives in ``scenarios/stateful``.
"""
