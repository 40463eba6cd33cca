"""`sia`: the command line. Each command lives in its module; this one groups them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sia.cli.alerts import register_alerts
from sia.cli.common import (
    DATA,
    START,
    DbOpt,
    InPanels,
    build,
    console,
    errors,
    fail,
    open_store,
)
from sia.cli.delivery import register_delivery
from sia.cli.imports import import_app
from sia.cli.kafka import register_kafka
from sia.cli.measure import register_measure
from sia.cli.serve import register_serve
from sia.engine.engine import FILE_CHUNK
from sia.engine.snapshot import SnapshotError
from sia.events.models import event_json_schema
from sia.events.reader import TRUNCATED, RejectedRecord, RejectSink, read_events, read_lines
from sia.policy import Alert

# no local variables in tracebacks, whatever typer's version: they can hold secrets
app = typer.Typer(
    help="SIA: sales-intelligence alerting over CRM event streams.\n\n"
         "New here? `sia demo` shows alerts on a bundled sample; then `sia import` your "
         "data, `sia replay` it and `sia alerts` lists what was found. Every command has "
         "--help. The alert store is --db, else SIA_DATABASE_URL, else ./sia.db.",
    cls=InPanels, no_args_is_help=True, add_completion=False,
    pretty_exceptions_show_locals=False, rich_markup_mode="rich")


def version() -> str:
    """The installed distribution's version (else the package's own)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("sia")
    except PackageNotFoundError:
        import sia

        return getattr(sia, "__version__", "unknown")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"sia {version()}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print the version of SIA and exit.")] = False,
) -> None:
    """SIA: sales-intelligence alerting over CRM event streams."""


ConfigOpt = Annotated[Path | None, typer.Option(
    help="detectors.yaml (default: the one in config/ or SIA_CONFIG_DIR).")]
PolicyOpt = Annotated[Path | None, typer.Option(
    help="policy.yaml (default: the one in config/ or SIA_CONFIG_DIR).")]


@app.command(rich_help_panel=START)
def demo(
    db: Annotated[str, typer.Option(
        help="The demo's own alert store (a SQLite file or a URL); never SIA_DATABASE_URL, "
             "so a demo cannot mix its alerts into a real store.")] = "sia-demo.db",
    top: Annotated[int, typer.Option(help="How many alerts to show per detector.")] = 4,
    config: ConfigOpt = None,
    policy_file: PolicyOpt = None,
) -> None:
    """Replay a bundled sample of real transactions and show the alerts.

    Start here: no data or service needed. The alerts go to --db (sia-demo.db) and the
    last week is delivered to sia-demo-deliveries.txt.
    """
    from sia.cli.common import db_url
    from sia.cli.demo import run_demo

    run_demo(db=db_url(db), top=top, config=config, policy_file=policy_file)


@app.command(rich_help_panel=START)
def replay(
    file: Annotated[Path, typer.Argument(
        help="JSON Lines events (.jsonl or .jsonl.gz), as `sia import` writes them; - for "
             "stdin.")],
    db: DbOpt = None,
    rejects: Annotated[Path, typer.Option(
        help="Where bad records are kept (JSON Lines, with the reason).")]
    = Path("sia-rejects.jsonl"),
    strict: Annotated[bool, typer.Option(help="Stop at the first bad record.")] = False,
    state: Annotated[Path | None, typer.Option(
        help="Engine snapshot: loaded if it exists, saved after, so the next replay "
             "continues where this one stopped.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
    = False,
    sort: Annotated[bool, typer.Option(
        help="Learn the events in time order whatever their order in the file (an export "
             "sorted by customer, say); the file is held in memory.")] = False,
    config: ConfigOpt = None,
    policy_file: PolicyOpt = None,
) -> None:
    """Replay an events file through the detectors; the alerts go to the store.

    Bad records are kept in --rejects and do not stop the run (unless --strict). Events
    are learned in the file's order: one dated more than a week behind an event before
    it is refused as late (kept with the rejects), so a file not in time order needs
    --sort.
    """
    from sia.service.replay import replay as replay_events
    from sia.service.state import Locked

    detectors_, policy = build(config, policy_file)
    if str(file) == "-":
        import sys

        records = read_lines(sys.stdin, source="<stdin>")
    elif not file.exists():
        fail(f"{file}: no such file")
    else:
        records = read_events(file)
    sink = RejectSink(rejects, strict=strict)
    store = open_store(db)
    try:
        summary = replay_events(records, detectors=detectors_, policy=policy, store=store,
                                sink=sink, state=state, source="<stdin>" if str(file) == "-"
                                else str(file), sort=sort,
                                chunk=1 if str(file) == "-" else FILE_CHUNK)  # stdin may be live
    except RejectedRecord as exc:
        fail(f"rejected (--strict): {exc}", code=1)
    except (SnapshotError, Locked) as exc:
        fail(f"{state}: {exc}" if isinstance(exc, SnapshotError) else str(exc))
    finally:
        sink.close()
        store.close()
    for reject in sink.first:
        errors.print(f"rejected {reject.describe()}", highlight=False, soft_wrap=True)
    if sink.count:
        errors.print(f"{sink.count} bad records kept in {rejects}", highlight=False)
    if summary.late and not sort:
        errors.print(f"{summary.late:,} events were dated more than a week behind an event "
                     f"before them: {file} is not in time order. `sia replay --sort` learns "
                     "it in time order.", highlight=False)
    last = sink.last
    truncated = last is not None and last.reason.startswith(TRUNCATED)
    if last is not None and truncated and last not in sink.first:
        errors.print(f"rejected {last.describe()}", highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        console.print(f"{summary.events:,} events ({summary.duplicates:,} duplicates ignored, "
                      f"{summary.rejects:,} rejected); alerts: {dict(summary.alerts)}; "
                      f"{summary.stored:,} new in {store.location()}")
    if truncated:  # what came before the cut is stored; the rest of the file is not read
        raise typer.Exit(1)


register_alerts(app)


@app.command(rich_help_panel=START)
def schema() -> None:
    """Print the JSON Schema of one event (what `sia replay` and POST /v1/events take)."""
    typer.echo(json.dumps(event_json_schema(), indent=2))


app.add_typer(import_app, name="import", rich_help_panel=DATA)
register_delivery(app)
register_serve(app)
register_kafka(app)
register_measure(app)

__all__ = ["Alert", "app"]
