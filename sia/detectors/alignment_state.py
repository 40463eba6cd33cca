"""Compact state of the alignment detector: one customer's few numbers, and bounded
histograms of customer value (one per segment and one overall).

A customer's value is their annual spend estimated from a decayed sum of order value
(half-life H): a steady spend r a day settles at S = r H / ln 2, so a year is
S ln 2 / H x 365, divided by the share of the weights a short history has filled,
1 - 2^(-span/H), with the span counted as at least a year. Histograms count customers,
not orders: each customer sits in one bin (log-spaced, 2^(1/4) apart) that moves when
their value is re-estimated, so percentiles are over customers and memory is bins x
segments, whatever the number of customers.
"""

from __future__ import annotations

import math

from sia.detectors.packing import restore_sparse, sparse_state

LN2 = math.log(2.0)
BINS = 128
BIN_LOG = math.log(2.0) / 4.0  # bins 2^(1/4) apart: 19% wide
YEAR = 365.0


def annual_value(total: float, half_life_days: float, span_days: float) -> float:
    """Annual spend from a decayed sum of order value over `span_days` of history, counted
    as at least a year: a new customer's first orders are not extrapolated to a year."""
    coverage = 1.0 - 0.5 ** (max(span_days, YEAR) / half_life_days)
    return float(total * LN2 / half_life_days * YEAR / coverage)


def bin_of(value: float) -> int:
    """Histogram bin of an annual value: 0 for 1 or less, then 4 bins per doubling (the
    last bin from 2^31.5 on: beyond it, and for infinity, math.log is not needed)."""
    if not value > 1.0:  # NaN too
        return 0
    if value >= 1e300:
        return BINS - 1
    return min(int(math.log(value) / BIN_LOG) + 1, BINS - 1)


def bin_value(index: int) -> float:
    """A representative value of a bin (its geometric middle)."""
    if index <= 0:
        return 1.0
    return math.exp((index - 0.5) * BIN_LOG)


class ValueHistogram:
    """How many customers have each value bin; percentiles and quantiles from it."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * BINS
        self.total = 0

    def add(self, index: int) -> None:
        """A customer enters the bin."""
        self.counts[index] += 1
        self.total += 1

    def remove(self, index: int) -> None:
        """A customer leaves the bin."""
        self.counts[index] -= 1
        self.total -= 1

    def percentile(self, index: int) -> float:
        """Share of customers below the bin plus half of those in it (mid-rank)."""
        if self.total <= 0:
            return 0.5
        below = sum(self.counts[:index])
        return (below + 0.5 * self.counts[index]) / self.total

    def quantile(self, q: float) -> float:
        """Value at which a share q of customers is reached (a bin's middle)."""
        if self.total <= 0:
            return 0.0
        target = q * self.total
        running = 0
        for index, count in enumerate(self.counts):
            running += count
            if running >= target and count:
                return bin_value(index)
        return bin_value(BINS - 1)

    def __getstate__(self) -> tuple[list[int], int]:
        return (self.counts, self.total)

    def __setstate__(self, state: tuple[list[int], int]) -> None:
        self.counts, self.total = state


class CustomerAlignment:
    """What the alignment detector keeps about one customer."""

    __slots__ = (
        "bin",
        "contact_fired",
        "first_order_at",
        "last_contact_at",
        "last_order_at",
        "last_order_id",
        "orders",
        "owner_fired",
        "region",
        "seen_at",
        "segment",
        "team",
        "value_checked_at",
        "value_open",
        "value_sum",
    )

    def __init__(self) -> None:
        self.orders = 0
        self.first_order_at = 0.0  # days since the epoch
        self.last_order_at = 0.0
        self.last_order_id = ""  # event id of the newest order (evidence)
        self.value_sum = 0.0  # decayed order value, reference day seen_at
        self.seen_at = 0.0
        self.bin = -1  # value bin the customer occupies in the histograms; -1: none
        self.segment = -1  # index of the segment whose histogram holds the customer
        self.region = -1  # indexes of region and owner team as last counted
        self.team = -1
        self.last_contact_at = -1.0  # newest rep contact; < 0: never
        self.contact_fired = -2.0  # last_contact_at when the no-contact alert was raised
        self.value_checked_at = -1e9  # day of the last segment check
        self.value_open = False  # a segment misfit was reported and has not ended
        self.owner_fired = False  # the owner mismatch was reported for the current owner

    def add_order(self, at: float, value: float, event_id: str, half_life_days: float) -> None:
        """Count an order of `value` on day `at` (late orders are discounted to now)."""
        if self.orders == 0:
            self.first_order_at = self.seen_at = at
        elapsed = at - self.seen_at
        if elapsed > 0:
            self.value_sum = self.value_sum * 0.5 ** (elapsed / half_life_days) + value
            self.seen_at = at
        else:
            self.value_sum += value * 0.5 ** (-elapsed / half_life_days)
        self.first_order_at = min(self.first_order_at, at)
        if at >= self.last_order_at:
            self.last_order_at = at
            self.last_order_id = event_id
        self.orders += 1

    def annual(self, at: float, half_life_days: float) -> float:
        """Annual spend estimate on day `at`."""
        if self.orders == 0:
            return 0.0
        decayed = self.value_sum * 0.5 ** (max(at - self.seen_at, 0.0) / half_life_days)
        return annual_value(decayed, half_life_days, at - self.first_order_at)

    def __getstate__(self) -> tuple[object, ...]:
        return sparse_state(self, self.__slots__, _ALIGNMENT_DEFAULTS)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        restore_sparse(self, self.__slots__, _ALIGNMENT_DEFAULTS, state)


# initial values, left out of snapshots
_ALIGNMENT_DEFAULTS = tuple(getattr(CustomerAlignment(), name)
                            for name in CustomerAlignment.__slots__)
