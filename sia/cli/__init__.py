"""The `sia` command line."""

from sia.cli.main import app

__all__ = ["app"]
