"""A customer's recent versus usual activity for the trend detector, as a few floats.

Every quantity is a decayed sum with one reference day (`seen_at`): order value and
order count at a fast and a slow half-life, new categories and quote requests or web
visits. A decayed sum S with half-life H of a steady rate r per day settles at
S = r H / ln 2, so r = S ln 2 / H; over a history shorter than the window the weights
seen so far only add up to 1 - 2^(-span/H), which the rates divide by.

"Usual" must not contain the rise it is compared with: the slow spend sum is also kept
as it stood one to two months ago (two snapshots taken at events, at least
SNAPSHOT_DAYS apart: the older one is the baseline), so the usual rate is the rate as it
was before the recent orders.
"""

from __future__ import annotations

import math

from sia.detectors.packing import restore_sparse, sparse_state

LN2 = math.log(2.0)
MONTH = 30.0  # days in "a month" of the explanations
SNAPSHOT_DAYS = 30.0  # the baseline is the slow sum as it was at least this long ago


def decay_factor(elapsed_days: float, half_life_days: float) -> float:
    """Weight left after `elapsed_days` at the given half-life (1 for no time)."""
    return 0.5 ** (elapsed_days / half_life_days) if elapsed_days > 0 else 1.0


def monthly_rate(total: float, half_life_days: float, span_days: float,
                 pending: float = 0.0) -> float:
    """Per-30-days rate of a decayed sum over a history of `span_days`.

    `pending` is an event counted this very moment: half of it is taken out, so a rate
    read right after an order is the rate mid-way between orders, not at its peak (a
    customer ordering once a quarter does not look three times busier on the day).
    """
    coverage = 1.0 - 0.5 ** (max(span_days, 1.0) / half_life_days)
    return float(max(total - pending / 2.0, 0.0) * LN2 / half_life_days * MONTH / coverage)


def mean_age(half_life_days: float, span_days: float) -> float:
    """Mean age in days of exponentially decaying weights cut off after `span_days`."""
    lam = LN2 / half_life_days
    span = max(span_days, 1e-9)
    tail = math.exp(-lam * span)
    if lam * span < 1e-6:
        return span / 2.0
    return 1.0 / lam - span * tail / (1.0 - tail)


class CustomerTrend:
    """Recent versus usual spend, frequency, breadth and interest of one customer."""

    __slots__ = (
        "base_at",
        "base_spend",
        "cats",
        "count_fast",
        "count_slow",
        "first_at",
        "hot_since",
        "interest_since",
        "last_cat",
        "new_cats",
        "next_at",
        "next_spend",
        "orders",
        "quotes_fast",
        "quotes_slow",
        "seen_at",
        "spend_fast",
        "spend_slow",
    )

    def __init__(self, at: float) -> None:
        self.first_at = at  # day of the first event of any kind (days since the epoch)
        self.seen_at = at  # reference day of every decayed sum below
        self.orders = 0
        self.spend_fast = 0.0  # decayed order value, fast half-life
        self.spend_slow = 0.0  # decayed order value, slow half-life
        self.count_fast = 0.0  # decayed order counts
        self.count_slow = 0.0
        self.cats = 0  # bit mask of the category indexes ever bought
        # counts most customers never use stay the int 0 (2 bytes pickled, a float takes 9)
        self.new_cats: float = 0  # decayed count (fast half-life) of first purchases of a category
        self.last_cat = -1  # index of the newest category bought for the first time
        self.quotes_fast: float = 0  # decayed quote requests and web visits
        self.quotes_slow: float = 0
        self.hot_since = -1  # day number the open heating-up episode started; -1: none
        self.interest_since = -1  # same for an open burst of interest
        self.base_spend = 0.0  # slow spend sum as it stood on day base_at (the baseline)
        self.base_at = -1.0  # < 0: no baseline yet
        self.next_spend = 0.0  # the newer snapshot, the next baseline
        self.next_at = at

    def advance(self, at: float, fast_hl: float, slow_hl: float) -> float:
        """Move the reference day to `at` (decaying the sums, rotating the baseline
        snapshots); returns the days elapsed (negative for a late, older event)."""
        if at - self.next_at >= SNAPSHOT_DAYS:
            self.base_spend, self.base_at = self.next_spend, self.next_at
            self.next_spend = self.spend_slow * decay_factor(at - self.seen_at, slow_hl)
            self.next_at = at
        elapsed = at - self.seen_at
        if elapsed > 0:
            fast, slow = decay_factor(elapsed, fast_hl), decay_factor(elapsed, slow_hl)
            self.spend_fast *= fast
            self.count_fast *= fast
            self.spend_slow *= slow
            self.count_slow *= slow
            if self.new_cats:
                self.new_cats *= fast
            if self.quotes_fast or self.quotes_slow:
                self.quotes_fast *= fast
                self.quotes_slow *= slow
            self.seen_at = at
        self.first_at = min(self.first_at, at)
        return elapsed

    def add_order(self, at: float, value: float, fast_hl: float, slow_hl: float) -> None:
        """Count an order of `value` placed on day `at`."""
        elapsed = self.advance(at, fast_hl, slow_hl)
        late_fast = decay_factor(-elapsed, fast_hl)  # 1 unless the order is older
        late_slow = decay_factor(-elapsed, slow_hl)
        self.spend_fast += value * late_fast
        self.spend_slow += value * late_slow
        self.count_fast += late_fast
        self.count_slow += late_slow
        self.orders += 1

    def add_categories(self, bits: int, at: float, counts_as_new: bool,
                       fast_hl: float) -> int:
        """Record categories bought (bit mask); returns how many are new to the customer."""
        fresh = bits & ~self.cats
        if not fresh:
            return 0
        self.cats |= fresh
        n = bin(fresh).count("1")
        if counts_as_new:
            self.new_cats += n * decay_factor(self.seen_at - at, fast_hl)
            self.last_cat = fresh.bit_length() - 1
        return n

    def add_quote(self, at: float, fast_hl: float, slow_hl: float) -> None:
        """Count a quote request or a web visit."""
        elapsed = self.advance(at, fast_hl, slow_hl)
        self.quotes_fast += decay_factor(-elapsed, fast_hl)
        self.quotes_slow += decay_factor(-elapsed, slow_hl)

    def __getstate__(self) -> tuple[object, ...]:
        return sparse_state(self, self.__slots__, _TREND_DEFAULTS)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        restore_sparse(self, self.__slots__, _TREND_DEFAULTS, state)


# initial values (first_at, seen_at and next_at start at the first event: never equal to
# these NaNs, so always kept), left out of snapshots
_TREND_DEFAULTS = tuple(getattr(CustomerTrend(math.nan), name) for name in CustomerTrend.__slots__)
