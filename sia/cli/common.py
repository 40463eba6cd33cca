"""Shared pieces of the CLI: building the pipeline from configuration, console output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from sia.config import ConfigError
from sia.detectors.base import Detector
from sia.policy import Alert, Policy
from sia.service import pipeline

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error and exit with `code`."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def build(config: Path | None, policy_file: Path | None,
          only: list[str] | None = None) -> tuple[list[Detector[Any]], Policy]:
    """Detectors and policy from the configuration files; config errors exit cleanly."""
    try:
        return pipeline.build(config, policy_file, only)
    except ConfigError as exc:
        fail(str(exc))


def db_url(db: str) -> str:
    """A SQLAlchemy URL from a URL or a plain file path."""
    return db if "://" in db else f"sqlite:///{Path(db).resolve()}"


def show_alerts(alerts: list[Alert], title: str) -> None:
    """A table on wide terminals; on narrow ones (and in logs), one block per alert."""
    if console.width >= 140:
        console.print(alerts_table(alerts, title))
        return
    console.rule(f"[bold]{title}", align="left")
    colours = {"high": "bold red", "medium": "yellow", "low": "cyan"}
    for alert in alerts:
        f = alert.finding
        sev = f.severity.value
        console.print(f"[{colours[sev]}]{sev.upper()}[/] {f.occurred_at.date()} "
                      f"{f.detector}/{f.kind} [bold]{f.title}[/]", highlight=False)
        console.print(f"  [dim]why[/] {f.explanation}", highlight=False)
        console.print(f"  [green]do[/]  {f.action}\n", highlight=False)


def alerts_table(alerts: list[Alert], title: str) -> Table:
    """A readable table of alerts for the terminal."""
    table = Table(title=title, show_lines=True, expand=True, title_justify="left")
    table.add_column("when", no_wrap=True, ratio=1)
    table.add_column("detector", ratio=1)
    table.add_column("sev", ratio=1)
    table.add_column("alert", ratio=4)
    table.add_column("why", ratio=7)
    table.add_column("do", ratio=5)
    colours = {"high": "bold red", "medium": "yellow", "low": "cyan"}
    for alert in alerts:
        f = alert.finding
        sev = f.severity.value
        table.add_row(f.occurred_at.date().isoformat(), f"{f.detector}\n{f.kind}",
                      f"[{colours[sev]}]{sev}[/]", f.title, f.explanation, f.action)
    return table


def stdout_is_terminal() -> bool:
    """Progress bars only on a terminal."""
    return sys.stdout.isatty()
