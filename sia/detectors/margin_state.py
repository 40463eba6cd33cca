"""Margin arithmetic of one subject (a customer, a rep or a product), as a few floats.

An observation is one order of a customer, or a period of a rep's or a product's
sales. It carries five sums: costed revenue R and its profit P (lines whose cost is
known), the reference value L of lines whose list (or usual) price is known with
what was paid for them, Q, and X, what the costed lines would have cost at each
product's usual cost share of its reference price (costs compared like for like,
apart from the mix). The subject's level is its margin P / R when costs are
known ("margin mode"), its price realisation Q / L otherwise. The usual level is a
revenue-weighted exponentially weighted mean (EW sums of P and R, or Q and L, over
observations), so large orders weigh more, as in a margin report.

A drop is a run of `sustain` consecutive observations each at least `min_drop` below
the usual level as it stood when the run began (or, in margin mode, below the
`floor_margin` while the usual level was above it), whose pooled level is also
significant: drop * sqrt(run length) / sd >= min_z, with sd the EW standard
deviation of observation levels. The drop opens an alert (hysteresis: nothing more
is raised about the subject while it is open). A run of `sustain` observations back
at or above the old usual level less `recover_within` closes it as recovered; when
the usual level itself has sunk to the new level (a new normal), it closes silently.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from sia.detectors.packing import restore_values, sparse_values

# [count, R, P, L, Q, base level, base discount, day of the first, expected cost X]
Run = list[float]


class Opened(NamedTuple):
    """An open drop: what was seen when it opened (kept until it recovers; a snapshot keeps
    only what a recovery needs: event_id, day, base, level, recover_at and margin)."""

    event_id: str  # first observation of the run (dedup key, evidence)
    day: float  # day it opened
    base: float  # usual level before the run
    level: float  # pooled level of the run
    recover_at: float  # level the subject must sustain to recover
    length: int  # observations in the run
    base_discount: float  # usual discount depth before the run (-1: unknown)
    discount: float  # discount depth over the run (-1: unknown)
    since: float  # day of the run's first observation
    margin: bool  # margin mode (else price realisation)
    cost_vs_usual: float  # run's cost / cost at the products' usual costs (-1: unknown)


class Outcome(NamedTuple):
    """What an observation revealed: an opened drop, or a recovery of an open one."""

    kind: str  # "opened" or "recovered"
    opened: Opened
    length: int = 0  # recovery: observations back at the old level
    level: float = 0.0  # recovery: their pooled level


class Thresholds(NamedTuple):
    """The numbers `fold` needs, pre-computed from the detector's Params."""

    alpha: float  # weight of a new observation in the usual level (2 / (span + 1))
    min_history: int
    min_drop: float
    min_z: float
    sustain: int
    floor: float
    recover_within: float


def _clip(x: float) -> float:
    """Bound a level: margins below -100% (cost over twice the price, or next to nothing
    paid) count as -100%, and realisation above 200% as 200%, so a free line with a cost
    or an odd price cannot swamp a subject's statistics."""
    return -1.0 if x < -1.0 else (2.0 if x > 2.0 else x)


class MarginState:
    """Usual margin and price realisation of one subject, a run in progress, an open drop."""

    __slots__ = ("first", "last", "n", "opened", "paid", "profit", "ref", "rev", "run",
                 "run_event", "var")

    def __init__(self) -> None:
        self.n = 0  # observations
        self.first = 0.0  # day of the first observation
        self.last = 0.0  # day of the latest observation
        self.rev = 0.0  # EW costed revenue per observation
        self.profit = 0.0  # EW profit per observation
        self.ref = 0.0  # EW reference value (list or usual price x quantity)
        self.paid = 0.0  # EW paid for those lines
        self.var = 0.0  # EW variance of observation levels around the usual level
        self.run: Run | None = None
        self.run_event = ""  # event id of the run's first observation
        self.opened: Opened | None = None

    @property
    def margin_mode(self) -> bool:
        """Costs are known: the level is margin, not price realisation."""
        return self.rev > 0.0

    def level(self) -> float | None:
        """The usual level: margin share, or price realisation (paid / reference)."""
        if self.rev > 0.0:
            return _clip(self.profit / self.rev)
        if self.ref > 0.0:
            return _clip(self.paid / self.ref)
        return None

    def discount(self) -> float:
        """Usual discount depth, 1 - paid / reference; -1 when unknown."""
        return 1.0 - self.paid / self.ref if self.ref > 0.0 else -1.0

    def per_quarter(self) -> float:
        """Observations a quarter, over the subject's history (counted as a quarter at least)."""
        return self.n * 91.0 / max(self.last - self.first, 91.0)

    def fold(self, rev: float, profit: float, ref: float, paid: float, expected: float,
             day: float, event_id: str, t: Thresholds,
             since: float | None = None) -> Outcome | None:
        """Learn from one observation (started on `since`, seen on `day`); say when it opens
        a drop or closes one."""
        margin = self.rev > 0.0 or rev > 0.0
        if margin and self.rev <= 0.0 and self.n:
            self.run, self.var, self.opened = None, 0.0, None  # costs appear: start over
        base = self.level()
        base_discount = self.discount()
        if margin:
            level = _clip(profit / rev) if rev > 0.0 else None
        else:
            level = _clip(paid / ref) if ref > 0.0 else None
        warm = self.n >= t.min_history
        self.n += 1
        if self.n == 1:
            self.first = self.last = day
        elif day > self.last:
            self.last = day
        a = t.alpha if t.alpha * self.n > 1.0 else 1.0 / self.n
        self.rev += a * (rev - self.rev)
        self.profit += a * (profit - self.profit)
        self.ref += a * (ref - self.ref)
        self.paid += a * (paid - self.paid)
        if level is None or base is None:
            return None
        diff = level - base
        self.var = (1.0 - a) * (self.var + a * diff * diff)
        if not warm:
            return None
        if self.opened is None:
            return self._watch(level, base, base_discount, (rev, profit, ref, paid, expected),
                               day, day if since is None else since, event_id, margin, t)
        return self._recover(level, (rev, profit, ref, paid, expected), event_id, margin, t)

    def _watch(self, level: float, base: float, base_discount: float,
               sums: tuple[float, float, float, float, float], day: float, since: float,
               event_id: str, margin: bool, t: Thresholds) -> Outcome | None:
        """Closed: extend or break the run of low observations; open a drop when sustained."""
        run = self.run
        run_base = base if run is None else run[5]
        floor_low = margin and level < t.floor <= run_base
        if not (level < run_base - t.min_drop or floor_low):
            self.run = None
            return None
        if run is None:
            run = self.run = [0.0, 0.0, 0.0, 0.0, 0.0, base, base_discount, since, 0.0]
            self.run_event = event_id
        _add(run, sums)
        count = int(run[0])
        if count < t.sustain:
            return None
        pooled = _pooled(run, margin)
        drop = run_base - pooled
        sd = math.sqrt(self.var)
        significant = drop >= t.min_drop and (sd <= 0.0 or drop * math.sqrt(count) / sd >= t.min_z)
        below_floor = margin and pooled < t.floor <= run_base
        if not (significant or below_floor):
            return None
        recover_at = run_base - t.recover_within
        if below_floor:
            recover_at = max(recover_at, min(t.floor + t.recover_within, run_base))
        run_discount = 1.0 - run[4] / run[3] if run[3] > 0.0 else -1.0
        cost = run[1] - run[2]
        cost_vs_usual = cost / run[8] if margin and run[8] > 0.0 else -1.0
        self.opened = Opened(self.run_event, day, run_base, pooled, recover_at, count,
                             run[6], run_discount, run[7], margin, cost_vs_usual)
        self.run = None
        return Outcome("opened", self.opened)

    def _recover(self, level: float, sums: tuple[float, float, float, float, float],
                 event_id: str, margin: bool, t: Thresholds) -> Outcome | None:
        """Open: a sustained return to the old level recovers; a new normal closes silently."""
        opened = self.opened
        assert opened is not None
        usual = self.level()
        if level < opened.recover_at:
            self.run = None
            if usual is not None and usual <= opened.level + t.min_drop / 2:
                self.opened = None  # the usual level has sunk to the new one: re-arm
            return None
        run = self.run
        if run is None:
            run = self.run = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            self.run_event = event_id
        _add(run, sums)
        if int(run[0]) < t.sustain:
            return None
        self.opened, self.run = None, None
        return Outcome("recovered", opened, int(run[0]), _pooled(run, margin))

    def __getstate__(self) -> tuple[object, ...]:
        o = self.opened  # what a recovery needs of it, without the class name
        opened = None if o is None else (o.event_id, o.day, o.base, o.level, o.recover_at,
                                         o.margin)
        # fields at their initial value (no run, nothing open, no costs) are left out;
        # the tuple is wrapped so subclasses can append their own fields after it
        return (sparse_values((self.n, self.first, self.last, self.rev, self.profit, self.ref,
                               self.paid, self.var, opened, self.run, self.run_event),
                              _MARGIN_DEFAULTS),)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.n, self.first, self.last, self.rev, self.profit, self.ref, self.paid,
         self.var, opened, self.run, self.run_event) = restore_values(state[0],
                                                                      _MARGIN_DEFAULTS)
        self.opened = None if opened is None else Opened(
            opened[0], opened[1], opened[2], opened[3], opened[4], 0, -1.0, -1.0, opened[1],
            opened[5], -1.0)


# initial values of (n, first, last, rev, profit, ref, paid, var, opened, run, run_event)
_MARGIN_DEFAULTS: tuple[object, ...] = (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, None, "")


def _add(run: Run, sums: tuple[float, float, float, float, float]) -> None:
    run[0] += 1.0
    run[1] += sums[0]
    run[2] += sums[1]
    run[3] += sums[2]
    run[4] += sums[3]
    run[8] += sums[4]


def _pooled(run: Run, margin: bool) -> float:
    """Revenue-weighted level of the observations of a run."""
    return _clip(run[2] / run[1] if margin else run[4] / run[3])


class BucketState(MarginState):
    """A rep's margin: sales are pooled into periods before they are learned.

    `pending` holds the open period: [start day, R, P, L, Q, X], and `pending_event`
    the id of its latest event.
    """

    __slots__ = ("pending", "pending_event")

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[float] | None = None
        self.pending_event = ""

    def __getstate__(self) -> tuple[object, ...]:
        return (*super().__getstate__(), self.pending, self.pending_event)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        super().__setstate__(state[:-2])
        self.pending, self.pending_event = state[-2:]


class ProductState(BucketState):
    """A product's margin, pooled into periods, and what prices and costs it as a line.

    Besides a rep's state: its usual unit price (a frugal streaming median of the
    prices paid, the reference when no list price is known), the first price seen
    (`anchor`, the fixed reference of the product's own price realisation), its
    usual cost as a share of the reference price (`cost_ratio`), and the list price
    and unit cost of its catalogue record (used when a line does not carry them).
    """

    __slots__ = ("anchor", "cost_ratio", "list_price", "unit_cost", "usual")

    def __init__(self) -> None:
        super().__init__()
        self.usual = 0.0
        self.anchor = 0.0
        self.cost_ratio = 0.0
        self.list_price: float | None = None
        self.unit_cost: float | None = None

    def __getstate__(self) -> tuple[object, ...]:
        return (*super().__getstate__(), self.usual, self.anchor, self.cost_ratio,
                self.list_price, self.unit_cost)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        super().__setstate__(state[:-5])
        (self.usual, self.anchor, self.cost_ratio, self.list_price,
         self.unit_cost) = state[-5:]
