"""`sia`: replay events, run the demo, import data, evaluate and benchmark detectors."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from sia.alerts.store import AlertStore
from sia.cli.common import build, console, db_url, errors, fail
from sia.cli.delivery import register_delivery
from sia.cli.imports import import_app
from sia.cli.kafka import register_kafka
from sia.cli.measure import register_measure
from sia.cli.serve import register_serve
from sia.detectors.base import registered
from sia.engine.engine import FILE_CHUNK
from sia.engine.snapshot import SnapshotError
from sia.events.models import event_json_schema
from sia.events.reader import TRUNCATED, RejectedRecord, RejectSink, read_events, read_lines
from sia.policy import Alert

# no local variables in tracebacks, whatever typer's version: they can hold secrets
app = typer.Typer(help="SIA: sales-intelligence alerting over CRM event streams.",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False)
app.add_typer(import_app, name="import")
register_measure(app)
register_serve(app)
register_delivery(app)
register_kafka(app)

ConfigOpt = Annotated[Path | None, typer.Option(help="detectors.yaml (default: config/)")]
PolicyOpt = Annotated[Path | None, typer.Option(help="policy.yaml (default: config/)")]


@app.command()
def schema() -> None:
    """Print the JSON Schema of one event."""
    typer.echo(json.dumps(event_json_schema(), indent=2))


@app.command()
def detectors() -> None:
    """List the detectors and their thresholds: default, unit, allowed range, what each
    changes in the alerts, and whether it can only be set for everyone (global)."""
    import dataclasses

    from sia.thresholds.effective import describe_field

    for name, cls in registered().items():
        console.print(f"[bold]{name}[/]: {(cls.__doc__ or '').strip()}")
        for f in dataclasses.fields(cls.params_type):
            about = describe_field(f)
            notes = [about["unit"], about["allowed"],
                     "global" if f.name in cls.global_params else ""]
            line = f"  {f.name} = {f.default!r}"
            if any(notes):
                line += f"  ({'; '.join(n for n in notes if n)})"
            console.print(line, markup=False, highlight=False)
            if about["description"]:
                console.print(f"      {about['description']}", markup=False, highlight=False)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(
        help="JSON Lines events (.jsonl or .jsonl.gz); - for stdin")],
    db: Annotated[str, typer.Option(
        help="alert store: a SQLite path or a SQLAlchemy URL")] = "sia.db",
    rejects: Annotated[Path, typer.Option(
        help="where bad records are kept")] = Path("sia-rejects.jsonl"),
    strict: Annotated[bool, typer.Option(help="fail on the first bad record")] = False,
    state: Annotated[Path | None, typer.Option(
        help="snapshot: loaded if it exists, saved after")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    config: ConfigOpt = None,
    policy_file: PolicyOpt = None,
) -> None:
    """Replay an events file through the detectors; alerts go to the store."""
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
    store = AlertStore(db_url(db))
    try:
        summary = replay_events(records, detectors=detectors_, policy=policy, store=store,
                                sink=sink, state=state, source="<stdin>" if str(file) == "-"
                                else str(file),
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
    last = sink.last
    truncated = last is not None and last.reason.startswith(TRUNCATED)
    if last is not None and truncated and last not in sink.first:
        errors.print(f"rejected {last.describe()}", highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        console.print(f"{summary.events:,} events ({summary.duplicates:,} duplicates ignored, "
                      f"{summary.rejects:,} rejected); alerts: {dict(summary.alerts)}; "
                      f"{summary.stored:,} new in {db}")
    if truncated:  # what came before the cut is stored; the rest of the file is not read
        raise typer.Exit(1)


@app.command()
def demo(
    db: Annotated[str, typer.Option(help="alert store (SQLite path or URL)")] = "sia-demo.db",
    top: Annotated[int, typer.Option(help="alerts shown per detector")] = 4,
    config: ConfigOpt = None,
    policy_file: PolicyOpt = None,
) -> None:
    """Replay a bundled sample of real transactions and show the alerts."""
    from sia.cli.demo import run_demo

    run_demo(db=db_url(db), top=top, config=config, policy_file=policy_file)


@app.command("alerts")
def list_alerts(
    db: Annotated[str, typer.Option(help="alert store (SQLite path or URL)")] = "sia.db",
    detector: Annotated[str | None, typer.Option(help="only this detector")] = None,
    customer: Annotated[str | None, typer.Option(help="only this customer")] = None,
    rep: Annotated[str | None, typer.Option(help="only this rep's alerts")] = None,
    team: Annotated[str | None, typer.Option(help="only this team's alerts")] = None,
    severity: Annotated[str | None, typer.Option(help="low, medium or high")] = None,
    since: Annotated[datetime | None, typer.Option(
        help="only alerts at or after this time (e.g. 2011-11-01)",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show stored alerts, newest first (the same query as GET /v1/alerts)."""
    from sia.service.alerts import AlertFilter
    from sia.service.alerts import list_alerts as query

    if detector is not None and detector not in registered():
        fail(f"unknown detector {detector!r}; known: {', '.join(registered())}")
    if severity is not None and severity not in ("low", "medium", "high"):
        fail(f"--severity {severity!r}: use low, medium or high")
    store = AlertStore(db_url(db))
    where = AlertFilter(detector=detector, customer=customer, rep_id=rep, team=team,
                        severity=severity,
                        since=since.replace(tzinfo=since.tzinfo or UTC) if since else None)
    rows = query(store, where, limit=limit).items
    store.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    by_detector: dict[str, int] = defaultdict(int)
    for r in rows:
        by_detector[r["detector"]] += 1
        console.print(f"[bold]{r['occurred_at'][:10]} {r['detector']}/{r['kind']} "
                      f"{r['severity']}[/] {r['title']}\n  {r['explanation']}\n  "
                      f"[green]do:[/] {r['action']}")
    console.print(f"{len(rows)} alerts shown ({dict(by_detector)})")


__all__ = ["Alert", "app"]
