"""The arithmetic of the performance detector: calendar periods, a pooled seasonal index,
and one small online forecast per rep (or team) and metric.

Each metric of a rep is a series of per-period totals (won revenue, won deals,
activities). Its forecast is multiplicative Holt-Winters without trend: a level per rep
(exponentially weighted, deseasonalised) times a seasonal factor per month of the
quarter (or of the year) that is pooled over all reps, because one rep's history is far
too short to learn a season while the whole sales force's is not (river's HoltWinters
would learn one season per rep, and give no interval).

The spread is modelled rather than estimated per rep, because a rep's few dozen weekly
totals are far too lumpy to estimate a variance from: counts (won deals, activities)
scatter like a Poisson count, variance = phi * forecast, and revenue like a compound
Poisson sum of deals, variance = phi * forecast * E[deal^2] / E[deal] with the rep's own
deal sizes. phi, the over-dispersion, is learned per metric across all reps.

A *window* is the last few periods, judged against the forecast made from the level the
series had before the window began (the dip does not lower its own yardstick); its
total has variance dispersion * expected total, assuming independent periods, which
gives the prediction interval the detector compares it with.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from sia.detectors.rhythm import DAY

METRICS = ("revenue", "deals", "activities")
PERIODS = ("week", "month")
SEASONS = ("quarter", "year", "none")
RING = 13  # periods kept per series for comparisons with peers over the same window
_EPOCH = date(1970, 1, 1)


# -- the calendar ------------------------------------------------------------------------

def period_of(epoch_seconds: float, period: str) -> int:
    """Index of the calendar period (ISO week from Monday, or month) holding the moment, UTC."""
    day = math.floor(epoch_seconds / DAY)
    if period == "week":
        return (day + 3) // 7  # day 4 since the epoch (1970-01-05) is a Monday
    d = _EPOCH + timedelta(days=day)
    return d.year * 12 + d.month - 1


def period_start(index: int, period: str) -> date:
    """First day of a period."""
    if period == "week":
        return _EPOCH + timedelta(days=7 * index - 3)
    return date(index // 12, index % 12 + 1, 1)


def period_end(index: int, period: str) -> datetime:
    """The moment a period closes: midnight UTC starting the next one."""
    start = period_start(index + 1, period)
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def season_size(period: str, season: str) -> int:
    """Number of seasonal positions: the months of a quarter or of a year."""
    return {"quarter": 3, "year": 12}.get(season, 1)


def season_position(index: int, period: str, season: str) -> int:
    """Month of the quarter (0 = first) or of the year a period falls in; a week counts
    in the month of its Thursday, as ISO weeks do for years."""
    if season == "none":
        return 0
    start = period_start(index, period)
    if period == "week":
        start += timedelta(days=3)
    return (start.month - 1) % 3 if season == "quarter" else start.month - 1


# -- the pooled season ---------------------------------------------------------------------

class Season:
    """Multiplicative seasonal factors per metric and position, learned from all reps."""

    __slots__ = ("counts", "factors")

    def __init__(self, size: int) -> None:
        self.factors = [[1.0] * size for _ in METRICS]
        self.counts = [[0] * size for _ in METRICS]

    def factor(self, metric: int, position: int) -> float:
        """Expected share of the usual level at this position (1.0 until learned)."""
        return self.factors[metric][position]

    def learn(self, metric: int, position: int, actual: float, level: float,
              alpha: float) -> None:
        """Move the factor toward actual / level (totals over all reps); the prior 1.0
        counts as one observation, so the first cycles move it by 1/2, 1/3, ..."""
        if level <= 0:
            return
        n = self.counts[metric][position]
        rate = max(alpha, 1.0 / (n + 2))
        current = self.factors[metric][position]
        self.factors[metric][position] = current + rate * (actual / level - current)
        self.counts[metric][position] = n + 1

    def __getstate__(self) -> tuple[object, ...]:
        return self.counts, self.factors

    def __setstate__(self, state: tuple[list[list[int]], list[list[float]]]) -> None:
        self.counts, self.factors = state


class Dispersion:
    """Over-dispersion per metric, pooled over all reps: the observed squared error of a
    period's total divided by what the Poisson model predicts for it (1.0 for Poisson)."""

    __slots__ = ("counts", "phi")

    def __init__(self) -> None:
        self.phi = [1.0] * len(METRICS)
        self.counts = [0] * len(METRICS)

    def learn(self, metric: int, ratios: list[float], alpha: float) -> None:
        """One period's ratios (actual - forecast)^2 / (unit * forecast) over warm reps."""
        if not ratios:
            return
        n = self.counts[metric]
        rate = max(alpha, 1.0 / (n + 2))  # the prior 1.0 counts as one period
        self.phi[metric] += rate * (sum(ratios) / len(ratios) - self.phi[metric])
        self.counts[metric] = n + 1

    def __getstate__(self) -> tuple[object, ...]:
        return self.counts, self.phi

    def __setstate__(self, state: tuple[list[int], list[float]]) -> None:
        self.counts, self.phi = state


# -- one series ----------------------------------------------------------------------------

class Window:
    """Totals of the last n closed periods against the forecast made before them."""

    __slots__ = ("actual", "below", "expected", "periods", "spread", "start")

    def __init__(self, actual: float, expected: float, spread: float, below: int,
                 periods: int, start: int) -> None:
        self.actual = actual
        self.expected = expected  # level before the window times its seasonal factors
        self.spread = spread  # standard deviation of the total
        self.below = below  # periods of the window below their forecast
        self.periods = periods
        self.start = start  # period index of the window's first period

    @property
    def share(self) -> float:
        """Share of the forecast achieved."""
        return self.actual / self.expected if self.expected > 0 else 1.0


class Series:
    """Online forecast of one metric of one rep or team, and the last RING periods with
    the forecast basis before each (so a window is judged against the level the series
    had before it began: a dip does not lower its own yardstick)."""

    __slots__ = ("active", "fired", "last", "level", "periods", "ring")

    def __init__(self) -> None:
        self.level = 0.0  # usual per-period total, deseasonalised
        self.periods = 0  # periods closed since the first non-zero one
        self.active = 0  # periods with a non-zero total
        self.last = 0  # index of the last period closed
        self.fired = False  # a dip was reported and the series has not recovered since
        # per closed period: (actual, seasonal factor, level before, dispersion (variance
        # per unit of forecast) before, active periods before)
        self.ring: list[tuple[float, float, float, float, int]] = []

    def forecast(self, season: float) -> float:
        """One-period-ahead forecast (0 before the series started)."""
        return self.level * season if self.periods else 0.0

    def close(self, actual: float, season: float, index: int, alpha: float,
              dispersion: float) -> None:
        """Learn one closed period's total; `dispersion` is the variance of a period's
        total per unit of its forecast, as the detector models it now."""
        if self.periods == 0 and actual <= 0:
            return  # not started: leading empty periods say nothing
        self.ring.append((actual, season, self.level, dispersion, self.active))
        if len(self.ring) > RING:
            del self.ring[0]
        self.periods += 1
        self.active += actual > 0
        self.last = index
        self.level += max(alpha, 1.0 / self.periods) * (actual / max(season, 1e-9) - self.level)

    def window(self, periods: int, warm: int = 0) -> Window | None:
        """The last `periods` periods against the forecast from the level before them;
        None when the series has not that many, or was not warm (`warm` active periods)
        when they began."""
        if periods > len(self.ring):
            return None
        rows = self.ring[-periods:]
        _, _, level, dispersion, active = rows[0]
        if level <= 0 or active < warm:
            return None
        actual = sum(r[0] for r in rows)
        expected = level * sum(r[1] for r in rows)
        below = sum(r[0] < level * r[1] for r in rows)
        return Window(actual, expected, math.sqrt(max(dispersion, 0.0) * expected),
                      below, periods, self.last - periods + 1)

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


class RepBook:
    """What one rep did in the open period, and the series of closed ones."""

    __slots__ = ("activities", "deal_size", "deal_square", "deals_seen", "last_event",
                 "lost_streak", "order_amount", "orders", "pipeline", "series", "won_amount",
                 "won_deals")

    def __init__(self) -> None:
        self.won_amount = 0.0  # won opportunities in the open period
        self.won_deals = 0
        self.order_amount = 0.0  # orders (used for reps without a pipeline in the stream)
        self.orders = 0
        self.activities = 0  # interactions and opportunity stage changes
        self.pipeline = False  # the rep's opportunities are in the stream: count wins
        self.lost_streak = 0  # deals lost in a row, most recent last
        self.last_event = ""  # evidence: the last event credited to the rep
        self.deal_size = 0.0  # EW mean of the rep's deal amounts, and of their squares
        self.deal_square = 0.0
        self.deals_seen = 0
        self.series = tuple(Series() for _ in METRICS)

    def add_deal(self, amount: float, alpha: float) -> None:
        """Learn the size of a won deal (or of an order, for reps without a pipeline)."""
        self.deals_seen += 1
        rate = max(alpha, 1.0 / self.deals_seen)
        self.deal_size += rate * (amount - self.deal_size)
        self.deal_square += rate * (amount * amount - self.deal_square)

    def unit(self, metric: int) -> float:
        """Poisson variance per unit of forecast: 1 for counts, E[deal^2] / E[deal] for
        revenue (a compound Poisson sum of deals)."""
        if metric or self.deal_size <= 0:
            return 1.0
        return self.deal_square / self.deal_size

    def totals(self) -> tuple[float, float, float]:
        """(revenue, deals, activities) of the open period; wins when the rep has a pipeline
        in the stream, orders otherwise (a won deal often is an order too: never both)."""
        if self.pipeline:
            return self.won_amount, float(self.won_deals), float(self.activities)
        return self.order_amount, float(self.orders), float(self.activities)

    def reset(self) -> None:
        """Open a new period."""
        self.won_amount = self.order_amount = 0.0
        self.won_deals = self.orders = self.activities = 0

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(self.__slots__, state, strict=True):
            setattr(self, name, value)


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
