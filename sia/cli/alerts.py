"""`sia alerts` and `sia detectors`: what is stored, and what the detectors are set to.

Both call what the HTTP API calls: `sia alerts` the query behind GET /v1/alerts
(sia.service.alerts.list_alerts), `sia detectors` the effective thresholds behind
GET /v1/thresholds (sia.thresholds.effective).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sia.cli.common import (
    START,
    DbOpt,
    build,
    console,
    errors,
    fail,
    open_store,
    stdout_is_terminal,
)
from sia.detectors.base import registered

SEVERITIES = ("low", "medium", "high")
STATUSES = ("pending", "routed", "history")
RELATIVE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: a date (2011-11-01), an ISO timestamp (2011-11-01T09:30, with or without
    a zone; UTC when none) or a time ago (30m, 12h, 7d, 2w), as an aware datetime."""
    match = RELATIVE.fullmatch(text)
    if match:
        ago = timedelta(**{UNITS[match.group(2)]: float(match.group(1))})
        return (now or datetime.now(UTC)) - ago
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use a date (2011-11-01), a timestamp "
                                 "(2011-11-01T09:30:00) or a time ago (7d, 12h, 2w)") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def known_detector(name: str | None) -> str | None:
    """A detector name, refused (exit 2) with the known ones when it is not one."""
    if name is not None and name not in registered():
        fail(f"unknown detector {name!r}; known: {', '.join(registered())}")
    return name


def alerts_command(
    db: DbOpt = None,
    detector: Annotated[str | None, typer.Option(
        help="Only this detector's alerts (see `sia detectors`).")] = None,
    customer: Annotated[str | None, typer.Option(help="Only alerts about this customer id.")]
    = None,
    rep: Annotated[str | None, typer.Option(help="Only this rep's alerts (a rep id).")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's alerts.")] = None,
    severity: Annotated[str | None, typer.Option(help="Only this severity: low, medium or "
                                                      "high.")] = None,
    status: Annotated[str | None, typer.Option(
        help="Only alerts in this state: pending (not routed yet), routed, or history "
             "(kept, never sent).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only alerts at or after this time: a date (2011-11-01), an ISO timestamp "
             "(2011-11-01T09:30:00, UTC unless it names a zone) or a time ago (7d, 12h, "
             "2w).", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many alerts to show at most.")] = 20,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the alerts as a JSON list (every field, as GET /v1/alerts "
                       "answers).")] = False,
) -> None:
    """Show stored alerts, newest first.

    The same query as GET /v1/alerts: one row per alert with its id (for GET
    /v1/alerts/ID) and its dedup key (for `sia snooze add alert KEY`). The store is only
    read: when there is none at --db, nothing is created and the error says where it
    looked.
    """
    from sia.service.alerts import AlertFilter, list_alerts

    known_detector(detector)
    if severity is not None and severity not in SEVERITIES:
        fail(f"--severity {severity!r}: use low, medium or high")
    if status is not None and status not in STATUSES:
        fail(f"--status {status!r}: use pending, routed or history")
    start = parse_since(since) if since is not None else None
    store = open_store(db, create=False)
    try:
        where = AlertFilter(detector=detector, customer=customer, rep_id=rep, team=team,
                            status=status, severity=severity, since=start)
        rows = list_alerts(store, where, limit=limit).items
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        filtered = any(v is not None for v in (detector, customer, rep, team, severity,
                                               status, since))
        errors.print(f"{'no alerts match' if filtered else 'no alerts stored yet'} in "
                     f"{store.location()}",
                     highlight=False, soft_wrap=True)
        return
    # piped: a wide table, never cut (scripts should use --json); a narrow terminal:
    # one block per alert, so that ids and dedup keys are never cut either
    out = console if stdout_is_terminal() else Console(width=max(console.width, 220))
    if out.width >= WIDE:
        out.print(alerts_table(rows))
    else:
        for row in rows:
            out.print(alert_block(row), highlight=False, soft_wrap=True)
    counts = Counter(r["detector"] for r in rows)
    out.print(f"{len(rows)} alerts shown, newest first "
              f"({', '.join(f'{n} {d}' for d, n in counts.most_common())})"
              + ("; --limit for more" if len(rows) == limit else ""), highlight=False)


COLOURS = {"high": "bold red", "medium": "yellow", "low": "cyan"}
WIDE = 160  # columns from which the table fits with whole ids and dedup keys


def _about(r: dict[str, Any]) -> str:
    return (r["subject_id"] if r["subject_kind"] == "customer"
            else f"{r['subject_kind']} {r['subject_id']}")


def _owner(r: dict[str, Any]) -> str:
    return (r["rep_id"] or "-") + (f" ({r['team']})" if r["team"] else "")


def alert_block(r: dict[str, Any]) -> str:
    """One alert in three lines, for narrow terminals."""
    sev = r["severity"]
    return (f"{r['occurred_at'][:16].replace('T', ' ')} [{COLOURS.get(sev, '')}]{sev}[/] "
            f"{r['detector']}/{r['kind']} about {r['subject_kind']} "
            f"{escape(r['subject_id'])}, rep {escape(_owner(r))}\n"
            f"  [bold]{escape(r['title'])}[/]\n"
            f"  [dim]id[/] {r['alert_id']}  [dim]dedup key[/] {escape(r['dedup_key'])}")


def alerts_table(rows: list[dict[str, Any]]) -> Table:
    """Stored alerts (as `to_dict` gives them) as a table."""
    table = Table(show_lines=False, expand=False, highlight=False)
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("sev", no_wrap=True)
    table.add_column("detector/kind", no_wrap=True)
    table.add_column("customer", no_wrap=True)
    table.add_column("rep (team)", no_wrap=True)
    table.add_column("title", ratio=1, min_width=20)
    table.add_column("alert id", no_wrap=True, min_width=32)
    table.add_column("dedup key", no_wrap=True)
    for r in rows:
        sev = r["severity"]
        table.add_row(r["occurred_at"][:16].replace("T", " "),
                      f"[{COLOURS.get(sev, '')}]{sev}[/]", f"{r['detector']}/{r['kind']}",
                      escape(_about(r)), escape(_owner(r)), escape(r["title"]),
                      r["alert_id"], escape(r["dedup_key"]))
    return table


def detectors_command(
    team: Annotated[str | None, typer.Option(
        help="Show the values for customers of this team (its overrides applied).")] = None,
    segment: Annotated[str | None, typer.Option(
        help="Show the values for customers of this segment (its overrides applied).")]
    = None,
    config: Annotated[Path | None, typer.Option(
        help="detectors.yaml to read (default: the one in config/ or SIA_CONFIG_DIR).")]
    = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the answer as JSON (the `detectors` part of GET "
                       "/v1/thresholds).")] = False,
) -> None:
    """List the detectors and the effective value of every threshold.

    Each value comes with its source (default, configured, segment S or team T: a team
    override beats a segment override, which beats the configured defaults), its unit and
    allowed range, whether it can only be set for everyone (global), and what it changes
    in the alerts. The same function as GET /v1/thresholds, over the configuration files
    (a running server's tuned thresholds: `sia thresholds show`).
    """
    from sia.config import ConfigError
    from sia.service.thresholds import config_from_files
    from sia.thresholds.effective import effective

    build(config, None)  # a wrong key or value stops here, naming the file and the key
    try:
        current = config_from_files(config, None)
    except ConfigError as exc:
        fail(str(exc))
    for kind, name in (("team", team), ("segment", segment)):
        known = sorted(current.detectors.get(f"{kind}s") or {})
        if name is not None and name not in known:
            errors.print(f"warning: no overrides for {kind} {name!r} in the configuration "
                         f"(known: {', '.join(known) or 'none'}); showing the defaults",
                         highlight=False)
    answer = effective(current, team=team, segment=segment)
    if as_json:
        typer.echo(json.dumps(answer, indent=2, default=str))
        return
    for name, detector in answer.items():
        console.print(f"[bold]{name}[/]: {detector['description']}")
        for key, t in detector["thresholds"].items():
            notes = [t["unit"], t["allowed"], "global" if t["global"] else ""]
            line = f"  {key} = {t['value']!r}"
            if any(notes):
                line += f"  ({'; '.join(n for n in notes if n)})"
            line += f"  [{t['source']}]"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
            if t["description"]:
                console.print(f"      {t['description']}", markup=False, highlight=False)


def register_alerts(app: typer.Typer) -> None:
    """Add `sia alerts` and `sia detectors`."""
    app.command("alerts", rich_help_panel=START)(alerts_command)
    app.command("detectors", rich_help_panel=START)(detectors_command)
