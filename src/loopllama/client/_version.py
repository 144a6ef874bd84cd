"""The installed package's version, read from its metadata (no import of anything heavy)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loopllama")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
