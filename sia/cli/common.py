"""Shared pieces of the CLI: building the pipeline from configuration, naming and opening
the alert store, reaching Kafka, Redis and PostgreSQL, console output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from sia.config import ConfigError
from sia.detectors.base import Detector
from sia.policy import Alert, Policy
from sia.service import pipeline

if TYPE_CHECKING:
    from sia.alerts.store import AlertStore
    from sia.settings import Settings

console = Console()
errors = Console(stderr=True)

DbOpt = Annotated[str | None, typer.Option(
    "--db", show_default=False, metavar="FILE|URL",
    help="The alert store: a SQLite file or a SQLAlchemy URL (postgresql+psycopg://...). "
         "Default: SIA_DATABASE_URL, else sia.db.")]
NOT_FOUND_HINT = "use --db or SIA_DATABASE_URL"

# the panels of `sia --help`, in the order a newcomer needs them
START = "Start here"
DATA = "Data"
DELIVERY = "Delivery"
THRESHOLDS = "Thresholds"
SERVICE = "Service"
SCALE_OUT = "Scale-out (Kafka)"
MEASURE = "Measure"
PANELS = (START, DATA, DELIVERY, THRESHOLDS, SERVICE, SCALE_OUT, MEASURE)


class InPanels(TyperGroup):
    """The root command: commands listed panel by panel, in PANELS' order (typer would
    list every command before every group of commands, whatever their panel)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)

        def rank(name: str) -> int:
            panel = getattr(self.commands[name], "rich_help_panel", None)
            return PANELS.index(panel) if panel in PANELS else len(PANELS)

        return sorted(names, key=rank)  # stable: registration order within a panel


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error and exit with `code`."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def build(config: Path | None, policy_file: Path | None,
          only: list[str] | None = None) -> tuple[list[Detector[Any]], Policy]:
    """Detectors and policy from the configuration files; config errors exit cleanly."""
    try:
        return pipeline.build(config, policy_file, only)
    except ConfigError as exc:
        fail(str(exc))


def settings() -> Settings:
    """The settings; one that cannot be used ends the command with a one-line error
    naming it (never its value)."""
    from pydantic import ValidationError

    from sia.settings import SecretSettingError, get_settings

    try:
        return get_settings()
    except SecretSettingError as exc:
        fail(str(exc))
    except ValidationError as exc:
        wrong = "; ".join(f"SIA_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                          for e in exc.errors(include_input=False))
        fail(f"unusable setting: {wrong}")


def db_url(db: str | None) -> str:
    """A SQLAlchemy URL from --db (a URL or a plain file path), else SIA_DATABASE_URL."""
    if db is None:
        db = settings().database_url
    return db if "://" in db else f"sqlite:///{Path(db).resolve()}"


def open_store(db: str | None, *, create: bool = True) -> AlertStore:
    """The alert store --db names. A reader passes `create=False`: a store that is not
    there is an error saying where it looked, and no empty SQLite file is left behind."""
    from sia.alerts.store import AlertStore, NoStore, where

    url = db_url(db)
    with reaching("the alert store", where(url)):
        try:
            return AlertStore(url, create=create)
        except NoStore as exc:
            fail(f"{exc} ({NOT_FOUND_HINT})")


def masked(url: str) -> str:
    """A URL with its password (if any) replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unreadable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def reaching_store(url: str) -> Any:
    """`reaching` the alert store at `url` (named with its password masked)."""
    from sia.alerts.store import where

    return reaching("the alert store", where(url))


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What a client raises when its server is down, refuses it, or does not answer."""
    import redis
    import sqlalchemy.exc
    from aiokafka.errors import KafkaError

    return (OSError, KafkaError, redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError, redis.exceptions.AuthenticationError,
            sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def reason(exc: BaseException) -> str:
    """An exception as one line (SQLAlchemy's add their background link; drop it)."""
    inner = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return lines[0] if lines else type(inner).__name__


def unreachable(service: str, where: str, exc: BaseException) -> NoReturn:
    """The one error every command gives for a service it cannot reach (exit code 2)."""
    fail(f"cannot reach {service} at {where}: {reason(exc)}")


@contextmanager
def reaching(service: str, where: str) -> Iterator[None]:
    """Connection failures inside become `cannot reach <service> at <where>: <why>`;
    meanwhile the clients' own warnings about failed connections are not printed too."""
    import logging

    quiet = [logging.getLogger(name) for name in ("aiokafka", "kafka", "redis")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    except typer.Exit:
        raise
    except _connection_errors() as exc:
        unreachable(service, where, exc)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


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
