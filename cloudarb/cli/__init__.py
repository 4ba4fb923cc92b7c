"""The ``cloudarb`` command line."""

from cloudarb.cli.main import app

__all__ = ["app"]
