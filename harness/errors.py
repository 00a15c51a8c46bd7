"""The exception tree of scanproof, split by whose fault it is.

::

    ScanproofError              root: catch this to catch everything we raise
    ├── UsageError              bad input from the user (a flag, a file, a name):
    │                           one clear line naming the value and the fix, exit 2
    └── InfrastructureError     the harness could not do its job (a process would not
                                start, Redis vanished): the verdict is ``unknown``, exit 3

Misbehaviour of the service under test is never an exception: it is a verdict.

>>> from harness.errors import UsageError
>>> str(UsageError("--workers 0: must be at least 1; pass --workers 4"))
'--workers 0: must be at least 1; pass --workers 4'
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130


class ScanproofError(Exception):
    """Root of every exception scanproof raises on purpose."""

    exit_code: int = EXIT_UNKNOWN


class UsageError(ScanproofError):
    """Bad input: the message names the value and says how to fix it (exit 2)."""

    exit_code = EXIT_USAGE


class InfrastructureError(ScanproofError):
    """The harness could not run or observe the system; the verdict is unknown (exit 3)."""

    exit_code = EXIT_UNKNOWN
