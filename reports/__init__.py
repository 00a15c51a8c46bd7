"""Turns a run directory plus its verdict into documents a reviewer reads in a minute.

Reports display verdicts; they never decide correctness: the verdict shown is
the one recorded in ``verdict.json``.

>>> from pathlib import Path
>>> from reports import render_run
>>> report = render_run(Path("runs/mixed-seed7"))  # doctest: +SKIP
>>> report.verdict, report.markdown.name, [p.name for p in report.plots]  # doctest: +SKIP
('fail', 'report.md', ['plot_status.png', 'plot_rates.png', 'plot_latency.png'])

``render_run`` writes ``report.md``, ``report.html``, ``junit.xml`` and three
PNG plots into the run directory (and appends ``report.md`` to the file named
by ``GITHUB_STEP_SUMMARY`` when it is set). ``class_table`` gives the class
table of a :class:`harness.judging.verdict.Verdict` as a DataFrame; ``first_witness_words``
the first witness of each class in words. See docs/reports.md.
"""

from reports.evidence import first_witness_words
from reports.render import RenderedReport, render_run
from reports.tables import class_table

__all__ = ["RenderedReport", "class_table", "first_witness_words", "render_run"]
