"""scanproof's harness: cluster, client, history, nemesis, checkers, runner and CLI.

The public surface is re-exported here and kept small; everything else lives in
private modules.

>>> import harness
>>> harness.__version__  # doctest: +SKIP
'0.1.0'
"""

from harness._version import __version__

__all__ = ["__version__"]
