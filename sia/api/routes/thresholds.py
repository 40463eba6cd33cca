"""/v1/thresholds: what each threshold is and where its value comes from; change it with
a reason (If-Match: the version you saw); the history with diffs; roll back.

409 when the version moved on, 403 for a team's manager changing another team's
thresholds, 422 naming the key and the reason when a change does not validate, 428 when
If-Match is missing.

A rep key tunes its own alerts through the same PUT: a change with `"rep": "<its rep
id>"` (or none: implied) raises a firing threshold for the customers the rep owns, never
toward more alerts, or mutes a detector for the rep (`"mute": true`); another rep's id,
a team or a segment is 403, a learning parameter or a lowered value 422. GET shows a rep
the values that apply to their customers and their mutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from sia.api.deps import Caller, Service
from sia.api.previews import preview_of
from sia.config import ConfigError
from sia.service.thresholds import Change, Conflict, Forbidden
from sia.thresholds.effective import effective, effective_policy
from sia.thresholds.versions import Version

router = APIRouter(tags=["thresholds"])


class ChangeIn(BaseModel):
    """Set (or, with null, remove) thresholds of one detector for a team, a segment, a rep
    (their own customers: firing thresholds only, toward fewer alerts), or the defaults
    (none of them); for a rep, `mute` true or false mutes or unmutes the detector. A rep
    key's change is for its own rep, named or not."""

    model_config = ConfigDict(extra="forbid")

    detector: str = Field(max_length=64)
    team: str | None = Field(default=None, max_length=200)
    segment: str | None = Field(default=None, max_length=200)
    rep: str | None = Field(default=None, max_length=200)
    set: dict[str, float | int | bool | None] = Field(default_factory=dict, max_length=50)
    mute: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> ChangeIn:
        if not self.set and self.mute is None:
            raise ValueError("a change sets thresholds (set) or mutes a detector (mute)")
        return self

    def change(self) -> Change:
        """As the service takes it."""
        return Change(self.detector, dict(self.set), self.team, self.segment, self.rep,
                      self.mute)


class ChangesIn(BaseModel):
    """Changes and why."""

    model_config = ConfigDict(extra="forbid")

    changes: list[ChangeIn] = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)


class PreviewIn(BaseModel):
    """Changes to try, over the journal's last `days` days; alerts judged over an outcome
    window of `horizon_days` (as `sia evaluate --horizon`). Previews within ten minutes
    of the first see the journal as it did (`window.journal_entries_since` says how much
    came since), unless `fresh`."""

    model_config = ConfigDict(extra="forbid")

    changes: list[ChangeIn] = Field(min_length=1, max_length=100)
    days: float = Field(default=90.0, gt=0, le=730)
    horizon_days: float = Field(default=90.0, gt=0, le=365)
    fresh: bool = False


class RollbackIn(BaseModel):
    """The version to restore, and why."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)


class VersionOut(BaseModel):
    """A version: who, when, why, what changed, and what became of it."""

    version: int
    created_at: str
    who: str
    role: str
    reason: str
    kind: str
    rollback_of: int | None
    diff: list[dict[str, Any]]
    outcome: dict[str, str]


class ChangeOut(BaseModel):
    """The outcome of a change: the new version, or none when nothing changed."""

    changed: bool
    version: int
    recorded: VersionOut | None


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such version (rollback)."},
    409: {"description": "The thresholds moved on since the version in If-Match."},
    412: {"description": "If-Match does not name a thresholds version."},
    428: {"description": "If-Match (the version the change was made against) is missing."}}


def etag(version: int) -> str:
    """The ETag of a version."""
    return f'"{version}"'


def expected_version(if_match: str | None, service: Service) -> int:
    """The version an If-Match header names."""
    if if_match is None:
        raise HTTPException(428, "send If-Match with the version you changed (the ETag of "
                                 "GET /v1/thresholds)")
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 12:
        raise HTTPException(412, f"If-Match {if_match!r} is not a thresholds version")
    return int(text)


@router.get("/v1/thresholds")
async def thresholds(service: Service, who: Caller, response: Response,
                     team: Annotated[str | None, Query(max_length=200)] = None,
                     segment: Annotated[str | None, Query(max_length=200)] = None,
                     rep: Annotated[str | None, Query(max_length=200)] = None
                     ) -> dict[str, Any]:
    """Every threshold for customers of a team and a segment (and of a rep: with the
    rep's own values where stricter, and `muted` per detector): value, source (default,
    configured, segment, team, rep), description, allowed range, which way gives fewer
    alerts (`fewer_alerts`; null: a learning parameter); the version (also the ETag).
    A team's manager key sees its own team's; a rep key its own rep's, in their team."""
    if who.role == "manager" and who.team is not None:
        if team not in (None, who.team):
            raise HTTPException(403, f"this manager key reads team {who.team}'s thresholds "
                                     "only")
        team = who.team
    if who.role == "rep":
        if rep not in (None, who.rep_id) or team is not None:
            raise HTTPException(403, f"{who.describe()} reads rep {who.rep_id}'s own "
                                     "thresholds only")
        rep = who.rep_id
    if rep is not None and team is None:
        team = await run_in_threadpool(service.thresholds.rep_team, rep)
    current = await run_in_threadpool(service.thresholds.current)
    response.headers["ETag"] = etag(current.version)
    detectors = effective(current.config, team=team, segment=segment, rep=rep)
    if who.role == "rep":  # other reps' own values are theirs
        for values in detectors.values():
            for shown in values["thresholds"].values():
                shown["overrides"] = {k: v for k, v in shown["overrides"].items()
                                      if not k.startswith("rep ") or k == f"rep {rep}"}
    return {"version": current.version, "team": team, "segment": segment, "rep": rep,
            "detectors": detectors, "policy": effective_policy(current.config)}


@contextmanager
def _refusals(*, versions: bool = False) -> Iterator[None]:
    """A thresholds call's refusals as HTTP answers: 403 (the key may not), 404 (no such
    version: only for a call that names one, `versions`), 409 (the version moved on),
    422 (invalid)."""
    try:
        yield
    except Forbidden as exc:
        raise HTTPException(403, str(exc)) from None
    except LookupError as exc:
        if not versions:
            raise
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None


async def _answered(call: Callable[[], Any], *, versions: bool = False) -> Any:
    """Run a thresholds call off the event loop, its refusals as HTTP answers
    (`_refusals`)."""
    with _refusals(versions=versions):
        return await run_in_threadpool(call)


def _version_out(version: Version) -> VersionOut:
    return VersionOut.model_validate({**version.as_dict()})


@router.put("/v1/thresholds", response_model=ChangeOut, responses=ERRORS)
async def change(body: ChangesIn, service: Service, who: Caller, response: Response,
                 if_match: Annotated[str | None, Header()] = None) -> ChangeOut:
    """Apply changes to the running service as a new version (who, when, why, diff).
    A rep key: raise firing thresholds for its own customers or mute a detector for
    itself (403 for another rep, 422 for a learning parameter or a lowered value)."""
    expected = expected_version(if_match, service)
    version = await _answered(
        lambda: service.thresholds.change([c.change() for c in body.changes],
                                          expected=expected, who=who, reason=body.reason))
    return _changed(version, expected, response)


def _changed(version: Version | None, expected: int, response: Response) -> ChangeOut:
    number = version.version if version is not None else expected
    response.headers["ETag"] = etag(number)
    return ChangeOut(changed=version is not None, version=number,
                     recorded=_version_out(version) if version is not None else None)


@router.post("/v1/thresholds/preview")
async def preview(body: PreviewIn, service: Service, who: Caller) -> dict[str, Any]:
    """What the changes would have done over the journal's last `days` days (counted back
    from its newest event): alerts before and after, per week, by detector and team, the
    busiest rep, and the alerts added and removed (a sample, with counts).

    `before.precision` and `after.precision`: per detector, its `alerts`, how many could be
    `judged` already (their `horizon_days` outcome window ended within the journal), how
    many of those were `correct` and `precision` (correct / judged, null when none could be
    judged), by the judges of `sia evaluate`; `not_yet_judgeable` counts the alerts whose
    window has not passed (never guessed). A detector judged on one kind of alert says
    which (`judged_kind`); `not_evaluated` lists detectors without a judge.

    A rep key previews its own changes (as it may make them: raise its own firing
    thresholds, mute a detector for itself) and sees its own alerts only (`rep`).

    A sandbox: it changes nothing, stores no alert and sends nothing."""
    changes = [c.change() for c in body.changes]
    with _refusals():
        result = await preview_of(service, changes, who, body.days, body.horizon_days,
                                  fresh=body.fresh)
    if "error" in result:
        raise HTTPException(409, result["error"])
    return result


@router.get("/v1/thresholds/history", response_model=list[VersionOut])
async def history(service: Service, who: Caller,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  before: Annotated[int | None, Query(ge=1, le=10**9)] = None
                  ) -> list[VersionOut]:
    """Versions newest first, with their diffs and outcomes."""
    versions = await run_in_threadpool(
        lambda: service.thresholds.versions.history(limit=limit, before=before))
    return [_version_out(v) for v in versions]


@router.post("/v1/thresholds/rollback", response_model=ChangeOut, responses=ERRORS)
async def rollback(body: RollbackIn, service: Service, who: Caller, response: Response,
                   if_match: Annotated[str | None, Header()] = None) -> ChangeOut:
    """A new version equal to an old one."""
    expected = expected_version(if_match, service)
    version = await _answered(
        lambda: service.thresholds.rollback(body.version, expected=expected, who=who,
                                            reason=body.reason), versions=True)
    return _changed(version, expected, response)
