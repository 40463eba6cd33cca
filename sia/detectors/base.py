"""The detector plug-in contract: a small base class and a registry by name.

A detector learns online from the events it observes and returns findings, from
`observe` when an event arrives and from `tick` when the clock moves (absence is a
signal too). Its thresholds are a frozen `Params` dataclass whose fields are the
constructor's keywords; the engine hands each call the thresholds of the customer's
team and segment through `ctx.params`.
"""

from __future__ import annotations

import dataclasses
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from sia.catalog import Catalog
from sia.engine.population import Outbox
from sia.events.models import Event
from sia.findings import Finding

T = TypeVar("T")
Direction = Literal["higher", "lower"]


def threshold(default: T, help: str, *, low: float | None = None, high: float | None = None,
              low_open: bool = False, high_open: bool = False, unit: str = "",
              choices: tuple[str, ...] = (), many: bool = False,
              fewer_alerts: Direction | None = None, learning: bool = False) -> T:
    """A threshold of a detector's Params: its default, what it changes in the alerts
    (`help`, for the managers who tune it), its allowed range (`low` and `high`, inclusive
    unless `low_open` or `high_open`) or its allowed words (`choices`; `many`: a
    comma-separated list of them, checked by the class), and its unit. Params enforces
    the range and single choices itself; `check` keeps the rules across fields.

    Every threshold is one of two kinds, declared: a firing threshold, a bar a finding
    must pass, with the direction that gives fewer alerts (`fewer_alerts`: "higher" or
    "lower"; a rep may move it that way for their own customers), or a `learning`
    parameter, which shapes what the detector learns (a half-life, a window, a model
    setting) and which reps may not touch."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open,
            "high_open": high_open, "unit": unit, "choices": choices, "many": many,
            "fewer_alerts": fewer_alerts, "learning": learning}
    return dataclasses.field(default=default, metadata=meta)


def stricter(meta: Mapping[str, Any], a: Any, b: Any) -> Any:
    """Of two values of a firing threshold, the one that gives fewer alerts."""
    return max(a, b) if meta.get("fewer_alerts") == "higher" else min(a, b)


def _number(x: float) -> str:
    return f"{x:g}"


def allowed(meta: Mapping[str, Any]) -> str:
    """The declared range of a threshold in words: "at least 0.5 and below 1"; "" if none."""
    low, high = meta.get("low"), meta.get("high")
    words = []
    if low is not None:
        words.append(("above " if meta.get("low_open") else "at least ") + _number(low))
    if high is not None:
        words.append(("below " if meta.get("high_open") else "at most ") + _number(high))
    choices = meta.get("choices") or ()
    if choices:
        words.append(("a comma-separated list of " if meta.get("many") else "one of ")
                     + ", ".join(choices))
    return " and ".join(words)


def _refusal(name: str, value: Any, meta: Mapping[str, Any]) -> str | None:
    """Why `value` is outside the declared range or choices of a threshold, or None."""
    low, high = meta.get("low"), meta.get("high")
    # written as what is inside, so that NaN is outside every range
    inside = (low is None or (value > low if meta.get("low_open") else value >= low)) \
        and (high is None or (value < high if meta.get("high_open") else value <= high))
    choices = meta.get("choices") or ()
    if inside and not (choices and not meta.get("many") and value not in choices):
        return None
    interval = ""
    if low is not None and high is not None:
        interval = "in " + ("(" if meta.get("low_open") else "[") + _number(low) + ", " \
            + _number(high) + (")" if meta.get("high_open") else "]") + " ("
    return f"{name} must be {interval}{allowed(meta)}{')' if interval else ''}, got {value!r}"


@dataclasses.dataclass(frozen=True)
class Params:
    """Base of every detector's thresholds; subclasses declare fields with `threshold`
    (default, description, range) and add `check` for rules across fields."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = type(f.default)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            elif not isinstance(value, expected) or (
                expected is not bool and isinstance(value, bool)
            ):
                raise ValueError(
                    f"{f.name} must be {expected.__name__}, got {type(value).__name__} {value!r}"
                )
            refusal = _refusal(f.name, value, f.metadata)
            if refusal:
                raise ValueError(refusal)
        self.check()

    def check(self) -> None:
        """Raise ValueError naming the field when values break a rule across fields."""

    @staticmethod
    def require(condition: bool, message: str) -> None:
        """Raise ValueError(message) unless condition holds."""
        if not condition:
            raise ValueError(message)


P = TypeVar("P", bound=Params)


class Context(Protocol):
    """What the engine offers a detector besides the event: reference data and thresholds."""

    @property
    def catalog(self) -> Catalog:
        """Customers, products and reps seen so far."""
        ...

    def scope_of(self, customer_id: str) -> tuple[str | None, str | None]:
        """(team, segment) of a customer, for per-team and per-segment thresholds."""
        ...


class NoScopes:
    """A context with no reference data: for benchmarks and tests of bare arithmetic."""

    def __init__(self) -> None:
        self.catalog = Catalog()

    def scope_of(self, customer_id: str) -> tuple[str | None, str | None]:
        """No team, no segment."""
        return None, None


class Detector(ABC, Generic[P]):
    """Base class: learn from events, report findings."""

    name: ClassVar[str]
    params_type: ClassVar[type[Params]]
    handles: ClassVar[frozenset[str]]  # event types passed to observe
    warm_up_hint: ClassVar[str] = ""  # one line: when the detector starts speaking
    # thresholds that shape shared (global) learned state: not overridable per team/segment
    global_params: ClassVar[frozenset[str]] = frozenset()
    # whose events the detector must see together when the stream is split by key:
    # "customer" (the events topic is keyed by customer) or "rep" (a repartition by rep)
    keyed_by: ClassVar[str] = "customer"
    # Population models: what a detector learns across customers. A detector with some
    # sets `shares_population`, passes every step of their learning to `share` as an
    # update (a tuple of JSON values) and applies updates in `learn_population`. One
    # engine learns each update at once. Partitions of a split stream collect them, and
    # each applies every partition's updates, in one order, at the next tick boundary
    # (sia/engine/population.py), so all learn the same population models.
    shares_population: ClassVar[bool] = False
    population_outbox: Outbox | None = None  # set by a partition that shares

    def __init__(self, **thresholds: Any) -> None:
        self.params: P = self.params_type(**thresholds)  # type: ignore[assignment]
        self._scoped: dict[tuple[str | None, str | None], P] = {}
        self._by_rep: dict[tuple[str | None, str | None, str], P] = {}
        self._overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self._reps: frozenset[str] = frozenset()
        _UNCLAIMED.add(self)

    def set_overrides(self, overrides: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
        """Install per-team, per-segment or per-rep thresholds:
        {("team"|"segment"|"rep", name): {key: value}}. A rep's values are floors on top
        of the team's and segment's: the stricter of the two applies (see `stricter`)."""
        self._overrides = {scope: dict(values) for scope, values in overrides.items()}
        self._reps = frozenset(name for scope, name in self._overrides if scope == "rep")
        self._scoped.clear()
        self._by_rep.clear()

    @property
    def overrides(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The per-team, per-segment and per-rep thresholds installed."""
        return self._overrides

    def params_for(self, ctx: Context, customer_id: str) -> P:
        """Thresholds for one customer: defaults, then segment, then team overrides, then
        the stricter of those and the owner rep's own values."""
        if not self._overrides:
            return self.params
        scope = ctx.scope_of(customer_id)
        if self._reps:
            customer = ctx.catalog.customers.get(customer_id)
            rep = customer.owner_rep_id if customer is not None else None
            if rep is not None and rep in self._reps:
                return self._rep_params(scope, rep)
        return self._scope_params(scope)

    def _scope_params(self, scope: tuple[str | None, str | None]) -> P:
        cached = self._scoped.get(scope)
        if cached is None:
            team, segment = scope
            merged: dict[str, Any] = {}
            merged.update(self._overrides.get(("segment", segment or ""), {}))
            merged.update(self._overrides.get(("team", team or ""), {}))
            cached = dataclasses.replace(self.params, **merged) if merged else self.params
            self._scoped[scope] = cached
        return cached

    def _rep_params(self, scope: tuple[str | None, str | None], rep: str) -> P:
        key = (*scope, rep)
        cached = self._by_rep.get(key)
        if cached is None:
            base = self._scope_params(scope)
            meta = {f.name: f.metadata for f in dataclasses.fields(base)}
            raised = {k: stricter(meta[k], getattr(base, k), v)
                      for k, v in self._overrides[("rep", rep)].items()}
            try:
                cached = dataclasses.replace(base, **raised)
            except ValueError:  # checked on load; a rule across fields: the team's apply
                cached = base
            self._by_rep[key] = cached
        return cached

    @abstractmethod
    def observe(self, event: Event, ctx: Context) -> list[Finding]:
        """Learn from one event; return what it reveals (usually nothing)."""

    def tick(self, now: datetime, ctx: Context) -> list[Finding]:
        """Clock-driven detection (absence of events); default: nothing."""
        return []

    def learn_at_tick(self, now: datetime, ctx: Context) -> None:
        """Population learning that falls due at a tick boundary (drift's silences that
        ran their course), before any detector ticks it. Partitions that share
        population models call it first and exchange what it shares, so that every
        partition has learned it before it ticks, as one engine has (`tick` must then
        find it done). Default: nothing."""

    def share(self, update: tuple[Any, ...]) -> None:
        """One step of population learning: learned now, or collected for the partitions."""
        outbox = self.population_outbox
        if outbox is None or not outbox.defer:
            self.learn_population(update)
        if outbox is not None:
            outbox.append((self.name, update))

    def learn_population(self, update: tuple[Any, ...]) -> None:
        """Apply one update that `share` made (here or in another partition)."""
        raise NotImplementedError(f"{self.name} shares no population model")

    @abstractmethod
    def customer_state(self, customer_id: str) -> object | None:
        """The per-customer learned state (for snapshots sizes and tests)."""

    def bare_arithmetic(self, events: Sequence[Event]) -> Callable[[], None] | None:
        """For `sia bench`: primitives pre-extracted from `events`, and a loop that runs only
        this detector's learning arithmetic over them (no engine, no pydantic access, no
        findings). The engine's throughput is measured against the sum of these loops.
        None when the detector does not offer one (the bench then says so)."""
        return None

    @classmethod
    def unit_test_params(cls) -> dict[str, Any]:
        """Thresholds for the contract tests: small warm-up so tests stay short."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


# Detectors built (not restored from a snapshot) and not handed to an engine yet: they
# have learned nothing, so an engine can roll back to them by building them again
# (sia/engine/engine.py) instead of pickling them, which on Python 3.11 would move every
# object they hold from its inline attribute values to a dictionary: 4 to 5% slower.
_UNCLAIMED: weakref.WeakSet[Detector[Any]] = weakref.WeakSet()


def claim(detector: Detector[Any]) -> bool:
    """True when `detector` was built and not claimed yet (it has learned nothing, if
    detectors learn only in an engine); it is claimed now."""
    if detector in _UNCLAIMED:
        _UNCLAIMED.discard(detector)
        return True
    return False


def built_again(detector: Detector[Any]) -> Detector[Any]:
    """A detector as `detector` was when it was built: its class, thresholds and per-team
    and per-segment thresholds, nothing learned."""
    twin = type(detector)(**dataclasses.asdict(detector.params))
    twin.set_overrides(detector.overrides)
    _UNCLAIMED.discard(twin)
    return twin


DetectorFactory = Callable[..., Detector[Any]]
REGISTRY: dict[str, type[Detector[Any]]] = {}


def register(cls: type[Detector[Any]]) -> type[Detector[Any]]:
    """Class decorator: make a detector available by its name."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def detector_class(name: str) -> type[Detector[Any]]:
    """Look up a registered detector, with the known names in the error."""
    _load_builtin()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown detector {name!r}; known: {known}") from None


def registered() -> dict[str, type[Detector[Any]]]:
    """All registered detectors by name, built-ins included."""
    _load_builtin()
    return dict(sorted(REGISTRY.items()))


def _load_builtin() -> None:
    """Import every module of this package once: detectors register themselves."""
    import importlib
    import pkgutil

    import sia.detectors as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
