"""`sia thresholds show|preview|apply|history|rollback`: the same as /v1/thresholds, against
a running server (`--url`, `--key`) or a data folder no server runs on (`--data-dir`).

A rep's own thresholds: `--rep R` (implied by a rep key against a server) with `--set` to
raise a firing threshold for R's customers, `--mute D` / `--unmute D` for a detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from sia.cli.common import console, fail, reaching_store, settings

app = typer.Typer(help="Thresholds: see them, preview a change, apply it, history, "
                       "rollback.", no_args_is_help=True)

UrlOpt = Annotated[str | None, typer.Option(
    help="a running server, e.g. http://127.0.0.1:8000 (else --data-dir)")]
KeyOpt = Annotated[str | None, typer.Option(
    envvar="SIA_API_KEY", help="a manager or admin key, or a rep key for its own thresholds "
                               "(SIA_API_KEY)")]
DataOpt = Annotated[Path, typer.Option(
    "--data-dir", help="the data folder, when no server runs on it")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="detector.key=value (value null removes the override); repeatable")]
TeamOpt = Annotated[str | None, typer.Option(help="the team the change is for")]
SegmentOpt = Annotated[str | None, typer.Option(help="the segment the change is for")]
RepOpt = Annotated[str | None, typer.Option(
    help="the rep the change is for (their own customers: firing thresholds, raised only)")]
MuteOpt = Annotated[list[str] | None, typer.Option(
    "--mute", help="a detector to mute for --rep (or the rep key's rep); repeatable")]
UnmuteOpt = Annotated[list[str] | None, typer.Option(
    "--unmute", help="a detector to unmute for --rep; repeatable")]
AsJson = Annotated[bool, typer.Option("--json", help="print the answer as JSON")]


def changes_of(assignments: list[str] | None, team: str | None, segment: str | None,
               rep: str | None = None, mute: list[str] | None = None,
               unmute: list[str] | None = None) -> list[dict[str, Any]]:
    """`--set drift.lost_probability=0.9` (and `--mute D`, `--unmute D`) as API changes,
    one per detector."""
    import yaml

    per_detector: dict[str, dict[str, Any]] = {}
    mutes = {**{d: True for d in mute or []}, **{d: False for d in unmute or []}}
    for assignment in assignments or []:
        target, sep, raw = assignment.partition("=")
        detector, dot, key = target.partition(".")
        if not sep or not dot or not detector or not key:
            fail(f"--set {assignment!r}: use detector.key=value")
        per_detector.setdefault(detector, {})[key] = yaml.safe_load(raw)
    if not per_detector and not mutes:
        fail("name at least one change: --set detector.key=value (or --mute detector)")
    return [{"detector": d, "set": per_detector.get(d, {}), "team": team,
             "segment": segment, "rep": rep, "mute": mutes.get(d)}
            for d in [*per_detector, *(d for d in mutes if d not in per_detector)]]


class _Server:
    """A running server's /v1/thresholds."""

    def __init__(self, url: str, key: str | None) -> None:
        if not key:
            fail("--key (or SIA_API_KEY) is needed to talk to a server")
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=600,
                                   headers={"Authorization": f"Bearer {key}"})

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            fail(f"cannot reach {self.client.base_url}: {exc}")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            fail(f"{response.status_code}: {detail}")
        return response


def _local(data_dir: Path) -> Any:
    """The thresholds of a data folder no server runs on."""
    from sia.service.runtime import DataDir
    from sia.service.state import Locked

    lock = DataDir(data_dir).lock()
    try:
        lock.acquire()
    except Locked as exc:
        fail(f"{exc} (or talk to it: --url and --key)")
    return lock


def _print(answer: Any, as_json: bool, text: str) -> None:
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    else:
        console.print(text, highlight=False)


@app.command("show")
def show(url: UrlOpt = None, key: KeyOpt = None, data_dir: DataOpt = Path("sia-data"),
         team: TeamOpt = None, segment: SegmentOpt = None, rep: RepOpt = None,
         as_json: AsJson = False) -> None:
    """Every threshold with its value, where it comes from and what it means.

    For a rep (--rep, or a rep key): the values that apply to their customers, and
    their mutes.
    """
    if url:
        params = {k: v for k, v in (("team", team), ("segment", segment), ("rep", rep)) if v}
        answer = _Server(url, key).call("GET", "/v1/thresholds", params=params).json()
    else:
        from sia.thresholds.effective import effective, effective_policy

        desk, close = _desk(data_dir, read=True)
        try:
            current = desk.current()
            team = team or (desk.rep_team(rep) if rep else None)
            answer = {"version": current.version, "team": team, "segment": segment,
                      "rep": rep, "detectors": effective(current.config, team=team,
                                                         segment=segment, rep=rep),
                      "policy": effective_policy(current.config)}
        finally:
            close()
    lines = [f"thresholds version {answer['version']}"
             + (f", team {answer['team']}" if answer.get("team") else "")
             + (f", rep {answer['rep']}" if answer.get("rep") else "")]
    for name, detector in answer["detectors"].items():
        muted = " (muted for this rep)" if detector.get("muted") else ""
        lines.append(f"[bold]{name}[/]{muted}: {detector['description']}")
        for key_, t in detector["thresholds"].items():
            lines.append(f"  {key_} = {t['value']!r} ({t['source']})"
                         + (f"  {t['description']}" if t["description"] else "")
                         + (f" ({t['allowed']})" if t.get("allowed") else ""))
    _print(answer, as_json, "\n".join(lines))


def _desk(data_dir: Path, *, read: bool = False) -> tuple[Any, Any]:
    """The thresholds desk of a data folder (and what closes it); to `read`, the folder
    must exist: a reader never makes one."""
    if read and not data_dir.is_dir():
        fail(f"no data folder {data_dir} (use --data-dir, or --url and --key for a "
             "running server; `sia detectors` shows the configured thresholds)")
    from sia.alerts.store import AlertStore
    from sia.journal import Journal
    from sia.service.runtime import DataDir
    from sia.service.thresholds import ThresholdDesk, config_from_files
    from sia.thresholds.versions import Versions

    lock = _local(data_dir)
    url = DataDir(data_dir).store_url(settings())
    try:
        with reaching_store(url):
            store = AlertStore(url)
    except typer.Exit:
        lock.release()
        raise
    folder = DataDir(data_dir)
    journal = Journal(folder.journal_url) if (data_dir / "journal.db").exists() else None
    desk = ThresholdDesk(Versions(store), seed=config_from_files(None, None),
                         journal=journal)

    def close() -> None:
        if journal is not None:
            journal.close()
        store.close()
        lock.release()

    return desk, close


@app.command("preview")
def preview(set_: SetOpt, url: UrlOpt = None, key: KeyOpt = None,
            data_dir: DataOpt = Path("sia-data"), team: TeamOpt = None,
            segment: SegmentOpt = None, rep: RepOpt = None,
            days: Annotated[float, typer.Option(min=1, help="over the journal's last days")]
            = 90.0,
            horizon: Annotated[str, typer.Option(
                help="judge alerts over this outcome window, as `sia evaluate`")] = "90d",
            as_json: AsJson = False) -> None:
    """What a change would have done over the journal's last days; changes nothing.

    With the precision of the alerts whose outcome is known already, before and after.
    """
    from sia.cli.measure import parse_horizon

    changes = changes_of(set_, team, segment, rep)
    horizon_days = parse_horizon(horizon)
    if url:
        answer = _Server(url, key).call("POST", "/v1/thresholds/preview",
                                        json={"changes": changes, "days": days,
                                              "horizon_days": horizon_days}).json()
    else:
        from sia.access.keys import Principal
        from sia.config import ConfigError
        from sia.service.preview import PreviewRequest, run_preview
        from sia.service.runtime import DataDir
        desk, close = _desk(data_dir, read=True)
        try:
            who = Principal("cli", "command line", "admin")
            validated = desk.propose([_change(c) for c in changes], who)
            current = desk.current()
        except ConfigError as exc:
            fail(str(exc))
        finally:
            close()
        answer = run_preview(PreviewRequest(DataDir(data_dir).journal_url,
                                            current.config.as_dict(),
                                            validated.config.as_dict(), days,
                                            horizon_days))
        if "error" in answer:
            fail(answer["error"])
    before, after = answer["before"], answer["after"]
    text = (f"over {answer['window']['from'][:10]} .. {answer['window']['to'][:10]}: "
            f"{before['alerts']} alerts ({before['alerts_per_week']}/week) -> "
            f"{after['alerts']} ({after['alerts_per_week']}/week); "
            f"{answer['added']['count']} added, {answer['removed']['count']} removed "
            f"({answer['elapsed_s']} s)")
    text += "\n" + _precision_lines(before["precision"], after["precision"])
    for kind in ("removed", "added"):
        for alert in answer[kind]["sample"][:5]:
            text += f"\n  {kind[:-1]}: {alert['occurred_at'][:10]} {alert['title']}"
    _print(answer, as_json, text)


def _precision_lines(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Precision before -> after, overall and per detector, with what could be judged."""
    def one(figures: dict[str, Any]) -> str:
        if not figures["judged"]:
            return "none judgeable yet"
        return f"{figures['precision']:.0%} of {figures['judged']} judged"

    lines = [f"precision ({before['horizon_days']:g}-day outcomes known): "
             f"{one(before)} -> {one(after)}"]
    for name in sorted(set(before["by_detector"]) | set(after["by_detector"])):
        b, a = before["by_detector"].get(name), after["by_detector"].get(name)
        if b is None or a is None or not (b["alerts"] or a["alerts"]):
            continue
        lines.append(f"  {name}: {one(b)} ({b['not_yet_judgeable']} not yet) -> "
                     f"{one(a)} ({a['not_yet_judgeable']} not yet)")
    return "\n".join(lines)


@app.command("apply")
def apply_(reason: Annotated[str, typer.Option(help="why, for the history")],
           set_: SetOpt = None, url: UrlOpt = None, key: KeyOpt = None,
           data_dir: DataOpt = Path("sia-data"),
           team: TeamOpt = None, segment: SegmentOpt = None, rep: RepOpt = None,
           mute: MuteOpt = None, unmute: UnmuteOpt = None, as_json: AsJson = False) -> None:
    """Change thresholds as a new version (applied at once by a running server).

    With --rep (or a rep key): a rep's own raise or mute.
    """
    changes = changes_of(set_, team, segment, rep, mute, unmute)
    if url:
        server = _Server(url, key)
        version = server.call("GET", "/v1/thresholds").headers["etag"]
        answer = server.call("PUT", "/v1/thresholds", headers={"If-Match": version},
                             json={"changes": changes, "reason": reason}).json()
    else:
        answer = _local_change(data_dir, lambda desk, who: desk.change(
            [_change(c) for c in changes], expected=desk.current().version, who=who,
            reason=reason))
    text = (f"thresholds version {answer['version']}" + (
        ": " + "; ".join(f"{e['detector']}.{e['key']} {e['before']!r} -> {e['after']!r}"
                         for e in answer["recorded"]["diff"])
        if answer["changed"] else ": nothing changed"))
    _print(answer, as_json, text)


def _change(data: dict[str, Any]) -> Any:
    from sia.service.thresholds import Change

    return Change(data["detector"], data["set"], data["team"], data["segment"],
                  data.get("rep"), data.get("mute"))


def _local_change(data_dir: Path, make: Any) -> dict[str, Any]:
    """A change recorded in a data folder no server runs on (the next start uses it)."""
    from sia.access.keys import Principal
    from sia.config import ConfigError

    desk, close = _desk(data_dir)
    try:
        expected = desk.current().version
        version = make(desk, Principal("cli", "command line", "admin"))
    except ConfigError as exc:
        fail(str(exc))
    finally:
        close()
    return {"changed": version is not None,
            "version": version.version if version else expected,
            "recorded": version.as_dict() if version else None}


@app.command("history")
def history(url: UrlOpt = None, key: KeyOpt = None, data_dir: DataOpt = Path("sia-data"),
            limit: Annotated[int, typer.Option(min=1, help="how many versions")] = 20,
            as_json: AsJson = False) -> None:
    """Versions newest first: who, when, why, and what changed."""
    if url:
        answer = _Server(url, key).call("GET", "/v1/thresholds/history",
                                        params={"limit": limit}).json()
    else:
        desk, close = _desk(data_dir, read=True)
        try:
            answer = [v.as_dict() for v in desk.versions.history(limit=limit)]
        finally:
            close()
    lines = []
    for v in answer:
        changed = "; ".join(f"{e['detector']}.{e['key']}"
                            + (f" ({e['scope']} {e['name']})" if e.get("name") else "")
                            + f" {e['before']!r} -> {e['after']!r}" for e in v["diff"])
        lines.append(f"v{v['version']} {v['created_at'][:19]} {v['who']} ({v['kind']}): "
                     f"{v['reason']}" + (f"\n  {changed}" if changed else ""))
    _print(answer, as_json, "\n".join(lines))


@app.command("rollback")
def rollback(version: Annotated[int, typer.Argument(help="the version to restore")],
             reason: Annotated[str, typer.Option(help="why, for the history")],
             url: UrlOpt = None, key: KeyOpt = None, data_dir: DataOpt = Path("sia-data"),
             as_json: AsJson = False) -> None:
    """A new version equal to an old one."""
    if url:
        server = _Server(url, key)
        etag = server.call("GET", "/v1/thresholds").headers["etag"]
        answer = server.call("POST", "/v1/thresholds/rollback", headers={"If-Match": etag},
                             json={"version": version, "reason": reason}).json()
    else:
        answer = _local_change(data_dir, lambda desk, who: desk.rollback(
            version, expected=desk.current().version, who=who, reason=reason))
    _print(answer, as_json, f"thresholds version {answer['version']}"
           + (f" (equal to version {version})" if answer["changed"] else
              ": nothing changed"))
