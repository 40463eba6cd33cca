"""`sia deliver`, `sia routes test`, `sia snooze`, `sia mute`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from sia.alerts.store import AlertStore
from sia.cli.common import console, db_url, errors, fail
from sia.config import ConfigError
from sia.engine.catalog import Catalog
from sia.engine.engine import Engine
from sia.engine.snapshot import SnapshotError
from sia.settings import get_settings

DbOpt = Annotated[str, typer.Option(help="alert store (SQLite path or URL)")]
RoutesOpt = Annotated[Path | None, typer.Option(help="routing.yaml (default: config/)")]

routes_app = typer.Typer(help="Inspect the routing tree.", no_args_is_help=True)


@routes_app.command("test")
def routes_test(
    alert_json: Annotated[Path, typer.Argument(help="an alert as `sia alerts --json` prints "
                                                    "it, optionally with a context section")],
    routes: RoutesOpt = None,
    state: Annotated[Path | None, typer.Option(
        help="engine snapshot with the customers and reps (else only the JSON's context)")]
    = None,
) -> None:
    """Show who would get an alert, and through what."""
    from sia.config import config_dir
    from sia.routing.explain import AlertJsonError, explain_route

    try:
        data = json.loads(alert_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{alert_json}: {exc}")
    if isinstance(data, list):  # `sia alerts --json` prints a list: take the first
        data = data[0] if data else {}
    try:
        typer.echo(explain_route(data, routes or config_dir() / "routing.yaml",
                                 _catalog(state)))
    except (AlertJsonError, ConfigError) as exc:
        fail(f"{alert_json}: {exc}")


def _catalog(state: Path | None) -> Catalog:
    if state is None:
        return Catalog()
    try:
        from sia.detectors.config import load_detectors

        return Engine.restore(state.read_bytes(), detectors=load_detectors()).catalog
    except (OSError, SnapshotError, ConfigError) as exc:
        fail(f"{state}: {exc}")


def register_delivery(app: typer.Typer) -> None:
    """Add the delivery commands."""
    app.add_typer(routes_app, name="routes")

    @app.command()
    def deliver(
        db: DbOpt = "sia.db",
        state: Annotated[Path | None, typer.Option(
            help="engine snapshot (from `sia replay --state`) holding the customers and reps "
                 "that routing needs")] = None,
        routes: RoutesOpt = None,
        follow: Annotated[bool, typer.Option(help="keep delivering every --interval")] = False,
        interval: Annotated[float, typer.Option(min=0.5)] = 5.0,
    ) -> None:
        """Route stored alerts and send what is due (wall-clock time)."""
        from sia.feedback.relevance import Relevance
        from sia.service.delivery import build_delivery, current_mutes, waiting_notes

        store = AlertStore(db_url(db))
        try:
            delivery = build_delivery(store, _catalog(state), get_settings(), routes=routes,
                                      priority=Relevance.from_store(store).priority)
        except ConfigError as exc:
            fail(str(exc))
        while True:
            delivery.dispatcher.mutes = current_mutes(store)  # reps' mutes, as tuned now
            stats = delivery.step(datetime.now(UTC))
            console.print(f"sent {stats.sent}, retrying {stats.retried}, dead-lettered "
                          f"{stats.dead}", highlight=False)
            if stats.history:
                console.print(f"{stats.history:,} alerts older than "
                              f"{get_settings().delivery_max_age_days:g} days kept as history "
                              "(not sent; SIA_DELIVERY_MAX_AGE_DAYS)", highlight=False)
            for note in waiting_notes(stats):
                errors.print(note, highlight=False)
            if not follow:
                break
            time.sleep(interval)
        store.close()

    def _hold(kind: str, scope: str, target: str, who: str, why: str, days: float,
              rep: str | None, db: str) -> None:
        from sia.service.holds import hold

        now = datetime.now(UTC)
        try:
            held = hold(AlertStore(db_url(db)), kind=kind, scope=scope, target=target, who=who,
                        why=why, days=days, now=now, rep_id=rep)
        except ValueError as exc:
            fail(str(exc))
        console.print(f"{kind} {held.hold_id}: {scope} {target} until "
                      f"{held.until:%Y-%m-%d %H:%M} UTC ({who}: {why})", highlight=False)

    @app.command("snooze")
    def snooze_cmd(
        scope: Annotated[str, typer.Argument(help="customer, alert (a dedup key) or detector")],
        target: Annotated[str, typer.Argument(help="the customer id, dedup key or detector")],
        who: Annotated[str, typer.Option(help="who snoozes")],
        why: Annotated[str, typer.Option(help="why")],
        days: Annotated[float, typer.Option(min=0.01)] = 7.0,
        rep: Annotated[str | None, typer.Option(help="only for this rep")] = None,
        db: DbOpt = "sia.db",
    ) -> None:
        """Hold alerts back until a date; a notice says when the snooze ends."""
        _hold("snooze", scope, target, who, why, days, rep, db)

    @app.command("mute")
    def mute_cmd(
        scope: Annotated[str, typer.Argument(help="customer, alert (a dedup key) or detector")],
        target: Annotated[str, typer.Argument(help="the customer id, dedup key or detector")],
        who: Annotated[str, typer.Option(help="who mutes")],
        why: Annotated[str, typer.Option(help="why")],
        days: Annotated[float, typer.Option(min=0.01)] = 30.0,
        rep: Annotated[str | None, typer.Option(help="only for this rep")] = None,
        db: DbOpt = "sia.db",
    ) -> None:
        """Drop alerts until a date, without a notice."""
        _hold("mute", scope, target, who, why, days, rep, db)
