"""Evidence across runs: statistics, tallies, baselines, claims and matrices.

:mod:`.stats` (Wilson intervals, two-proportion tests), :mod:`.across_runs`
(verdicts of many runs summed per class), :mod:`.baseline` (is a candidate
worse than a baseline), :mod:`.claims` (promises decided from tallies),
:mod:`.matrix` (variants and fix ablations). Data and planning only: nothing
here starts a cluster.
"""
