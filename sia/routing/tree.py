"""The routing tree of config/routing.yaml: which receivers get an alert, and when.

In the manner of Alertmanager's route tree. Layout::

    receivers:                          # named receivers, referred to by routes
      owner_rep: {kind: owner_rep}
      ops: {kind: slack_channel, channel: "#sales-ops"}
    team_channels: {UK: "#sales-uk", default: "#sales-alerts"}
    route:                              # the root: matches every alert
      receivers: [owner_rep]
      group_wait_minutes: 10            # alerts about one account inside it: one message
      digest_below: medium              # lower severities go to the daily digest
      daily_budget: 8                   # immediate alerts per rep per day (null: no limit)
      quiet_hours: "19:00-07:30"        # recipient's local time (null: none)
      digest_at: "08:00"                # recipient's local time
      routes:                           # children, tried in order
        - name: performance             # optional; the path uses the index otherwise
          match: {detector: performance, severity: [medium, high]}
          severity_at_least: ...        # (inside match) severity at or above
          receivers: [rep, manager]
          continue: false               # true: keep trying the next siblings

An alert goes down from the root: a node matches when each of its `match` keys holds
(a list means any of its values); its children are tried in order, stopping at the first
that matches unless that child says `continue: true`. The deepest matching nodes win; a
node none of whose children match is itself the result. Children inherit receivers and
the timing settings of their parent unless they set them; `continue` is per node.

A `detector` matcher must name a registered detector (a typo would never match). A tree
is at most MAX_DEPTH routes deep and MAX_NODES routes in all: a YAML alias that refers
back to an enclosing route (a loop) or fans out (aliases of aliases) is a ConfigError
naming the file and the place, not a RecursionError or a hang.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, NoReturn

from sia.config import ConfigError, config_dir, load_yaml
from sia.detectors.names import check_detector
from sia.findings import Severity
from sia.routing.receivers import (
    Receiver,
    parse_receivers,
    parse_team_channels,
    receiver_names,
)

SEVERITIES = tuple(s.value for s in Severity)
MATCH_KEYS = ("detector", "kind", "severity", "segment", "team", "region", "subject_kind")
SETTING_KEYS = ("group_wait_minutes", "digest_below", "daily_budget", "quiet_hours",
                "digest_at")
NODE_KEYS = frozenset({"name", "match", "receivers", "continue", "routes", *SETTING_KEYS})
TOP_KEYS = ("receivers", "route", "team_channels")
MAX_DEPTH = 32  # routes below the root
MAX_NODES = 2_000  # routes in the whole tree
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def default_routes_file() -> Path:
    """The routing.yaml in the configuration folder."""
    return config_dir() / "routing.yaml"


@dataclass(frozen=True)
class QuietHours:
    """A daily window of local time without immediate alerts; may wrap past midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class RouteSettings:
    """Timing settings of a route, after inheritance (defaults at the root)."""

    group_wait_minutes: float = 10.0
    digest_below: Severity = Severity.MEDIUM
    daily_budget: int | None = 8
    quiet_hours: QuietHours | None = None
    digest_at: time = time(8, 0)

    def as_stored(self) -> dict[str, Any]:
        """Plain, JSON-storable settings, as a planned delivery keeps them (no daily
        budget: a million)."""
        return {
            "group_wait_minutes": self.group_wait_minutes,
            "digest_below": self.digest_below.value,
            "daily_budget": self.daily_budget if self.daily_budget is not None else 1_000_000,
            "quiet_hours": str(self.quiet_hours) if self.quiet_hours else None,
            "digest_at": f"{self.digest_at:%H:%M}",
        }

    def goes_to_digest(self, severity: str) -> bool:
        """Whether an alert of this severity waits for the daily digest."""
        return Severity(severity).rank < self.digest_below.rank

    def __str__(self) -> str:
        budget = "no daily budget" if self.daily_budget is None \
            else f"budget {self.daily_budget}/rep/day"
        return (f"group wait {self.group_wait_minutes:g} min, digest below "
                f"{self.digest_below.value}, {budget}, quiet hours "
                f"{self.quiet_hours or 'none'}, digest at {self.digest_at:%H:%M}")


@dataclass(frozen=True)
class Matcher:
    """What a node requires of an alert's attributes; empty matches everything."""

    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    severity_at_least: Severity | None = None

    def matches(self, attrs: Mapping[str, str | None]) -> bool:
        """Every key holds (one of its values); a missing attribute does not match."""
        for key, wanted in self.values:
            if attrs.get(key) not in wanted:
                return False
        if self.severity_at_least is not None:
            severity = attrs.get("severity")
            if severity not in SEVERITIES or \
                    Severity(severity).rank < self.severity_at_least.rank:
                return False
        return True

    def __str__(self) -> str:
        parts = [f"{k}={'|'.join(v)}" for k, v in self.values]
        if self.severity_at_least is not None:
            parts.append(f"severity>={self.severity_at_least.value}")
        return ", ".join(parts) or "any"


@dataclass(frozen=True)
class RouteMatch:
    """One matching node: its path, its receivers and its settings (inherited)."""

    path: str
    receivers: tuple[Receiver, ...]
    settings: RouteSettings


@dataclass(frozen=True)
class Route:
    """A node of the routing tree, with receivers and settings already inherited."""

    path: str
    matcher: Matcher
    receivers: tuple[Receiver, ...]
    settings: RouteSettings
    continue_matching: bool = False
    routes: tuple[Route, ...] = ()

    def match(self, attrs: Mapping[str, str | None]) -> list[RouteMatch]:
        """The deepest matching nodes under this one, in tree order (Alertmanager's rule)."""
        if not self.matcher.matches(attrs):
            return []
        found: list[RouteMatch] = []
        for child in self.routes:
            hits = child.match(attrs)
            found.extend(hits)
            if hits and not child.continue_matching:
                break
        return found or [RouteMatch(self.path, self.receivers, self.settings)]

    def walk(self) -> Iterator[Route]:
        """This node and every node below it, depth-first in order."""
        yield self
        for child in self.routes:
            yield from child.walk()

    def find(self, path: str) -> Route | None:
        """The node with this path."""
        return next((node for node in self.walk() if node.path == path), None)


def load_routes(path: Path | None = None) -> Route:
    """Read and validate routing.yaml; errors name the file and the key path."""
    path = path or default_routes_file()
    data = load_yaml(path)
    for key in data:
        if key not in TOP_KEYS:
            _fail(path, str(key), f"unknown top-level key; known: {', '.join(TOP_KEYS)}")
    channels = parse_team_channels(data.get("team_channels"), path)
    receivers = parse_receivers(data.get("receivers"), channels, path)
    root = data.get("route")
    if not isinstance(root, dict):
        _fail(path, "route", "required: the root route, a mapping with receivers")
    for key in ("match", "continue"):
        if key in root:
            _fail(path, f"route.{key}", "not allowed on the root, which matches every alert "
                  "(put it on a child under routes)")
    if not root.get("receivers"):
        _fail(path, "route.receivers", "required on the root: a non-empty list of receivers")
    try:
        return _node(root, "route", "", RouteSettings(), (), receivers, path,
                     walk=_Walk())
    except RecursionError:  # a last resort: _Walk bounds the depth well before this
        _fail(path, "route", "nested too deeply")


class _Walk:
    """What the parse has visited: the routes above the current one, and how many."""

    def __init__(self) -> None:
        self.above: list[int] = []  # ids of the enclosing route mappings
        self.nodes = 0


def _node(raw: Any, where: str, parent_path: str, inherited: RouteSettings,
          parent_receivers: tuple[Receiver, ...], defined: dict[str, Receiver],
          path: Path, index: int | None = None, *, walk: _Walk) -> Route:
    if not isinstance(raw, dict):
        _fail(path, where, "must be a mapping")
    if id(raw) in walk.above:
        _fail(path, where, "refers back to a route that encloses it (a YAML alias loop)")
    if len(walk.above) > MAX_DEPTH:
        _fail(path, where, f"routes nest more than {MAX_DEPTH} deep")
    walk.nodes += 1
    if walk.nodes > MAX_NODES:
        _fail(path, where, f"more than {MAX_NODES} routes (YAML aliases repeating routes?)")
    for key in raw:
        if key not in NODE_KEYS:
            _fail(path, f"{where}.{key}", f"unknown key; known: {', '.join(sorted(NODE_KEYS))}")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str | int) or isinstance(name, bool)
                             or not str(name).strip() or "/" in str(name)):
        _fail(path, f"{where}.name", f"must be a non-empty name without '/', got {name!r}")
    own = str(name).strip() if name is not None else ("root" if index is None else str(index))
    node_path = f"{parent_path}/{own}" if parent_path else own
    receivers = parent_receivers
    if "receivers" in raw:
        receivers = _receivers(raw["receivers"], defined, path, f"{where}.receivers")
    settings = _settings(raw, inherited, path, where)
    go_on = raw.get("continue", False)
    if not isinstance(go_on, bool):
        _fail(path, f"{where}.continue", f"must be true or false, got {go_on!r}")
    children = raw.get("routes") or []
    if not isinstance(children, list):
        _fail(path, f"{where}.routes", "must be a list of routes")
    routes: list[Route] = []
    walk.above.append(id(raw))
    for i, child in enumerate(children):
        node = _node(child, f"{where}.routes[{i}]", node_path, settings, receivers, defined,
                     path, i, walk=walk)
        if any(sibling.path == node.path for sibling in routes):
            _fail(path, f"{where}.routes[{i}].name",
                  f"{node.path!r} is already the path of an earlier sibling")
        routes.append(node)
    walk.above.pop()
    return Route(path=node_path, matcher=_matcher(raw.get("match"), path, f"{where}.match"),
                 receivers=receivers, settings=settings, continue_matching=go_on,
                 routes=tuple(routes))


def _receivers(raw: Any, defined: dict[str, Receiver], path: Path,
               where: str) -> tuple[Receiver, ...]:
    if not isinstance(raw, list):
        _fail(path, where, "must be a list of receiver names")
    chosen = []
    for i, name in enumerate(raw):
        if not isinstance(name, str) or name not in defined:
            _fail(path, f"{where}[{i}]", f"{name!r} is not a receiver defined under receivers; "
                  f"defined: {receiver_names(defined)}")
        chosen.append(defined[name])
    return tuple(chosen)


def _matcher(raw: Any, path: Path, where: str) -> Matcher:
    if raw is None:
        return Matcher()
    if not isinstance(raw, dict):
        _fail(path, where, "must be a mapping, e.g. {detector: drift}")
    values = []
    for key, value in raw.items():
        if key == "severity_at_least":
            continue
        if key not in MATCH_KEYS:
            _fail(path, f"{where}.{key}", "unknown key; known: "
                  f"{', '.join(sorted((*MATCH_KEYS, 'severity_at_least')))}")
        many = isinstance(value, list)
        items = value if many else [value]
        if not items:
            _fail(path, f"{where}.{key}", "must not be an empty list")
        for i, item in enumerate(items):
            at = f"{where}.{key}[{i}]" if many else f"{where}.{key}"
            if isinstance(item, bool) or not isinstance(item, str | int):
                _fail(path, at, f"must be a value or a list of values, got {item!r}")
            if key == "severity":
                _severity(item, path, at)
            if key == "detector":
                check_detector(item, path, at)
        values.append((str(key), tuple(str(item) for item in items)))
    at_least = None
    if "severity_at_least" in raw:
        at_least = _severity(raw["severity_at_least"], path, f"{where}.severity_at_least")
    return Matcher(tuple(values), at_least)


def _settings(raw: dict[str, Any], inherited: RouteSettings, path: Path,
              where: str) -> RouteSettings:
    changes: dict[str, Any] = {}
    if "group_wait_minutes" in raw:
        wait = raw["group_wait_minutes"]
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 1440:
            _fail(path, f"{where}.group_wait_minutes",
                  f"must be a number of minutes in [0, 1440], got {wait!r}")
        changes["group_wait_minutes"] = float(wait)
    if "digest_below" in raw:
        changes["digest_below"] = _severity(raw["digest_below"], path, f"{where}.digest_below")
    if "daily_budget" in raw:
        budget = raw["daily_budget"]
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                                   or budget < 1):
            _fail(path, f"{where}.daily_budget",
                  f"must be a whole number >= 1, or null for no limit; got {budget!r}")
        changes["daily_budget"] = budget
    if "quiet_hours" in raw:
        changes["quiet_hours"] = _quiet_hours(raw["quiet_hours"], path, f"{where}.quiet_hours")
    if "digest_at" in raw:
        changes["digest_at"] = _time(raw["digest_at"], path, f"{where}.digest_at")
    return dataclasses.replace(inherited, **changes)


def _severity(value: Any, path: Path, where: str) -> Severity:
    if value not in SEVERITIES:
        _fail(path, where, f"{value!r} is not one of {', '.join(SEVERITIES)}")
    return Severity(value)


def _time(value: Any, path: Path, where: str) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        _fail(path, where, f'write the time in quotes, e.g. "19:00" (YAML reads 19:00 '
              f"unquoted as the number {19 * 60}); got {value!r}")
    found = _TIME.match(value) if isinstance(value, str) else None
    if found is None or int(found[1]) > 23 or int(found[2]) > 59:
        _fail(path, where, f'must be a local time "HH:MM", got {value!r}')
    return time(int(found[1]), int(found[2]))


def _quiet_hours(value: Any, path: Path, where: str) -> QuietHours | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.count("-") != 1:
        _fail(path, where, f'must be "HH:MM-HH:MM" (local time), or null; got {value!r}')
    start, end = (_time(part.strip(), path, where) for part in value.split("-"))
    if start == end:
        _fail(path, where, f"{value!r} is empty: start and end are the same time")
    return QuietHours(start, end)


def _fail(path: Path, where: str, message: str) -> NoReturn:
    raise ConfigError(f"{path}: {where}: {message}")
