"""The installed distribution's version, read from package metadata (one source of truth)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("scanproof")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
