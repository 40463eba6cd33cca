"""`sia deliver`, `sia routes test`, `sia snooze add|list|lift`, `sia mute add|list|lift`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sia.catalog import Catalog
from sia.cli.alerts import known_detector
from sia.cli.common import DELIVERY, DbOpt, console, errors, fail, open_store, settings
from sia.config import ConfigError
from sia.engine.engine import Engine
from sia.engine.snapshot import SnapshotError

RoutesOpt = Annotated[Path | None, typer.Option(
    help="routing.yaml (default: the one in config/ or SIA_CONFIG_DIR).")]

routes_app = typer.Typer(help="Inspect the routing tree: who gets an alert, and why.",
                         no_args_is_help=True)


@routes_app.command("test")
def routes_test(
    alert: Annotated[str, typer.Argument(
        metavar="ALERT",
        help="A stored alert's id (a column of `sia alerts`), read from --db; or a JSON "
             "file holding an alert as `sia alerts --json` prints it (the first of a "
             "list), optionally with a context section.")],
    routes: RoutesOpt = None,
    state: Annotated[Path | None, typer.Option(
        help="Engine snapshot (from `sia replay --state`) with the customers and reps; "
             "else only the JSON's context is known.")] = None,
    db: DbOpt = None,
) -> None:
    """Show who would get an alert, through what channel, and which route matched.

    Nothing is sent and the store is only read.
    """
    from sia.config import config_dir
    from sia.routing.explain import AlertJsonError, explain_route

    data = _alert_data(alert, db)
    try:
        typer.echo(explain_route(data, routes or config_dir() / "routing.yaml",
                                 _catalog(state)))
    except (AlertJsonError, ConfigError) as exc:
        fail(f"{alert}: {exc}")


def _alert_data(alert: str, db: str | None) -> dict[str, Any]:
    """The alert `sia routes test` explains: from a JSON file, else by id from the store."""
    path = Path(alert)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"{alert}: {exc}")
        if isinstance(data, list):  # `sia alerts --json` prints a list: take the first
            data = data[0] if data else {}
        return data if isinstance(data, dict) else {}
    from sia.service.alerts import get_alert

    store = open_store(db, create=False)
    try:
        found = get_alert(store, alert)
    finally:
        store.close()
    if found is None:
        fail(f"{alert}: no such file, and no alert with this id in {store.location()}")
    return found


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
    @app.command(rich_help_panel=DELIVERY)
    def deliver(
        db: DbOpt = None,
        state: Annotated[Path | None, typer.Option(
            help="Engine snapshot (from `sia replay --state`) holding the customers and "
                 "reps that routing needs.")] = None,
        routes: RoutesOpt = None,
        follow: Annotated[bool, typer.Option(
            help="Keep delivering every --interval seconds until stopped.")] = False,
        interval: Annotated[float, typer.Option(
            min=0.5, help="Seconds between passes with --follow.")] = 5.0,
    ) -> None:
        """Route stored alerts and send what is due (by the wall clock).

        Channels come from the settings (SIA_SLACK_TOKEN, SIA_SMTP_HOST, SIA_WEBHOOK_URL;
        the console otherwise). Alerts about events older than SIA_DELIVERY_MAX_AGE_DAYS
        are kept as history, not sent.
        """
        from sia.feedback.relevance import Relevance
        from sia.routing import load_routes
        from sia.service.delivery import build_delivery, current_mutes, waiting_notes

        try:  # a routing error first, whatever the store
            load_routes(routes)
        except ConfigError as exc:
            fail(str(exc))
        store = open_store(db, create=False)
        try:
            delivery = build_delivery(store, _catalog(state), settings(), routes=routes,
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
                              f"{settings().delivery_max_age_days:g} days kept as history "
                              "(not sent; SIA_DELIVERY_MAX_AGE_DAYS)", highlight=False)
            for note in waiting_notes(stats):
                errors.print(note, highlight=False, soft_wrap=True)
            if not follow:
                break
            time.sleep(interval)
        store.close()

    app.add_typer(routes_app, name="routes", rich_help_panel=DELIVERY)
    app.add_typer(holds_app("snooze"), name="snooze", rich_help_panel=DELIVERY)
    app.add_typer(holds_app("mute"), name="mute", rich_help_panel=DELIVERY)


class _AddByDefault(TyperGroup):
    """`sia snooze customer 12345 ...` (before `add` existed) still means `sia snooze add
    customer 12345 ...`, options first (`sia snooze --who W ... customer 12345`) too."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        first = args[0] if args else ""
        if first in ("customer", "alert", "detector") or (
                first.startswith("-") and first not in ("--help", "-h")):
            args = ["add", *args]
        return super().parse_args(ctx, args)


HOLDS: dict[str, dict[str, Any]] = {
    "snooze": {"verb": "Snooze", "days": 7.0, "what": (
        "A snoozed alert is held back until the snooze ends; then one notice says it ended "
        "and how many alerts arrived meanwhile.")},
    "mute": {"verb": "Mute", "days": 30.0, "what": (
        "A muted alert is kept in the store but never sent, and no notice follows.")},
}


def holds_app(kind: str) -> typer.Typer:
    """`sia snooze` or `sia mute`: add, list, lift."""
    about = HOLDS[kind]
    group = typer.Typer(cls=_AddByDefault, no_args_is_help=True, help=(
        f"{about['verb']} alerts about a customer, one situation (a dedup key) or a "
        f"detector: add, list, lift.\n\n{about['what']} `sia {kind} SCOPE TARGET ...` "
        f"still works as `sia {kind} add SCOPE TARGET ...`."))

    @group.command("add")
    def add(
        scope: Annotated[str, typer.Argument(
            help="What to hold: customer, alert (one situation, by its dedup key) or "
                 "detector.")],
        target: Annotated[str, typer.Argument(
            help="The customer id, the dedup key (a column of `sia alerts`) or the "
                 "detector name.")],
        who: Annotated[str, typer.Option(help="Who asks for it (kept with it).")],
        why: Annotated[str, typer.Option(help="Why (kept with it, and told in notices).")],
        days: Annotated[float, typer.Option(min=0.01, max=3650, help="For how many days.")]
        = about["days"],
        rep: Annotated[str | None, typer.Option(
            help="Only for this rep's messages (default: for everyone).")] = None,
        db: DbOpt = None,
    ) -> None:
        """Hold alerts back from now for --days."""
        from sia.service.holds import SCOPES, hold, known_target

        if scope not in SCOPES:
            fail(f"scope {scope!r}: use customer, alert or detector")
        if scope == "detector":
            known_detector(target)
        store = open_store(db)
        try:
            if scope != "detector" and not known_target(store, scope, target):
                errors.print(f"warning: no stored alert is about {scope} {target!r} in "
                             f"{store.location()}; {kind}d anyway (check the spelling: "
                             "`sia alerts` shows customer ids and dedup keys)",
                             highlight=False, soft_wrap=True)
            held = hold(store, kind=kind, scope=scope, target=target, who=who, why=why,
                        days=days, now=datetime.now(UTC), rep_id=rep)
        except ValueError as exc:
            fail(str(exc))
        finally:
            store.close()
        console.print(f"{kind} {held.hold_id}: {scope} {target}"
                      + (f" for rep {rep}" if rep else "")
                      + f" until {held.until:%Y-%m-%d %H:%M} UTC ({who}: {why}); "
                      f"`sia {kind} lift {held.hold_id}` ends it sooner", highlight=False)

    @group.command("list")
    def list_(
        ended: Annotated[bool, typer.Option(
            "--all", help="Also those that have ended.")] = False,
        rep: Annotated[str | None, typer.Option(
            help="Only those for this rep (and those for everyone).")] = None,
        db: DbOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    ) -> None:
        """List them, the soonest to end first."""
        from sia.service.holds import holds

        store = open_store(db, create=False)
        now = datetime.now(UTC)
        try:
            found = holds(store, kind=kind, now=now, ended=ended, rep_id=rep)
        finally:
            store.close()
        if as_json:
            typer.echo(json.dumps([_hold_json(h, now) for h in found], indent=2))
            return
        if not found:
            errors.print(f"no {kind}s{'' if ended else ' in force'} in {store.location()}",
                         highlight=False, soft_wrap=True)
            return
        for h in found:
            state = "ended" if h.until <= now else "until"
            console.print(f"{h.hold_id:>4}  {h.scope} {h.target}"
                          + (f" (rep {h.rep_id})" if h.rep_id else "")
                          + f"  {state} {h.until:%Y-%m-%d %H:%M} UTC  {h.who}: {h.why}",
                          highlight=False, soft_wrap=True)

    @group.command("lift", help="End one now." + (
        " What it held back is sent with the notice that it ended." if kind == "snooze"
        else " New alerts about its target are sent again."))
    def lift_(
        hold_id: Annotated[int, typer.Argument(
            metavar="ID", help="Its id, as `list` shows it.")],
        db: DbOpt = None,
    ) -> None:
        from sia.service.holds import NoHold, lift

        store = open_store(db, create=False)
        try:
            lifted = lift(store, kind=kind, hold_id=hold_id, now=datetime.now(UTC))
        except (NoHold, ValueError) as exc:
            fail(f"{exc} in {store.location()}")
        finally:
            store.close()
        console.print(f"{kind} {lifted.hold_id} lifted: {lifted.scope} {lifted.target}",
                      highlight=False)

    return group


def _hold_json(h: Any, now: datetime) -> dict[str, Any]:
    return {"id": h.hold_id, "kind": h.kind, "scope": h.scope, "target": h.target,
            "rep_id": h.rep_id, "who": h.who, "why": h.why, "until": h.until.isoformat(),
            "created_at": h.created_at.isoformat() if h.created_at else None,
            "in_force": h.until > now}
