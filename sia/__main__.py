"""`python -m sia`: the CLI."""

from sia.cli import app

app()
