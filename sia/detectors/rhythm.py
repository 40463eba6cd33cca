"""Compact online statistics for one customer: a few floats, no per-event history.

Kept separate from the detectors so the benchmark can run the same arithmetic
without the engine around it (the "limit").
"""

from __future__ import annotations

import math

from sia.detectors.packing import restore_sparse, sparse_state

DAY = 86_400.0


def days(epoch_seconds: float) -> float:
    """Seconds since the epoch as days."""
    return epoch_seconds / DAY


def ew_update(mean: float, var: float, x: float, alpha: float) -> tuple[float, float]:
    """One step of an exponentially weighted mean and variance (West, 1979)."""
    diff = x - mean
    incr = alpha * diff
    return mean + incr, (1.0 - alpha) * (var + diff * incr)


def decay(value: float, elapsed_days: float, half_life_days: float) -> float:
    """A count decayed by its half-life over the elapsed time."""
    if elapsed_days <= 0:
        return value
    return float(value * 0.5 ** (elapsed_days / half_life_days))


def normal_cdf(z: float) -> float:
    """Standard normal cumulative probability."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


class CustomerRhythm:
    """A customer's purchase rhythm, order value, breadth and engagement, as floats."""

    __slots__ = (
        "breadth_long",
        "breadth_short",
        "complaints",
        "complaints_seen_at",
        "engagement_fast",
        "engagement_seen_at",
        "engagement_slow",
        "erosion_open",
        "first_order_at",
        "gap_mean",
        "gap_var",
        "gaps",
        "labelled",
        "last_order_at",
        "last_order_id",
        "orders",
        "overdue_fired",
        "value_long",
        "value_short",
    )

    def __init__(self) -> None:
        self.orders = 0
        self.gaps = 0
        self.last_order_at = 0.0  # days since epoch
        self.first_order_at = 0.0
        self.last_order_id = ""  # event id of the last order (evidence, dedup key)
        self.gap_mean = 0.0  # EW mean of log(gap in days)
        self.gap_var = 0.0
        self.value_long = 0.0
        self.value_short = 0.0
        self.breadth_long = 0.0
        self.breadth_short = 0.0
        self.engagement_fast = 0.0  # decayed interaction counts
        self.engagement_slow = 0.0
        self.engagement_seen_at = 0.0
        self.complaints = 0.0  # decayed count of tickets, negative sentiment and returns
        self.complaints_seen_at = 0.0
        self.overdue_fired = False
        self.erosion_open = False
        self.labelled = 0  # checkpoints of the last order already used as training labels

    def add_order(self, at: float, value: float, breadth: int, event_id: str,
                  gap_alpha: float, long_alpha: float, short_alpha: float,
                  min_gap_days: float) -> float | None:
        """Learn from an order at day `at`; returns the gap in days when one was counted."""
        gap: float | None = None
        if self.orders == 0:
            self.first_order_at = at
            self.value_long = self.value_short = value
            self.breadth_long = self.breadth_short = float(breadth)
        else:
            self.value_long += long_alpha * (value - self.value_long)
            self.value_short += short_alpha * (value - self.value_short)
            self.breadth_long += long_alpha * (breadth - self.breadth_long)
            self.breadth_short += short_alpha * (breadth - self.breadth_short)
            elapsed = at - self.last_order_at
            if elapsed >= min_gap_days:
                gap = elapsed
                log_gap = math.log(elapsed)
                if self.gaps == 0:
                    self.gap_mean, self.gap_var = log_gap, 0.0
                else:
                    alpha = max(gap_alpha, 1.0 / (self.gaps + 1))
                    self.gap_mean, self.gap_var = ew_update(
                        self.gap_mean, self.gap_var, log_gap, alpha
                    )
                self.gaps += 1
        self.orders += 1
        if at >= self.last_order_at:
            self.last_order_at = at
            self.last_order_id = event_id
            self.overdue_fired = False
            self.labelled = 0
        return gap

    def add_interaction(self, at: float, complaint: bool, fast_hl: float, slow_hl: float) -> None:
        """Learn from a call, email, meeting or ticket; complaints are counted apart."""
        if complaint:
            self.add_complaint(at, fast_hl)
            return
        elapsed = at - self.engagement_seen_at
        self.engagement_fast = decay(self.engagement_fast, elapsed, fast_hl) + 1.0
        self.engagement_slow = decay(self.engagement_slow, elapsed, slow_hl) + 1.0
        self.engagement_seen_at = max(at, self.engagement_seen_at)

    def add_complaint(self, at: float, half_life: float) -> None:
        """Count a complaint (negative ticket, negative sentiment, or a return)."""
        elapsed = at - self.complaints_seen_at
        self.complaints = decay(self.complaints, elapsed, half_life) + 1.0
        self.complaints_seen_at = max(at, self.complaints_seen_at)

    def rhythm(self, prior_mean: float, prior_var: float,
               prior_weight: float) -> tuple[float, float]:
        """(mu, sigma) of log gap days, shrunk toward the population for short histories."""
        k = float(self.gaps)
        mu = (k * self.gap_mean + prior_weight * prior_mean) / (k + prior_weight)
        var = (k * self.gap_var + prior_weight * prior_var) / (k + prior_weight)
        return mu, math.sqrt(max(var, 0.01))

    def __getstate__(self) -> tuple[object, ...]:
        return sparse_state(self, self.__slots__, _RHYTHM_DEFAULTS)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        restore_sparse(self, self.__slots__, _RHYTHM_DEFAULTS, state)


# initial values, left out of snapshots (most customers never use half the fields)
_RHYTHM_DEFAULTS = tuple(getattr(CustomerRhythm(), name) for name in CustomerRhythm.__slots__)
